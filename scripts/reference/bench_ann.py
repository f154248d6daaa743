"""The reference for `cargo bench -p aperture-search --bench search -- --reference`:
faiss-cpu's HNSW (IndexHNSWFlat, inner product, M = 16, efConstruction = 128) on the vectors,
queries and ground truth the Rust bench wrote, searched one query at a time on one thread
(after one unmeasured pass at each ef), and in one batch on every core (timed TIMINGS times,
the median kept, as the Rust side does).

    bench_ann.py DIR N DIMS QUERIES EF,EF,... TIMINGS THREADS

THREADS is how many threads the Rust side builds and searches batches with (rayon's count,
which heeds CPU affinity where `os.cpu_count()` does not).

DIR holds base.f32 (N x DIMS), queries.f32 (QUERIES x DIMS), truth.u64 (QUERIES x 10).
Prints one JSON object: build_s and, per ef, recall@10, p50/p99 latency (µs), queries/s one
query per call, and queries/s with all queries in one call on every core (`batch_qps`: free of
Python's cost per call, the strictest baseline).
"""

import json
import os
import sys
import time

import numpy as np

import faiss


def main():
    folder, n, dims, queries, efs, timings, threads = sys.argv[1:8]
    n, dims, queries = int(n), int(dims), int(queries)
    timings, threads = int(timings), int(threads)
    efs = [int(e) for e in efs.split(",")]
    base = np.fromfile(os.path.join(folder, "base.f32"), dtype="<f4").reshape(n, dims)
    qs = np.fromfile(os.path.join(folder, "queries.f32"), dtype="<f4").reshape(queries, dims)
    truth = np.fromfile(os.path.join(folder, "truth.u64"), dtype="<u8").reshape(queries, 10)

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexHNSWFlat(dims, 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 128
    started = time.perf_counter()
    index.add(base)
    build_s = time.perf_counter() - started
    del base

    points = []
    for ef in efs:
        index.hnsw.efSearch = ef
        faiss.omp_set_num_threads(1)
        # One unmeasured pass, as the Rust side does.
        for q in qs:
            index.search(q.reshape(1, -1), 10)
        times, found = [], []
        started = time.perf_counter()
        for q in qs:
            t = time.perf_counter_ns()
            _, ids = index.search(q.reshape(1, -1), 10)
            times.append((time.perf_counter_ns() - t) / 1e3)
            found.append(ids[0])
        total = time.perf_counter() - started
        # The same queries as one batch on every core, as the Rust side searches batches.
        faiss.omp_set_num_threads(threads)
        rates = []
        for _ in range(timings):
            started = time.perf_counter()
            index.search(qs, 10)
            rates.append(queries / (time.perf_counter() - started))
        batch_qps = sorted(rates)[len(rates) // 2]
        hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
        times.sort()
        points.append(
            {
                "ef": ef,
                "recall": hits / (queries * 10),
                "p50_us": times[len(times) // 2],
                "p99_us": times[min(len(times) - 1, round((len(times) - 1) * 0.99))],
                "qps": queries / total,
                "batch_qps": batch_qps,
            }
        )
    print(json.dumps({"build_s": build_s, "points": points}))


if __name__ == "__main__":
    main()
