#!/usr/bin/env bash
# Aperture's tests: install what they need (scripts/setup.sh and the offline model pack), start
# the servers they test against (scripts/services.sh: PostgreSQL, S3, Azurite), then run every
# test in the workspace, the API contract test (scripts/contract.sh) and the browser
# tests (scripts/e2e.sh). Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -p aperture-catalog
#   scripts/test.sh -- --nocapture
#
# The models are installed once into target/test-models/models (pinned, sha256-checked, by
# `aperture models install`); the tests of quality find them through APERTURE_TEST_MODELS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The models the tests of quality run on.
TEST_MODELS=(minilm efficientnet-lite0 ppocr-v6 ppocr-v6-tiny open-nsfw onnxruntime whisper-tiny-en whisper-base face-detector)

bash scripts/setup.sh --services
# PostgreSQL, the S3 server and Azurite on loopback, for the scale-out tests (the catalog and
# blob store suites run on each); their addresses go to the tests in APERTURE_TEST_* variables.
services=$(bash scripts/services.sh start)
eval "$services"
echo "+ cargo build -p aperture --locked"
cargo build -p aperture --locked
data="$ROOT/target/test-models"
./target/debug/aperture --data "$data" init >/dev/null
echo "+ aperture models install ${TEST_MODELS[*]}"
./target/debug/aperture --data "$data" models install "${TEST_MODELS[@]}"
export APERTURE_TEST_MODELS="$data/models"
# Real photos and documents with known content (pinned, sha256-checked; 12 MB).
bash scripts/fetch-samples.sh "$ROOT/target/test-samples"
export APERTURE_TEST_SAMPLES="$ROOT/target/test-samples"
# The OCR evaluation set: text in four languages, rendered and "photographed" (deterministic).
venv="$ROOT/target/ocr-venv"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if [[ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" == 3.11 ]]; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps --only-binary :all: \
        --require-hashes -r scripts/reference/ocr-set-requirements.txt
else
    # The hashes are of the CPython 3.11 wheels; elsewhere the same versions, unhashed.
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --only-binary :all: \
        numpy==2.4.6 pillow==13.0.0
fi
if [[ ! -f "$ROOT/target/test-ocr-set/truth.tsv" ]]; then
    "$venv/bin/python" scripts/reference/ocr_eval_set.py "$ROOT/target/test-ocr-set"
fi
export APERTURE_TEST_OCR_SET="$ROOT/target/test-ocr-set"
# Licence plates drawn on the samples' photos of vehicles (deterministic): Aperture must not read them.
if [[ ! -f "$ROOT/target/test-plate-set/truth.tsv" ]]; then
    "$venv/bin/python" scripts/reference/plate_set.py "$ROOT/target/test-plate-set" \
        --photos "$ROOT/target/test-samples/photos"
fi
export APERTURE_TEST_PLATE_SET="$ROOT/target/test-plate-set"

echo "+ cargo test --workspace --locked${*:+ $*}"
cargo test --workspace --locked "$@"
# Against the binary built above (skipped when the arguments pick some tests only): the API
# against its OpenAPI document (a pinned contract tester), then the web UI in a real browser.
if (($# == 0)); then
    echo "+ scripts/contract.sh"
    bash scripts/contract.sh
    echo "+ scripts/e2e.sh"
    bash scripts/e2e.sh
fi
