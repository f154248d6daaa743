#!/usr/bin/env python3
"""Reference OCR baselines on an ocr_eval_set.py set: predictions TSVs + speed, for ocr_cer.py.

    python3 scripts/reference/ocr_baselines.py SET OUT [--engines rapidocr,tesseract] [--repeat 2]

Writes OUT/<run>.tsv (file<TAB>text, text escaped as in truth.tsv) and OUT/speed.tsv, then
score each with:  python3 scripts/reference/ocr_cer.py SET/truth.tsv OUT/<run>.tsv

Runs:
  rapidocr            rapidocr==3.10.0 + onnxruntime, default config = PP-OCRv6 small det + rec
                      (multilingual, no Cyrillic), PP-OCRv4/v2.0 mobile cls on; one process,
                      onnxruntime intra_op_num_threads=2. Lines are taken in rapidocr's own order
                      (TextDetector.sorted_boxes: top-left y, rows within 10 px, then x) and
                      joined with newline; boxes whose rec score < Global.text_score 0.5 are
                      already dropped by rapidocr.
  tesseract_lang      `tesseract IMG - -l <eng|spa|rus|chi_sim>` per image language, default
                      --oem/--psm (LSTM, psm 3), OMP_THREAD_LIMIT=2, one image at a time.
  tesseract_eng+spa+rus        same with -l eng+spa+rus for every image (language unknown).
  tesseract_eng+spa+rus+chi_sim  same with every installed language.
Speed: images/s over the whole set after one warm-up image, best of --repeat passes, both with
one process using 2 threads ("1x2") and, for throughput, 2 worker processes with 1 thread
each ("2x1").
Needs: pip rapidocr==3.10.0 onnxruntime==1.31.1; apt tesseract-ocr tesseract-ocr-{eng,spa,rus,chi-sim}.
"""
import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ocr_cer import escape, read_tsv  # noqa: E402

TESS_LANG = {"en": "eng", "es": "spa", "ru": "rus", "zh": "chi_sim"}

_engine = None


def _rapid_init(threads):
    global _engine
    from rapidocr import RapidOCR
    _engine = RapidOCR(params={
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    })


def _rapid_one(path):
    res = _engine(path)
    txts = getattr(res, "txts", None) or ()
    return "\n".join(txts)


def _tess_one(args):
    path, lang, threads = args
    env = dict(os.environ, OMP_THREAD_LIMIT=str(threads))
    out = subprocess.run(["tesseract", path, "-", "-l", lang], capture_output=True, env=env, check=True)
    return out.stdout.decode("utf-8")


def timed(fn, items, workers, init=None, initargs=()):
    """Run fn over items with `workers` processes; return (results, seconds excluding warm-up)."""
    with ProcessPoolExecutor(workers, initializer=init, initargs=initargs) as ex:
        list(ex.map(fn, items[:workers]))  # warm-up: model load, first-run allocations
        t0 = time.perf_counter()
        results = list(ex.map(fn, items))
        return results, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("set")
    ap.add_argument("out")
    ap.add_argument("--engines", default="rapidocr,tesseract")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rows = read_tsv(os.path.join(args.set, "truth.tsv"))
    paths = [os.path.join(args.set, r["file"]) for r in rows]
    os.makedirs(args.out, exist_ok=True)
    engines = args.engines.split(",")

    runs = []  # (name, fn, items, init, initargs for 1x2, for 2x1)
    if "rapidocr" in engines:
        runs.append(("rapidocr", _rapid_one, paths, paths, _rapid_init, (2,), (1,)))
    if "tesseract" in engines:
        per_lang = [(p, TESS_LANG[r["language"]]) for p, r in zip(paths, rows)]
        for name, items in [("tesseract_lang", per_lang),
                            ("tesseract_eng+spa+rus", [(p, "eng+spa+rus") for p in paths]),
                            ("tesseract_eng+spa+rus+chi_sim", [(p, "eng+spa+rus+chi_sim") for p in paths])]:
            runs.append((name, _tess_one, [(p, l, 2) for p, l in items], [(p, l, 1) for p, l in items],
                         None, (), ()))

    speed = ["run\tmode\timages\tseconds\timages_per_s"]
    for name, fn, items2, items1, init, a2, a1 in runs:
        results = None
        for mode, workers, items, ia in [("1x2", 1, items2, a2), ("2x1", 2, items1, a1)]:
            best = None
            for _ in range(args.repeat):
                res, secs = timed(fn, items, workers, init, ia)
                best = secs if best is None else min(best, secs)
                results = results or res
            speed.append(f"{name}\t{mode}\t{len(items)}\t{best:.2f}\t{len(items) / best:.2f}")
            print(speed[-1], flush=True)
        with open(os.path.join(args.out, f"{name}.tsv"), "w", encoding="utf-8", newline="\n") as f:
            f.write("file\ttext\n")
            for r, text in zip(rows, results):
                f.write(f"{r['file']}\t{escape(text)}\n")
    with open(os.path.join(args.out, "speed.tsv"), "a", encoding="utf-8") as f:
        f.write("\n".join(speed) + "\n")


if __name__ == "__main__":
    main()
