#!/usr/bin/env bash
# Aperture's tests: install what they need (scripts/setup.sh), then run every test in the
# workspace. Extra arguments go to `cargo test`, e.g.
#   scripts/test.sh -p aperture-catalog
#   scripts/test.sh -- --nocapture
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
echo "+ cargo test --workspace --locked${*:+ $*}"
exec cargo test --workspace --locked "$@"
