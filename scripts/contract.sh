#!/usr/bin/env bash
# The API contract test: a third-party tester (schemathesis, pinned) generates requests from
# the OpenAPI document the server serves and checks every answer against it (status codes,
# content types, response bodies and headers, valid data accepted, invalid data refused, auth
# not ignored, no server errors). It runs against `aperture serve` on a fresh data folder on
# 127.0.0.1 and fails on any failure. It does not build Aperture: run
# `cargo build -p aperture` first.
#
#   scripts/contract.sh
#
# Environment:
#   APERTURE_BIN       the binary (default: target/debug/aperture)
#   CONTRACT_EXAMPLES  cases per operation and phase (default: 200: about 4000 requests, a
#                      minute on 2 cores)
#   CONTRACT_SEED      the tester's random seed (default: a fixed one, so runs repeat; set
#                      "random" for a fresh one)
#
# The tester's report (JUnit, and a pytest file reproducing each failure) and the server's
# log go to target/contract-artifacts/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${APERTURE_BIN:-$ROOT/target/debug/aperture}
EXAMPLES=${CONTRACT_EXAMPLES:-200}
SEED=${CONTRACT_SEED:-20240601}
ARTIFACTS=$ROOT/target/contract-artifacts
VENV=$ROOT/target/contract-venv
SCHEMATHESIS_VERSION=4.32.5

say() { printf 'contract: %s\n' "$*" >&2; }
die() {
    printf 'contract: error: %s\n' "$*" >&2
    exit 1
}

[[ -x "$BIN" ]] || die "no Aperture binary at $BIN: build it first (cargo build -p aperture) or set APERTURE_BIN"

if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if [[ "$("$VENV/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p')" != "$SCHEMATHESIS_VERSION" ]]; then
    say "pip install schemathesis==$SCHEMATHESIS_VERSION"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aperture-contract.XXXXXX")
server_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [[ -f "$tmp/serve.log" ]]; then
        mkdir -p "$ARTIFACTS"
        cp "$tmp/serve.log" "$ARTIFACTS/serve.log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

data=$tmp/data
say "init $data"
init_out=$("$BIN" --data "$data" init)
token=$(printf '%s\n' "$init_out" | sed -n 's/^.*admin token: *\(apt_[^[:space:]]*\).*$/\1/p' | head -n1)
[[ -n "$token" ]] || die "init printed no 'admin token: apt_…' line:
$init_out"

# A few files, so that ids exist and originals, thumbnails and duplicates have something to
# answer with: two PNGs (one twice, under another name), a JPEG-named copy and a text file.
mkdir -p "$tmp/files"
"$VENV/bin/python" - "$tmp/files" <<'EOF'
import struct, sys, zlib
from pathlib import Path

def png(path, w, h, seed):
    rows = b"".join(
        b"\x00" + bytes(((x * 7 + y * 3 + seed * 50) % 256) for x in range(w) for _ in range(3))
        for y in range(h))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

out = Path(sys.argv[1])
png(out / "gradient.png", 64, 48, 1)
png(out / "stripes.png", 48, 64, 2)
(out / "copy of gradient.png").write_bytes((out / "gradient.png").read_bytes())
(out / "notes.txt").write_text("harbour at dawn, no parking\n")
EOF
say "ingest"
"$BIN" --data "$data" ingest --index --no-progress --collection demo "$tmp/files" >"$tmp/ingest.log" 2>&1 ||
    die "ingest failed:
$(cat "$tmp/ingest.log")"

say "serve"
"$BIN" --data "$data" serve --listen 127.0.0.1:0 >"$tmp/serve.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 120); do
    url=$(sed -n 's/^.*listening on \(http:\/\/[^[:space:]]*\).*$/\1/p' "$tmp/serve.log" | head -n1)
    [[ -n "$url" ]] && break
    kill -0 "$server_pid" 2>/dev/null || die "aperture serve exited early:
$(cat "$tmp/serve.log")"
    sleep 0.5
done
[[ -n "$url" ]] || die "aperture serve printed no 'listening on http://…' line within 60 s:
$(cat "$tmp/serve.log")"
[[ "$url" == http://127.0.0.1:* ]] || die "the server listens on $url, not on 127.0.0.1"
say "server at $url"

rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
seed=()
[[ "$SEED" == random ]] || seed=(--seed "$SEED")
status=0
started=$SECONDS
# From the throwaway folder, with no example database: nothing of one run steers the next,
# and nothing is left in the working tree. The document's only server is "/", and no
# redirect is followed: every request goes to $url.
(
    cd "$tmp"
    "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/contract.toml" \
        run "$url/api/v1/openapi.json" \
        --header "Authorization: Bearer $token" \
        --checks all \
        --max-examples "$EXAMPLES" \
        "${seed[@]}" \
        --generation-database none \
        --max-redirects 0 \
        --request-timeout 30 \
        --report junit,pytest \
        --report-dir "$ARTIFACTS" \
        --no-color
) || status=$?
say "took $((SECONDS - started)) s; the report and the server's log: $ARTIFACTS"
exit "$status"
