#!/usr/bin/env python3
"""faster-whisper (CTranslate2) as the peer of Aperture's speech-to-text bench.

    python3 scripts/bench/whisper_peer.py --model DIR --compute-type float32|int8 --threads N
                                          [--language XX] [--vad] FILE...

DIR is a CTranslate2 Whisper model folder: model.bin, config.json, tokenizer.json (and maybe
vocabulary.txt), the same files Aperture's own Whisper loads. A folder that holds
model.bin.part1 and model.bin.part2 instead of model.bin (the multilingual base model is shipped
that way) is assembled once: the parts are concatenated into model.bin in a cache folder,
DIR/../.peer-cache/NAME (NAME: the folder name of DIR), next to symlinks to DIR's other files;
when DIR/.. is not writable the cache goes to $TMPDIR/aperture-whisper-peer/NAME-HASH instead.
The joined model.bin is reused while the parts keep their sizes and modification times.
CTranslate2 also needs vocabulary.txt or vocabulary.json, which Aperture does not (it reads
tokenizer.json): a folder without one gets the same cache folder, holding a vocabulary.json
derived from tokenizer.json (tokens in id order plus the timestamp tokens, exactly what the
CTranslate2 converter writes) and a symlink to model.bin.

The model is loaded once, WhisperModel(DIR, device="cpu", compute_type=..., cpu_threads=N,
num_workers=1), and timed on its own. Each file is then transcribed with greedy decoding, the
way Aperture decodes: beam_size=1, best_of=1, the usual temperature fallback 0.0..1.0,
condition_on_previous_text=False, without_timestamps=True, language=--language (None: detect),
vad_filter=--vad. The per-file time covers decoding the audio (PyAV), the features and the
whole transcription (the segment generator is consumed). One JSON line is printed at the end:
  {"model", "compute_type", "threads", "load_seconds",
   "files": [{"file", "text", "language", "language_probability", "audio_seconds", "seconds"}],
   "total_audio_seconds", "total_seconds"}
text is the segments' texts joined with a space. With --language the probability is 1.0
(faster-whisper does not detect then). Nothing is downloaded (HF_HUB_OFFLINE=1): DIR must hold
tokenizer.json. Needs the venv of scripts/bench/setup-peers.sh.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--model", required=True, help="CTranslate2 Whisper model folder")
ap.add_argument("--compute-type", choices=["float32", "int8"], required=True)
ap.add_argument("--threads", type=int, required=True, help="CTranslate2 intra-op threads (cpu_threads)")
ap.add_argument("--language", default=None, help="language code such as en, es; default: detect per file")
ap.add_argument("--vad", action="store_true", help="drop silence with faster-whisper's Silero VAD first")
ap.add_argument("files", nargs="+", metavar="FILE")
args = ap.parse_args()

# Never reach out to the Hugging Face hub (faster-whisper falls back to it for a missing tokenizer).
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def die(msg):
    print("whisper_peer: error: " + msg, file=sys.stderr)
    sys.exit(1)


def vocabulary_from_tokenizer(tokenizer_json):
    """CTranslate2's Whisper vocabulary (tokens in id order, then the 1501 timestamp tokens when
    tokenizer.json lacks them), as its converter writes it; checked equal to the vocabulary.txt
    shipped with the multilingual base model."""
    with open(tokenizer_json, encoding="utf-8") as f:
        tok = json.load(f)
    ids = dict(tok["model"]["vocab"])
    for added in tok.get("added_tokens", []):
        ids[added["content"]] = added["id"]
    tokens = [None] * (max(ids.values()) + 1)
    for token, i in ids.items():
        tokens[i] = token
    if any(t is None for t in tokens):
        die("%s: token ids are not contiguous" % tokenizer_json)
    if "<|0.00|>" not in ids:
        tokens += ["<|%.2f|>" % (i * 0.02) for i in range(1501)]
    return tokens


def prepare(model_dir):
    """The folder to load: model_dir itself when CTranslate2 can load it as it is, else a cache
    folder with model.bin (the parts joined, or a symlink), a vocabulary.json derived from
    tokenizer.json when model_dir has no vocabulary file, and symlinks to the other files."""
    has_vocab = any(os.path.isfile(os.path.join(model_dir, v)) for v in ("vocabulary.txt", "vocabulary.json"))
    has_bin = os.path.isfile(os.path.join(model_dir, "model.bin"))
    if has_bin and has_vocab:
        return model_dir
    parts = []
    while not has_bin and os.path.isfile(os.path.join(model_dir, "model.bin.part%d" % (len(parts) + 1))):
        parts.append(os.path.join(model_dir, "model.bin.part%d" % (len(parts) + 1)))
    if not has_bin and not parts:
        die("%s has neither model.bin nor model.bin.part1" % model_dir)
    if not has_vocab and not os.path.isfile(os.path.join(model_dir, "tokenizer.json")):
        die("%s has no vocabulary.txt, vocabulary.json or tokenizer.json" % model_dir)
    stamp = "\n".join("%s %d %d" % (os.path.basename(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in parts)
    name = os.path.basename(model_dir.rstrip("/")) or "model"
    parent = os.path.dirname(model_dir.rstrip("/"))
    candidates = [os.path.join(parent, ".peer-cache", name)]
    key = hashlib.sha256(os.path.realpath(model_dir).encode()).hexdigest()[:12]
    candidates.append(os.path.join(tempfile.gettempdir(), "aperture-whisper-peer", "%s-%s" % (name, key)))
    for cache in candidates:
        try:
            os.makedirs(cache, exist_ok=True)
        except OSError:
            continue
        if not os.access(cache, os.W_OK):
            continue
        target = os.path.join(cache, "model.bin")
        if parts:
            stamp_file = os.path.join(cache, ".parts")
            fresh = (os.path.isfile(stamp_file) and open(stamp_file).read() == stamp
                     and os.path.isfile(target) and not os.path.islink(target)
                     and os.path.getsize(target) == sum(os.path.getsize(p) for p in parts))
            if not fresh:
                print("whisper_peer: joining %d parts of model.bin into %s" % (len(parts), cache), file=sys.stderr)
                tmp = target + ".tmp"
                with open(tmp, "wb") as out:
                    for p in parts:
                        with open(p, "rb") as src:
                            shutil.copyfileobj(src, out, 16 << 20)
                os.replace(tmp, target)
                with open(stamp_file, "w") as f:
                    f.write(stamp)
        keep = {"model.bin", ".parts"} if parts else set()
        if not has_vocab:
            tokens = vocabulary_from_tokenizer(os.path.join(model_dir, "tokenizer.json"))
            tmp = os.path.join(cache, "vocabulary.json.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(tokens, f, ensure_ascii=False)
            os.replace(tmp, os.path.join(cache, "vocabulary.json"))
            keep.add("vocabulary.json")
        # Symlinks to every other file of the model (config.json, tokenizer.json, vocabulary.*).
        for entry in sorted(os.listdir(model_dir)):
            src = os.path.join(model_dir, entry)
            if (entry.startswith("model.bin") and parts) or entry in keep or entry.startswith(".") \
                    or not os.path.isfile(src):
                continue
            link = os.path.join(cache, entry)
            if not (os.path.islink(link) and os.readlink(link) == os.path.abspath(src)):
                if os.path.lexists(link):
                    os.remove(link)
                os.symlink(os.path.abspath(src), link)
        return cache
    die("no writable place to prepare the model folder for %s" % model_dir)


model_dir = os.path.abspath(args.model)
if not os.path.isdir(model_dir):
    die("no model folder %s" % model_dir)
for f in args.files:
    if not os.path.isfile(f):
        die("no file %s" % f)
load_dir = prepare(model_dir)
if not os.path.isfile(os.path.join(load_dir, "tokenizer.json")):
    die("%s has no tokenizer.json (the peer does not download one)" % model_dir)

import ctranslate2  # noqa: E402
import faster_whisper  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402

start = time.perf_counter()
model = WhisperModel(load_dir, device="cpu", compute_type=args.compute_type, cpu_threads=args.threads,
                     num_workers=1)
load_seconds = time.perf_counter() - start

results = []
for f in args.files:
    start = time.perf_counter()
    segments, info = model.transcribe(
        f,
        beam_size=1,
        best_of=1,
        temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
        condition_on_previous_text=False,
        language=args.language,
        vad_filter=args.vad,
        without_timestamps=True,
    )
    text = " ".join(s.text.strip() for s in segments).strip()  # the generator does the decoding
    seconds = time.perf_counter() - start
    results.append({
        "file": f,
        "text": text,
        "language": info.language,
        "language_probability": round(float(info.language_probability), 4),
        "audio_seconds": round(float(info.duration), 3),
        "seconds": round(seconds, 3),
    })

print(json.dumps({
    "model": args.model,
    "compute_type": args.compute_type,
    "threads": args.threads,
    "load_seconds": round(load_seconds, 3),
    "files": results,
    "total_audio_seconds": round(sum(r["audio_seconds"] for r in results), 3),
    "total_seconds": round(sum(r["seconds"] for r in results), 3),
    "vad": args.vad,
    "language": args.language,
    "faster_whisper": faster_whisper.__version__,
    "ctranslate2": ctranslate2.__version__,
}, ensure_ascii=False))
sys.stdout.flush()
