#!/usr/bin/env bash
# The web page's end-to-end test: start `aperture serve` on a fresh data folder with the real
# models, then drive the page in headless Chromium (e2e/ui.test.mjs, Node's test runner and
# playwright-core). It does not build Aperture: run `cargo build -p aperture` first.
#
#   scripts/e2e.sh
#
# Environment:
#   APERTURE_BIN          the binary (default: target/debug/aperture)
#   APERTURE_TEST_MODELS  installed models (default: target/test-models/models, which
#                         scripts/test.sh installs); without labels and OCR the test fails
#   APERTURE_TEST_SAMPLES the sample media (default: target/test-samples; see
#                         scripts/fetch-samples.sh)
#   CHROMIUM              the browser (default: /usr/bin/chromium)
#
# Screenshots and the server's log go to target/e2e-artifacts/. Needs Node 20 or later.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${APERTURE_BIN:-$ROOT/target/debug/aperture}
SAMPLES=${APERTURE_TEST_SAMPLES:-$ROOT/target/test-samples}
MODELS=${APERTURE_TEST_MODELS:-}
if [[ -z "$MODELS" && -d "$ROOT/target/test-models/models" ]]; then
    MODELS=$ROOT/target/test-models/models
fi
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ARTIFACTS=$ROOT/target/e2e-artifacts

say() { printf 'e2e: %s\n' "$*" >&2; }
die() {
    printf 'e2e: error: %s\n' "$*" >&2
    exit 1
}

[[ -x "$BIN" ]] || die "no Aperture binary at $BIN: build it first (cargo build -p aperture) or set APERTURE_BIN"
[[ -x "$CHROMIUM" ]] || die "no Chromium at $CHROMIUM: install it (apt-get install chromium) or set CHROMIUM"
command -v node >/dev/null 2>&1 || die "node is needed (Node 20 or later)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || die "Node 20 or later is needed for its test runner, found $(node --version)"
[[ -d "$SAMPLES/photos" ]] || die "no sample media in $SAMPLES: run scripts/fetch-samples.sh $SAMPLES"
if [[ -z "$MODELS" ]]; then
    say "warning: no models (set APERTURE_TEST_MODELS): nothing gets labels or OCR, and the test will say so"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/aperture-e2e.XXXXXX")
server_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    # The server's log is what explains most failures: keep it beside the screenshots.
    if [[ -f "$tmp/serve.log" ]]; then
        mkdir -p "$ARTIFACTS"
        cp "$tmp/serve.log" "$ARTIFACTS/serve.log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

data=$tmp/data
mkdir -p "$data"
if [[ -n "$MODELS" ]]; then
    # Written before `init`, which keeps a config that exists and fills in the defaults.
    printf '[models]\ndir = "%s"\n' "$MODELS" >"$data/aperture.toml"
fi

say "init $data"
init_out=$("$BIN" --data "$data" init)
admin_token=$(printf '%s\n' "$init_out" | sed -n 's/^.*admin token: *\(apt_[^[:space:]]*\).*$/\1/p' | head -n1)
[[ -n "$admin_token" ]] || die "init printed no 'admin token: apt_…' line:
$init_out"
read_token=$("$BIN" --data "$data" token create --name e2e --scopes read,search,ingest | tr -d '[:space:]')
[[ "$read_token" == apt_* ]] || die "token create printed '$read_token', expected a token"

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
say "server at $url"

cd "$ROOT/e2e"
if [[ ! -d node_modules ]]; then
    say "npm ci"
    npm ci --no-audit --no-fund
fi
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"

status=0
APERTURE_URL=$url \
    APERTURE_TOKEN=$admin_token \
    APERTURE_READ_TOKEN=$read_token \
    APERTURE_SAMPLES=$SAMPLES \
    E2E_ARTIFACTS=$ARTIFACTS \
    CHROMIUM=$CHROMIUM \
    node --test --test-reporter=spec ui.test.mjs || status=$?
say "screenshots and the server's log: $ARTIFACTS"
exit "$status"
