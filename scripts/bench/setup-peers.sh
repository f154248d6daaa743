#!/usr/bin/env bash
# Make the Python venv that holds the peers of the benches: PySceneDetect (shot detection) and
# faster-whisper (speech to text, on CTranslate2).
#
#   scripts/bench/setup-peers.sh [VENV]     default VENV: target/bench-venv (from the repo root)
#
# Every package is pinned, dependencies included, so that results compare across machines.
# `scenedetect-headless` is PySceneDetect itself (module `scenedetect`), the build that depends
# on opencv-python-headless instead of opencv-python (which would pull in libGL).
# faster-whisper decodes audio with PyAV (`av`, which bundles its own FFmpeg), tokenizes with
# `tokenizers`, runs its VAD on onnxruntime and imports huggingface_hub (used only to download
# models, which the peer never does). huggingface_hub stays on 0.x: 1.x would pull in httpx,
# typer, pydantic and rich for nothing.
# Idempotent: a venv whose .pins file matches the pins below is left alone.
# Then: target/bench-venv/bin/python scripts/bench/scenedetect_peer.py FILE --detector content
#       target/bench-venv/bin/python scripts/bench/whisper_peer.py --model DIR --compute-type int8 --threads 4 FILE...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-$ROOT/target/bench-venv}
PINS=(
    scenedetect-headless==0.7.2
    opencv-python-headless==4.14.0.94
    numpy==2.4.6
    click==8.2.1
    platformdirs==4.3.8
    tqdm==4.67.1
    faster-whisper==1.2.1
    ctranslate2==4.8.5
    av==18.1.0
    tokenizers==0.23.3
    onnxruntime==1.32.0
    huggingface_hub==0.36.2
    pyyaml==6.0.4
    protobuf==7.36.2
    flatbuffers==25.12.19
    packaging==26.4
    filelock==4.3.2
    fsspec==2026.9.0
    hf-xet==1.8.0
    typing-extensions==4.16.0
    requests==2.34.2
    charset-normalizer==3.5.3
    idna==3.20
    urllib3==2.8.0
    certifi==2026.10.19.post1
)

say() { printf 'setup-peers: %s\n' "$*" >&2; }
command -v python3 >/dev/null 2>&1 || { say "error: python3 is needed (scripts/setup.sh)"; exit 1; }

if [[ -x "$VENV/bin/python" && -f "$VENV/.pins" && "$(cat "$VENV/.pins")" == "${PINS[*]}" ]] &&
    "$VENV/bin/python" -c 'import scenedetect, cv2, faster_whisper, ctranslate2' 2>/dev/null; then
    say "present: $VENV"
    exit 0
fi
say "creating $VENV"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q --no-deps "${PINS[@]}"
"$VENV/bin/python" -m pip check --disable-pip-version-check >&2
"$VENV/bin/python" -c 'import scenedetect, cv2, numpy; print("setup-peers: scenedetect", scenedetect.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__)' >&2
# faster_whisper.vad loads onnxruntime lazily; import it here so a broken wheel shows now.
"$VENV/bin/python" -c 'import faster_whisper, ctranslate2, av, tokenizers, onnxruntime; print("setup-peers: faster-whisper", faster_whisper.__version__, "ctranslate2", ctranslate2.__version__, "av", av.__version__, "onnxruntime", onnxruntime.__version__)' >&2
echo "${PINS[*]}" >"$VENV/.pins"
