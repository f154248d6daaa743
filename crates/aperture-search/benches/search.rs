//! Search benchmark: approximate nearest neighbours against exact search and a reference
//! library, and full-text query latency. Prints tables.
//!
//! ```text
//! bash scripts/reference/setup.sh          # the reference venv (faiss-cpu)
//! cargo bench -p aperture-search --bench search -- [--n 1000000] [--dims 384,1280,512]
//!     [--queries 500] [--candidates usearch,hnsw_rs,pgvector] [--reference] [--docs 1000000]
//!     [--shared postgres://…] [--under-writes]
//! ```
//!
//! `--shared URL` (a PostgreSQL server with pgvector; the bench makes a database of its own
//! there) adds the shared index: "pgvector" among the vector candidates, and PostgreSQL's
//! text search beside tantivy. `--under-writes` measures queries again while another thread
//! writes vectors: into the shared index itself (HNSW maintained row by row), and for the
//! embedded index into a second copy (as a server's follower writes its own copy and swaps).
//!
//! Vectors are synthetic but shaped like real embeddings (see `Model`): 4,096 clusters in a
//! 32-dimensional latent space, projected to the full dimension, plus noise in every
//! dimension, normalised. Queries are new points drawn the same way. The ground truth is exact
//! search over all vectors. "usearch" is Aperture's own index (`vectors::Space`, USearch
//! underneath); "hnsw_rs" is the pure-Rust alternative it was chosen against. The reference
//! (faiss-cpu's HNSW, same M = 16 and efConstruction = 128, through its Python package) runs
//! on the same files in the same run, searched the same way: latency one query at a time on
//! one thread, after one unmeasured pass over the queries at each breadth; batches (all queries
//! in one call) on every core, on both sides.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aperture_core::{AssetId, MediaKind, UnixMillis};
use aperture_search::SharedIndex;
use aperture_search::document::{Indexed, Passage};
use aperture_search::fulltext::FullText;
use aperture_search::vectors::{
    CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH, NewVector, SEAL_AT, Space, VectorFilter, dot,
};
use rayon::prelude::*;

const K: usize = 10;
/// The search breadths swept, the same on every side. Down to K: at 16 both sides' recall was
/// already above 0.99 on some sets, so the cheapest breadth at recall ≥ 0.95 lay below it.
/// Close together where the recall crosses 0.95 and 0.99: with 24 then 32, a side whose 24
/// fell just short paid for a third more breadth than it needed.
const EFS: [usize; 14] = [10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 64, 96, 128, 256];
/// Batches are timed this many times, and the median kept: one batch of 500 queries takes
/// about 25 ms on two cores, and one timing moved by a tenth between runs.
const BATCH_TIMINGS: usize = 5;
const _: () = assert!(BATCH_TIMINGS % 2 == 1, "a median of an odd count");
const TARGET_RECALL: f64 = 0.95;
/// The recalls the summary compares at, the lowest first.
const TARGETS: [f64; 2] = [TARGET_RECALL, 0.99];
const CENTRES: usize = 4096;

struct Args {
    n: usize,
    dims: Vec<usize>,
    queries: usize,
    candidates: Vec<String>,
    reference: bool,
    docs: usize,
    shared: Option<String>,
    under_writes: bool,
}

