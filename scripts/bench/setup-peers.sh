#!/usr/bin/env bash
# Make the Python venv that holds the peers of the shot-detection bench (PySceneDetect).
#
#   scripts/bench/setup-peers.sh [VENV]     default VENV: target/bench-venv (from the repo root)
#
# Every package is pinned, dependencies included, so that results compare across machines.
# `scenedetect-headless` is PySceneDetect itself (module `scenedetect`), the build that depends
# on opencv-python-headless instead of opencv-python (which would pull in libGL).
# Idempotent: a venv whose .pins file matches the pins below is left alone.
# Then: target/bench-venv/bin/python scripts/bench/scenedetect_peer.py FILE --detector content
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
)

say() { printf 'setup-peers: %s\n' "$*" >&2; }
command -v python3 >/dev/null 2>&1 || { say "error: python3 is needed (scripts/setup.sh)"; exit 1; }

if [[ -x "$VENV/bin/python" && -f "$VENV/.pins" && "$(cat "$VENV/.pins")" == "${PINS[*]}" ]] &&
    "$VENV/bin/python" -c 'import scenedetect, cv2' 2>/dev/null; then
    say "present: $VENV"
    exit 0
fi
say "creating $VENV"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q --no-deps "${PINS[@]}"
"$VENV/bin/python" -m pip check --disable-pip-version-check >&2
"$VENV/bin/python" -c 'import scenedetect, cv2, numpy; print("setup-peers: scenedetect", scenedetect.__version__, "opencv", cv2.__version__, "numpy", numpy.__version__)' >&2
echo "${PINS[*]}" >"$VENV/.pins"