fn args() -> Args {
    let mut a = Args {
        n: 1_000_000,
        dims: vec![384, 1280, 512],
        queries: 500,
        candidates: vec!["usearch".into()],
        reference: false,
        docs: 1_000_000,
        shared: None,
        under_writes: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match arg.as_str() {
            "--n" => a.n = value().parse().unwrap(),
            "--dims" => a.dims = value().split(',').map(|d| d.parse().unwrap()).collect(),
            "--queries" => a.queries = value().parse().unwrap(),
            "--candidates" => a.candidates = value().split(',').map(str::to_owned).collect(),
            "--reference" => a.reference = true,
            "--docs" => a.docs = value().parse().unwrap(),
            "--shared" => a.shared = Some(value()),
            "--under-writes" => a.under_writes = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// xorshift64* and Box–Muller: deterministic, fast, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    }

    fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

/// The structure synthetic vectors share, per dimension count: a random projection from a
/// low-dimensional latent space, and cluster centres in that space.
struct Model {
    dims: usize,
    /// dims × LATENT, row-major.
    projection: Vec<f32>,
    /// CENTRES × LATENT.
    centres: Vec<f32>,
}

/// Real embeddings have a low intrinsic dimension (tens, not hundreds): points live near a
/// low-dimensional manifold, in clusters. Synthetic vectors with full-rank noise would be far
/// harder for any index than real ones.
const LATENT: usize = 32;

impl Model {
    fn new(dims: usize) -> Model {
        let mut rng = Rng(0xC0FFEE ^ dims as u64);
        Model {
            dims,
            projection: (0..dims * LATENT).map(|_| rng.gaussian()).collect(),
            centres: (0..CENTRES * LATENT).map(|_| rng.gaussian()).collect(),
        }
    }

    /// `n` unit vectors, row-major, from `seed`: a centre plus latent spread, projected, plus
    /// a little noise in every dimension (a tenth of the signal's norm).
    fn sample(&self, n: usize, seed: u64) -> Vec<f32> {
        let dims = self.dims;
        let mut out = vec![0f32; n * dims];
        out.par_chunks_mut(dims * 1024)
            .enumerate()
            .for_each(|(chunk, rows)| {
                let mut rng = Rng(seed ^ (chunk as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut z = [0f32; LATENT];
                for row in rows.chunks_mut(dims) {
                    let c = (rng.next() % CENTRES as u64) as usize;
                    for (j, zj) in z.iter_mut().enumerate() {
                        *zj = self.centres[c * LATENT + j] + 0.5 * rng.gaussian();
                    }
                    for (i, x) in row.iter_mut().enumerate() {
                        *x = dot(&self.projection[i * LATENT..(i + 1) * LATENT], &z);
                    }
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                    let sigma = 0.1 * norm / (dims as f32).sqrt();
                    for x in row.iter_mut() {
                        *x += sigma * rng.gaussian();
                    }
                    normalise(row);
                }
            });
        out
    }
}

/// Exact top-k by inner product (cosine on unit vectors).
fn exact(data: &[f32], dims: usize, q: &[f32]) -> Vec<u64> {
    let mut best: Vec<(f32, u64)> = Vec::with_capacity(K + 1);
    for (i, row) in data.chunks_exact(dims).enumerate() {
        let s = dot(row, q);
        if best.len() < K || s > best[K - 1].0 {
            let at = best.partition_point(|b| b.0 >= s);
            best.insert(at, (s, i as u64));
            best.truncate(K);
        }
    }
    best.into_iter().map(|b| b.1).collect()
}

fn recall(found: &[Vec<u64>], truth: &[Vec<u64>]) -> f64 {
    let hit: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| t.iter().filter(|id| f.contains(id)).count())
        .sum();
    hit as f64 / (truth.len() * K) as f64
}

fn percentile(sorted_us: &[f64], p: f64) -> f64 {
    sorted_us[((sorted_us.len() as f64 - 1.0) * p).round() as usize]
}

#[derive(Debug, Clone)]
struct Point {
    ef: usize,
    recall: f64,
    p50_us: f64,
    p99_us: f64,
    qps: f64,
    /// Queries/s with all queries in one call on every core, where measured.
    batch_qps: Option<f64>,
}

/// Times `search` on every query, one at a time, and scores it against the truth, after one
/// unmeasured pass (the first breadths swept come right after a build).
fn sweep_point(
    ef: usize,
    queries: &[f32],
    dims: usize,
    truth: &[Vec<u64>],
    search: &mut dyn FnMut(&[f32]) -> Vec<u64>,
) -> Point {
    for q in queries.chunks_exact(dims) {
        std::hint::black_box(search(q));
    }
    let mut times = Vec::with_capacity(truth.len());
    let mut found = Vec::with_capacity(truth.len());
    let started = Instant::now();
    for q in queries.chunks_exact(dims) {
        let t = Instant::now();
        found.push(search(q));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    Point {
        ef,
        recall: recall(&found, truth),
        p50_us: percentile(&times, 0.5),
        p99_us: percentile(&times, 0.99),
        qps: truth.len() as f64 / total,
        batch_qps: None,
    }
}

fn print_sweep(name: &str, build_s: f64, points: &[Point]) {
    println!("  {name}: built in {build_s:.1} s");
    println!(
        "    {:>5} {:>9} {:>10} {:>10} {:>10} {:>12}",
        "ef", "recall@10", "p50 µs", "p99 µs", "q/s", "batch q/s"
    );
    for p in points {
        let batch = p.batch_qps.map_or(String::new(), |q| format!("{q:.0}"));
        println!(
            "    {:>5} {:>9.4} {:>10.1} {:>10.1} {:>10.0} {:>12}",
            p.ef, p.recall, p.p50_us, p.p99_us, p.qps, batch
        );
    }
}

/// The fastest point of the sweep that reaches the target recall.
fn at_target(points: &[Point]) -> Option<&Point> {
    at_recall(points, TARGET_RECALL)
}

/// The most queries/s in batches among the breadths that reach `recall`, and that breadth (the
/// fastest breadth one at a time need not be the fastest in batches).
fn batch_at(points: &[Point], recall: f64) -> Option<(usize, f64)> {
    points
        .iter()
        .filter(|p| p.recall >= recall)
        .filter_map(|p| Some((p.ef, p.batch_qps?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

/// `batch_at`'s figure as the summary prints it.
fn batch_text(batch: Option<(usize, f64)>) -> String {
    batch.map_or("no batch timed".into(), |(ef, qps)| {
        format!("batch {qps:.0} at ef {ef}")
    })
}

/// The fastest point of the sweep (one query at a time) that reaches `recall`: a broader
/// search is not always slower, as a narrow one that misses may walk further.
fn at_recall(points: &[Point], recall: f64) -> Option<&Point> {
    points
        .iter()
        .filter(|p| p.recall >= recall)
        .max_by(|a, b| a.qps.total_cmp(&b.qps))
}

/// Queries/s with every query in flight at once on every core (rayon), at breadth `ef`: the
/// median of [`BATCH_TIMINGS`] timings.
fn batch_qps(space: &Space, ef: usize, queries: &[f32], dims: usize) -> f64 {
    space.set_expansion_search(ef);
    let none = VectorFilter::default();
    let mut rates: Vec<f64> = (0..BATCH_TIMINGS)
        .map(|_| {
            let started = Instant::now();
            queries.par_chunks_exact(dims).for_each(|q| {
                std::hint::black_box(space.search(q, K, &none).unwrap());
            });
            (queries.len() / dims) as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Aperture's own vector index ([`Space`]: USearch HNSW, cosine, 8-bit), bulk-loaded on
/// every core and searched through `Space::search`, entries and all.
fn run_space(
    data: &[f32],
    dims: usize,
    queries: &[f32],
    truth: &[Vec<u64>],
) -> (f64, Vec<Point>, Space) {
    let (started, before) = (Instant::now(), resident_bytes());
    let space = space_of(data, dims);
    let build = started.elapsed().as_secs_f64();
    let grown = resident_bytes().saturating_sub(before);
    // A space built after another reuses the pages that one freed: only the first is right.
    static FIRST: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    FIRST.call_once(|| first = true);
    println!(
        "  usearch: {:.0} bytes of memory per vector ({:.0} MB resident growth for {} vectors){}",
        grown as f64 / space.len() as f64,
        grown as f64 / 1e6,
        space.len(),
        if first {
            ""
        } else {
            " — an undercount: pages freed by the space before are reused; run --dims alone"
        }
    );
    let none = VectorFilter::default();
    let points = EFS
        .iter()
        .map(|&ef| {
            space.set_expansion_search(ef);
            sweep_point(ef, queries, dims, truth, &mut |q| {
                rows_of(&space.search(q, K, &none).unwrap())
            })
        })
        .collect();
    (build, points, space)
}

/// What keeping a space costs besides its searches, at the default breadth: a filter that lets
/// one vector in a thousand through (postings, against reading every entry as before); adding
/// vectors; saving them as a segment against saving the space whole; opening it whole and with
/// a full tail.
fn run_upkeep(space: &mut Space, model: &Model, queries: &[f32], summary: &mut Vec<String>) {
    let (n, dims) = (space.len(), model.dims);
    space.set_expansion_search(EXPANSION_SEARCH);
    let none = VectorFilter::default();
    let small = VectorFilter {
        collections: vec!["small".into()],
        ..VectorFilter::default()
    };
    let latency = |space: &Space, filter: &VectorFilter| -> (f64, f64, f64) {
        let mut times: Vec<f64> = queries
            .chunks_exact(dims)
            .map(|q| {
                let t = Instant::now();
                std::hint::black_box(space.search(q, K, filter).unwrap());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        (
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            1e6 / mean,
        )
    };
    let mut row = |what: String, (p50, p99, qps): (f64, f64, f64)| {
        println!("  {what}: p50 {p50:.1} µs, p99 {p99:.1} µs, {qps:.0} q/s");
        summary.push(format!(
            "| {n} × {dims} | {what} | ef {EXPANSION_SEARCH} | | {p50:.0} µs | {p99:.0} µs | {qps:.0} | |"
        ));
    };
    row("usearch, unfiltered".into(), latency(space, &none));
    row(
        "usearch, 1 in 1,000 by collection (postings)".into(),
        latency(space, &small),
    );
    // What a narrow filter cost before postings: every entry read to find who passes.
    let (p50, p99, qps) = latency(space, &small);
    let mut scan: Vec<f64> = (0..50)
        .map(|_| {
            let t = Instant::now();
            let passing = space
                .keys()
                .filter(|(_, e)| space.collections()[e.collection as usize] == "small")
                .count();
            std::hint::black_box(passing);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    scan.sort_by(f64::total_cmp);
    let extra = percentile(&scan, 0.5);
    row(
        "usearch, the same reading every entry as before (postings + a measured scan)".into(),
        (p50 + extra, p99 + extra, 1e6 / (1e6 / qps + extra)),
    );
    let add = |space: &mut Space, count: usize, seed: u64| {
        let vectors = model.sample(count, seed);
        let items: Vec<NewVector<'_>> = vectors
            .chunks_exact(dims)
            .enumerate()
            .map(|(i, vector)| image_vector(100_000_000 * seed as usize + i, "bench", vector))
            .collect();
        // One at a time, as an update adds them.
        let started = Instant::now();
        for item in &items {
            space.add(item).unwrap();
        }
        started.elapsed().as_secs_f64()
    };
    let dir = tempfile_dir("upkeep");
    let timed = |f: &mut dyn FnMut()| {
        let started = Instant::now();
        f();
        started.elapsed().as_secs_f64()
    };
    let mut files = None;
    let whole = timed(&mut || files = Some(space.persist(&dir, "bench", 1, None).unwrap()));
    let files = files.unwrap();
    let whole_bytes = dir_bytes(&dir);
    let open_whole = timed(&mut || drop(Space::load(&dir, &files).unwrap()));
    let adding = add(space, 1000, 5);
    let mut appended = None;
    let segment =
        timed(&mut || appended = Some(space.persist(&dir, "bench", 2, Some(&files)).unwrap()));
    let appended = appended.unwrap();
    assert_eq!(appended.segments.len(), 1, "a segment, not a rewrite");
    let segment_bytes = dir_bytes(&dir) - whole_bytes;
    add(space, SEAL_AT - 1000, 6);
    let mut full_tail = None;
    timed(&mut || full_tail = Some(space.persist(&dir, "bench", 3, Some(&appended)).unwrap()));
    let full_tail = full_tail.unwrap();
    assert_eq!(full_tail.segments.len(), 2);
    let open_tail = timed(&mut || drop(Space::load(&dir, &full_tail).unwrap()));
    println!(
        "  1,000 vectors added one at a time: {:.0} per s; saved as a segment: {:.1} ms, {:.2} MB; \
         the space saved whole: {whole:.1} s, {:.0} MB",
        1000.0 / adding,
        segment * 1e3,
        segment_bytes as f64 / 1e6,
        whole_bytes as f64 / 1e6,
    );
    println!(
        "  opened: {open_whole:.1} s whole, {open_tail:.1} s with a tail of {SEAL_AT} in segments"
    );
    summary.push(format!(
        "| {n} × {dims} | 1,000 added: saved as a segment / the space saved whole | | | {:.1} ms, {:.2} MB | {whole:.1} s, {:.0} MB | | |",
        segment * 1e3,
        segment_bytes as f64 / 1e6,
        whole_bytes as f64 / 1e6
    ));
    summary.push(format!(
        "| {n} × {dims} | opened whole / with {SEAL_AT} in segments | | | {open_whole:.1} s | {open_tail:.1} s | | |",
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An empty folder under `target/bench-search`.
fn tempfile_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/bench-search")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The process's resident memory, from `VmRSS` in `/proc/self/status` (0 where there is
/// none).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The asset id of row `i` of the data: its number, so a hit names its row.
fn asset_of(i: usize) -> AssetId {
    AssetId::from_bytes((i as u128).to_be_bytes())
}

fn row_of(asset: AssetId) -> u64 {
    u128::from_be_bytes(*asset.as_bytes()) as u64
}

/// The data rows of neighbours, nearest first.
fn rows_of(neighbours: &[aperture_search::vectors::Neighbour]) -> Vec<u64> {
    neighbours.iter().map(|n| row_of(n.entry.asset)).collect()
}

/// Aperture's own vector index over `data`, bulk-loaded on every core.
fn space_of(data: &[f32], dims: usize) -> Space {
    let mut space = Space::new(dims).unwrap();
    let items: Vec<NewVector<'_>> = data
        .chunks_exact(dims)
        .enumerate()
        .map(|(i, vector)| {
            // One in a thousand elsewhere, for a narrow filter.
            let collection = if i % 1000 == 999 { "small" } else { "bench" };
            image_vector(i, collection, vector)
        })
        .collect();
    space.add_many(&items).unwrap();
    space
}

/// Row `row`'s vector, an image's of `collection`.
fn image_vector<'a>(row: usize, collection: &'a str, vector: &'a [f32]) -> NewVector<'a> {
    NewVector {
        asset: asset_of(row),
        collection,
        kind: MediaKind::Image,
        date: 0,
        page: 0,
        ordinal: 0,
        vector,
    }
}

/// A document of one image vector (and a name), as an update writes it.
fn vector_doc(i: usize, vector: &[f32]) -> (AssetId, Option<Indexed>) {
    let asset = asset_of(i);
    let doc = Indexed {
        asset,
        collection: ["press", "archive", "field"][i % 3].into(),
        kind: MediaKind::Image,
        date: UnixMillis(1_600_000_000_000 + i as i64 * 1000),
        name: format!("img-{i}.jpg"),
        paths: vec![],
        meta: vec![],
        labels: vec![],
        passages: vec![],
        languages: Default::default(),
        translated: Default::default(),
        has: Default::default(),
        vectors: vec![aperture_search::document::Vector {
            space: "bench".into(),
            vector: vector.to_vec(),
            place: aperture_core::Place::Whole,
            text: None,
        }],
        phash: None,
    };
    (asset, Some(doc))
}

/// A new database `aperture_bench_<what>_<pid>` on the server of `url`, for this run alone
/// (dropped by the next run's `bench_database` of the same name, or by hand: it is kept
/// so its tables can be measured).
fn bench_database(url: &str, what: &str) -> String {
    let mut admin = postgres::Client::connect(url, postgres::NoTls).expect("connect --shared");
    let name = format!("aperture_bench_{what}_{}", std::process::id());
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin
            .batch_execute(&sql)
            .expect("create the bench database");
    }
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    format!("{base}/{name}")
}

/// The shared index (pgvector HNSW, m = 16, ef_construction = 64), loaded as a build loads it
/// (rows in batches, then the graph built once) and searched through `SharedIndex::nearest`.
fn run_pgvector(
    url: &str,
    data: &[f32],
    dims: usize,
    queries: &[f32],
    truth: &[Vec<u64>],
) -> (f64, Vec<Point>, SharedIndex) {
    let index = SharedIndex::open(&bench_database(url, "vectors")).unwrap();
    let started = Instant::now();
    let rows: Vec<&[f32]> = data.chunks_exact(dims).collect();
    let batches = rows.chunks(1000).enumerate().map(|(b, batch)| {
        batch
            .iter()
            .enumerate()
            .map(|(j, v)| vector_doc(b * 1000 + j, v))
            .collect()
    });
    index.load(batches, Some("6GB")).unwrap();
    let build = started.elapsed().as_secs_f64();
    let none = VectorFilter::default();
    let points = [40, 100, 200]
        .iter()
        .map(|&ef| {
            index.set_expansion_search(ef);
            sweep_point(ef, queries, dims, truth, &mut |q| {
                rows_of(&index.nearest("bench", q, K, &none).unwrap().unwrap())
            })
        })
        .collect();
    index.set_expansion_search(aperture_search::shared::EF_SEARCH);
    (build, points, index)
}

enum Engine<'a> {
    Embedded(&'a Space),
    Shared(&'a SharedIndex),
}

/// Queries (at the engine's default breadth) while one thread writes new vectors: into the
/// shared index itself, or into a second copy of the embedded one. Rows/s written beside.
fn under_writes(
    n: usize,
    model: &Model,
    queries: &[f32],
    truth: &[Vec<u64>],
    summary: &mut Vec<String>,
    engine: Engine<'_>,
) {
    let dims = model.dims;
    let fresh = model.sample(200_000, 3);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let written = std::sync::atomic::AtomicUsize::new(0);
    let none = VectorFilter::default();
    let (name, point) = std::thread::scope(|scope| {
        scope.spawn(|| {
            let base = 10_000_000;
            let mut copy = Space::new(dims).unwrap();
            for (b, batch) in fresh.chunks_exact(dims * 100).enumerate() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                match &engine {
                    Engine::Shared(index) => {
                        let docs: Vec<_> = batch
                            .chunks_exact(dims)
                            .enumerate()
                            .map(|(j, v)| vector_doc(base + b * 100 + j, v))
                            .collect();
                        index.load([docs], None).unwrap();
                    }
                    Engine::Embedded(_) => {
                        for (j, v) in batch.chunks_exact(dims).enumerate() {
                            copy.add(&image_vector(base + b * 100 + j, "bench", v))
                                .unwrap();
                        }
                    }
                }
                written.fetch_add(100, std::sync::atomic::Ordering::Relaxed);
            }
        });
        // Let the writer get going.
        std::thread::sleep(std::time::Duration::from_secs(2));
        let started = Instant::now();
        let before = written.load(std::sync::atomic::Ordering::Relaxed);
        // The queries again and again for at least 5 s; the last pass is reported.
        let pass = || match &engine {
            Engine::Shared(index) => (
                "pgvector, under writes",
                sweep_point(
                    aperture_search::shared::EF_SEARCH,
                    queries,
                    dims,
                    truth,
                    &mut |q| {
                        // New rows may be nearer: asked for more, the original rows' best ten.
                        index
                            .nearest("bench", q, 2 * K, &none)
                            .unwrap()
                            .unwrap()
                            .iter()
                            .map(|n| row_of(n.entry.asset))
                            .filter(|row| *row < 10_000_000)
                            .take(K)
                            .collect()
                    },
                ),
            ),
            Engine::Embedded(space) => {
                let ef = 64;
                space.set_expansion_search(ef);
                (
                    "usearch, under writes",
                    sweep_point(ef, queries, dims, truth, &mut |q| {
                        rows_of(&space.search(q, K, &none).unwrap())
                    }),
                )
            }
        };
        let (name, mut point) = pass();
        while started.elapsed().as_secs() < 5 {
            point = pass().1;
        }
        let rate = (written.load(std::sync::atomic::Ordering::Relaxed) - before) as f64
            / started.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        point.batch_qps = Some(rate);
        (name, point)
    });
    println!(
        "  {name}: recall@10 {:.4}, p50 {:.1} µs, p99 {:.1} µs, {:.0} vectors/s written meanwhile",
        point.recall,
        point.p50_us,
        point.p99_us,
        point.batch_qps.unwrap_or(0.0)
    );
    summary.push(format!(
        "| {n} × {dims} | {name} ({:.0} vectors/s written) | ef {} | {:.3} | {:.0} µs | {:.0} µs | {:.0} | |",
        point.batch_qps.unwrap_or(0.0),
        point.ef,
        point.recall,
        point.p50_us,
        point.p99_us,
        point.qps
    ));
}

/// USearch with vectors quantised to 8 bits through its own API, without `Space` around it:
/// what `Space` costs on top.
fn run_usearch_i8(
    data: &[f32],
    dims: usize,
    queries: &[f32],
    truth: &[Vec<u64>],
) -> (f64, Vec<Point>) {
    let index = usearch::Index::new(&usearch::IndexOptions {
        dimensions: dims,
        metric: usearch::MetricKind::Cos,
        quantization: usearch::ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: 64,
        multi: false,
    })
    .unwrap();
    let n = data.len() / dims;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    index.reserve_capacity_and_threads(n, threads).unwrap();
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let index = &index;
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    index
                        .add(i as u64, &data[i * dims..(i + 1) * dims])
                        .unwrap();
                }
            });
        }
    });
    let build = started.elapsed().as_secs_f64();
    let points = EFS
        .iter()
        .map(|&ef| {
            index.change_expansion_search(ef);
            sweep_point(ef, queries, dims, truth, &mut |q| {
                index.search(q, K).unwrap().keys
            })
        })
        .collect();
    (build, points)
}

fn run_hnsw_rs(
    data: &[f32],
    dims: usize,
    queries: &[f32],
    truth: &[Vec<u64>],
) -> (f64, Vec<Point>) {
    use hnsw_rs::prelude::{DistDot, Hnsw};
    let n = data.len() / dims;
    let hnsw = Hnsw::<f32, DistDot>::new(CONNECTIVITY, n, 16, EXPANSION_ADD, DistDot {});
    let rows: Vec<(&[f32], usize)> = data.chunks_exact(dims).zip(0..).collect();
    let started = Instant::now();
    hnsw.parallel_insert_slice(&rows);
    let build = started.elapsed().as_secs_f64();
    let points = EFS
        .iter()
        .map(|&ef| {
            sweep_point(ef, queries, dims, truth, &mut |q| {
                hnsw.search(q, K, ef)
                    .iter()
                    .map(|n| n.d_id as u64)
                    .collect()
            })
        })
        .collect();
    (build, points)
}

fn write_f32(path: &Path, data: &[f32]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for x in data {
        out.write_all(&x.to_le_bytes()).unwrap();
    }
    out.flush().unwrap();
}

fn write_u64(path: &Path, rows: &[Vec<u64>]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for row in rows {
        for x in row {
            out.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    out.flush().unwrap();
}

/// Runs the faiss reference on the same files; its sweep, or `None` when the venv is missing.
fn run_reference(dir: &Path, n: usize, dims: usize, queries: usize) -> Option<(f64, Vec<Point>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/reference-venv/bin/python");
    if !python.exists() {
        println!("  faiss: no reference venv (run scripts/reference/setup.sh)");
        return None;
    }
    let efs: Vec<String> = EFS.iter().map(ToString::to_string).collect();
    let out = std::process::Command::new(python)
        .arg(root.join("scripts/reference/bench_ann.py"))
        .arg(dir)
        .args([
            n.to_string(),
            dims.to_string(),
            queries.to_string(),
            efs.join(","),
            BATCH_TIMINGS.to_string(),
            rayon::current_num_threads().to_string(),
        ])
        .output()
        .unwrap();
    if !out.status.success() {
        println!("  faiss failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| Point {
            ef: p["ef"].as_u64().unwrap() as usize,
            recall: p["recall"].as_f64().unwrap(),
            p50_us: p["p50_us"].as_f64().unwrap(),
            p99_us: p["p99_us"].as_f64().unwrap(),
            qps: p["qps"].as_f64().unwrap(),
            batch_qps: p["batch_qps"].as_f64(),
        })
        .collect();
    Some((v["build_s"].as_f64().unwrap(), points))
}

fn vectors(args: &Args, summary: &mut Vec<String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-search");
    std::fs::create_dir_all(&dir).unwrap();
    for &dims in &args.dims {
        let n = args.n;
        println!(
            "\n== {n} vectors of {dims} dimensions, {} queries, k = {K}",
            args.queries
        );
        let model = Model::new(dims);
        let data = model.sample(n, 1);
        let queries = model.sample(args.queries, 2);
        let started = Instant::now();
        let truth: Vec<Vec<u64>> = queries
            .par_chunks_exact(dims)
            .map(|q| exact(&data, dims, q))
            .collect();
        let exact_ms = started.elapsed().as_secs_f64() * 1e3 * rayon::current_num_threads() as f64
            / args.queries as f64;
        println!("  exact search: {exact_ms:.1} ms per query (one thread)");

        let mut ours = None;
        for candidate in &args.candidates {
            let (build, points) = match candidate.as_str() {
                "usearch" => {
                    let (build, mut points, mut space) = run_space(&data, dims, &queries, &truth);
                    // Every breadth that reaches the lower target, as the reference times every
                    // breadth: each side's batch figure is then its own fastest (`batch_at`).
                    for p in points.iter_mut().filter(|p| p.recall >= TARGET_RECALL) {
                        p.batch_qps = Some(batch_qps(&space, p.ef, &queries, dims));
                    }
                    run_upkeep(&mut space, &model, &queries, summary);
                    (build, points)
                }
                "usearch-i8" => run_usearch_i8(&data, dims, &queries, &truth),
                "hnsw_rs" => run_hnsw_rs(&data, dims, &queries, &truth),
                "pgvector" => {
                    let url = args.shared.as_deref().expect("pgvector needs --shared URL");
                    let (build, points, index) = run_pgvector(url, &data, dims, &queries, &truth);
                    if args.under_writes {
                        under_writes(n, &model, &queries, &truth, summary, Engine::Shared(&index));
                    }
                    (build, points)
                }
                other => panic!("unknown candidate {other}"),
            };
            print_sweep(candidate, build, &points);
            if let Some(p) = at_target(&points) {
                summary.push(format!(
                    "| {n} × {dims} | {candidate} | ef {} | {:.4} | {:.0} µs | {:.0} µs | {:.0} | {build:.0} s |",
                    p.ef, p.recall, p.p50_us, p.p99_us, p.qps
                ));
            }
            if candidate == "usearch" {
                ours = Some(points.clone());
                if args.under_writes {
                    let space = space_of(&data, dims);
                    under_writes(
                        n,
                        &model,
                        &queries,
                        &truth,
                        summary,
                        Engine::Embedded(&space),
                    );
                }
            }
        }
        if args.reference {
            let d = dir.join(format!("{dims}"));
            std::fs::create_dir_all(&d).unwrap();
            write_f32(&d.join("base.f32"), &data);
            write_f32(&d.join("queries.f32"), &queries);
            write_u64(&d.join("truth.u64"), &truth);
            drop(data);
            if let Some((build, points)) = run_reference(&d, n, dims, args.queries) {
                print_sweep("faiss-cpu HNSWFlat (Python)", build, &points);
                for target in TARGETS {
                    let Some(p) = at_recall(&points, target) else {
                        summary.push(format!(
                            "| {n} × {dims} | faiss-cpu | no breadth reaches recall ≥ {target} | | | | | |"
                        ));
                        continue;
                    };
                    let theirs_batch = batch_at(&points, target);
                    summary.push(format!(
                        "| {n} × {dims} | faiss-cpu | ef {} | {:.4} | {:.0} µs | {:.0} µs | {:.0} ({}) | {build:.0} s |",
                        p.ef,
                        p.recall,
                        p.p50_us,
                        p.p99_us,
                        p.qps,
                        batch_text(theirs_batch)
                    ));
                    let ours_points: &[Point] = ours.as_deref().unwrap_or(&[]);
                    if let Some(o) = at_recall(ours_points, target) {
                        let ours_batch = batch_at(ours_points, target);
                        let batch_ratio = match (ours_batch, theirs_batch) {
                            (Some((_, mine)), Some((_, theirs))) => {
                                format!("**{:.2}×**", mine / theirs)
                            }
                            _ => "–".into(),
                        };
                        summary.push(format!(
                            "| {n} × {dims} | **Aperture / faiss q/s at recall ≥ {target}** | ef {} / {} | {:.4} / {:.4} | | | **{:.2}×** one at a time, {batch_ratio} in batches ({} / {}) | |",
                            o.ef,
                            p.ef,
                            o.recall,
                            p.recall,
                            o.qps / p.qps,
                            batch_text(ours_batch),
                            batch_text(theirs_batch)
                        ));
                    }
                }
            }
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

/// A vocabulary of pronounceable pseudo-words, drawn Zipf-like (rank r with weight 1/r).
struct Words {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Words {
    fn new(count: usize) -> Words {
        let syllables = [
            "ka", "lo", "mi", "nu", "re", "sa", "ti", "vo", "xe", "zu", "pra", "ste",
        ];
        let mut rng = Rng(7);
        let words = (0..count)
            .map(|_| {
                let len = 2 + (rng.next() % 3) as usize;
                (0..len)
                    .map(|_| syllables[(rng.next() % syllables.len() as u64) as usize])
                    .collect::<String>()
            })
            .collect();
        let mut total = 0.0;
        let cumulative = (1..=count)
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Words { words, cumulative }
    }

    fn draw(&self, rng: &mut Rng) -> &str {
        let x = rng.uniform() as f64 * self.cumulative.last().unwrap();
        &self.words[self
            .cumulative
            .partition_point(|c| *c < x)
            .min(self.words.len() - 1)]
    }
}

fn fulltext(args: &Args, summary: &mut Vec<String>) {
    let n = args.docs;
    println!("\n== full text: {n} documents of 40–160 words (Zipf over 50,000 words)");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-search/text");
    let _ = std::fs::remove_dir_all(&dir);
    let text = FullText::open(&dir).unwrap();
    let shared = args
        .shared
        .as_deref()
        .map(|url| SharedIndex::open(&bench_database(url, "text")).unwrap());
    let words = Words::new(50_000);
    let mut rng = Rng(11);
    let mut writer = text.writer().unwrap();
    let (mut tantivy_s, mut shared_s) = (0.0, 0.0);
    for start in (0..n).step_by(1000) {
        let docs: Vec<(AssetId, Option<Indexed>)> = (start..(start + 1000).min(n))
            .map(|i| {
                let len = 40 + (rng.next() % 121) as usize;
                let body: Vec<&str> = (0..len).map(|_| words.draw(&mut rng)).collect();
                (asset_of(i), Some(text_doc(i, body.join(" "))))
            })
            .collect();
        let t = Instant::now();
        for (asset, doc) in &docs {
            text.put(&writer, *asset, doc.as_ref()).unwrap();
        }
        tantivy_s += t.elapsed().as_secs_f64();
        if let Some(shared) = &shared {
            let t = Instant::now();
            shared.load([docs], None).unwrap();
            shared_s += t.elapsed().as_secs_f64();
        }
    }
    let t = Instant::now();
    writer.commit().unwrap();
    writer.wait_merging_threads().unwrap();
    text.reload().unwrap();
    tantivy_s += t.elapsed().as_secs_f64();
    println!("  tantivy: indexed in {tantivy_s:.1} s");
    if shared.is_some() {
        println!("  PostgreSQL text search: written in {shared_s:.1} s (GIN maintained per batch)");
    }

    let mut engines: Vec<(&str, TextSearch<'_>)> =
        vec![("tantivy", Box::new(|q| text.search(q, K).unwrap().len()))];
    if let Some(shared) = &shared {
        engines.push((
            "PostgreSQL",
            Box::new(move |q| shared.text_search(q, K).unwrap().len()),
        ));
    }
    if let Some(shared) = &shared {
        // How far PostgreSQL's ranking (ts_rank_cd over at most 5,000 matches, no IDF) is
        // from tantivy's BM25: the share of tantivy's top ten that PostgreSQL also returns.
        let mut rng = Rng(17);
        for (label, ranks) in [
            ("two words", (100usize, 5000usize)),
            ("one common word", (0, 20)),
        ] {
            let mut overlap = 0.0;
            let queries = 100;
            for _ in 0..queries {
                let words_in = if label == "two words" { 2 } else { 1 };
                let q: Vec<&str> = (0..words_in)
                    .map(|_| {
                        let r = ranks.0 + (rng.next() % (ranks.1 - ranks.0) as u64) as usize;
                        words.words[r].as_str()
                    })
                    .collect();
                let query = aperture_search::parse(&q.join(" ")).unwrap();
                let ours: Vec<AssetId> = text
                    .search(&query, K)
                    .unwrap()
                    .iter()
                    .map(|h| h.0)
                    .collect();
                let theirs: Vec<AssetId> = shared
                    .text_search(&query, K)
                    .unwrap()
                    .iter()
                    .map(|h| h.0)
                    .collect();
                if !ours.is_empty() {
                    let common = theirs.iter().filter(|id| ours.contains(id)).count();
                    overlap += common as f64 / ours.len() as f64;
                }
            }
            let overlap = overlap / queries as f64;
            println!("  PostgreSQL's top 10 against tantivy's, {label}: overlap {overlap:.2}");
            summary.push(format!(
                "| full text, {n} docs | PostgreSQL vs tantivy top 10, {label} | overlap {overlap:.2} | | | | | |"
            ));
        }
    }
    for (engine, search) in &engines {
        let mut rng = Rng(13);
        for (label, query_words, filter, ranks) in [
            ("one word", 1, "", (100usize, 5000usize)),
            ("two words", 2, "", (100, 5000)),
            (
                "two words + collection filter",
                2,
                " collection:press",
                (100, 5000),
            ),
            ("one common word (ranks 1–20)", 1, "", (0, 20)),
        ] {
            let mut times = Vec::new();
            for _ in 0..200 {
                let q: Vec<&str> = (0..query_words)
                    .map(|_| {
                        let r = ranks.0 + (rng.next() % (ranks.1 - ranks.0) as u64) as usize;
                        words.words[r].as_str()
                    })
                    .collect();
                let query = aperture_search::parse(&format!("{}{filter}", q.join(" "))).unwrap();
                let t = Instant::now();
                std::hint::black_box(search(&query));
                times.push(t.elapsed().as_secs_f64() * 1e6);
            }
            times.sort_by(f64::total_cmp);
            let (p50, p99) = (percentile(&times, 0.5), percentile(&times, 0.99));
            println!("  {engine:<10} {label:<32} p50 {p50:>9.0} µs   p99 {p99:>9.0} µs");
            summary.push(format!(
                "| full text, {n} docs | {engine}: {label} | | | p50 {:.2} ms | p99 {:.2} ms | | |",
                p50 / 1e3,
                p99 / 1e3
            ));
        }
    }
}

/// A full-text engine's search: the query to the number of hits.
type TextSearch<'a> = Box<dyn Fn(&aperture_search::Query) -> usize + 'a>;

/// A text document of the full-text benchmark.
fn text_doc(i: usize, body: String) -> Indexed {
    Indexed {
        asset: asset_of(i),
        collection: ["press", "archive", "field"][i % 3].into(),
        kind: MediaKind::Document,
        date: UnixMillis(1_600_000_000_000 + i as i64 * 1000),
        name: format!("doc-{i}.txt"),
        paths: vec![],
        meta: vec![],
        labels: vec![],
        passages: vec![Passage {
            text: body,
            language: Some("en".into()),
            place: aperture_core::Place::Whole,
            source: "text",
            original: None,
        }],
        languages: ["en".to_owned()].into(),
        translated: Default::default(),
        has: Default::default(),
        vectors: vec![],
        phash: None,
    }
}

fn main() {
    let args = args();
    println!(
        "USearch SIMD: {} (compiled: {})",
        usearch::hardware_acceleration_available(),
        usearch::hardware_acceleration_compiled()
    );
    // The graph walks 8-bit vectors (`vectors::Space`) and re-scores in f32: both kernels.
    for dims in &args.dims {
        for (name, quantization) in [
            ("i8", usearch::ScalarKind::I8),
            ("f32", usearch::ScalarKind::F32),
        ] {
            let probe = usearch::Index::new(&usearch::IndexOptions {
                dimensions: *dims,
                metric: usearch::MetricKind::IP,
                quantization,
                ..Default::default()
            })
            .unwrap();
            println!(
                "  {name} inner product, {dims} dimensions: {}",
                probe.hardware_acceleration()
            );
        }
    }
    let mut summary = Vec::new();
    if args.n > 0 {
        vectors(&args, &mut summary);
    }
    if args.docs > 0 {
        fulltext(&args, &mut summary);
    }
    println!(
        "\n== summary (one query at a time on one thread, batches on every core; recall@10 against exact search)"
    );
    println!("| data | index | setting | recall@10 | p50 | p99 | q/s | build |");
    println!("|---|---|---|---|---|---|---|---|");
    for line in summary {
        println!("{line}");
    }
}
