#!/usr/bin/env bash
# Fetch the parallel text of the translation quality bench. Every text comes out of a Debian
# package fetched with apt-get at a pinned version and checked against a sha256 recorded here;
# the alignment is done by scripts/bench/translate_set.py (python3, stdlib only).
#
#   scripts/bench/fetch-translate-set.sh [DEST] [--force]    default DEST: target/translate-bench
#
#   DEST/refcard.tsv   "id<TAB>lang<TAB>text": the descriptions of the Debian reference card
#                      (debian-refcard 12.0) in en es fr it pt ca gl ro de ru, one id per table
#                      row, aligned through the command each row describes (the card's commands
#                      are the same in every language), e.g. rc-apt-upgrade
#   DEST/prompts.tsv   the same layout: Asterisk prompts (asterisk-core-sounds-XX 1.6.1-1,
#                      core-sounds-XX.txt) in en es fr it ru, aligned by prompt name; a prompt is
#                      kept when English and at least two other languages have it
#   DEST/SOURCES.txt   packages, versions, sha256 and licences
#
# What is left out, and why (translate_set.py prints each refcard drop on stderr):
#  - a row whose text is the English one in another language (that translation was never done:
#    gl and ro leave about 15 of 85 refcard rows in English, es 8, ru 2); that language only;
#  - prompts in digits/, letters/, phonetic/ (single words, spelled letters) and silence/;
#  - notes in prompts: "[beep]", "(simple tone sound plays)"; prompts left with no words;
#  - a prompt whose length is under 1/4 or over 4 times the English one (a placeholder such as
#    the French demo-moreinfo, "Ce message n'a pas encore été écrit.").
# The Italian prompt file lost some accented letters to "?"; the few words hit are restored.
# The Spanish prompt file is written without accents ("numero", "contrasena") and is kept so.
#
# Downloads about 2.6 MB. Idempotent: nothing is done while DEST/refcard.tsv and
# DEST/prompts.tsv exist (--force makes them again).
# Needs apt-get/dpkg-deb (Debian with bookworm main in the apt sources), pdftotext
# (poppler-utils) and python3.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEST=""
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "fetch-translate-set.sh: unknown option '$arg'" >&2
            usage >&2
            exit 2
            ;;
        *)
            [[ -z "$DEST" ]] || {
                echo "fetch-translate-set.sh: only one DEST please" >&2
                exit 2
            }
            DEST=$arg
            ;;
    esac
done
DEST=${DEST:-$ROOT/target/translate-bench}

say() { printf 'fetch-translate-set: %s\n' "$*" >&2; }
die() {
    printf 'fetch-translate-set: error: %s\n' "$*" >&2
    exit 1
}

if ((FORCE == 0)) && [[ -s "$DEST/refcard.tsv" && -s "$DEST/prompts.tsv" ]]; then
    say "present: $DEST"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Pins. The sha256 is of the .deb the registry serves for that exact version.
# ---------------------------------------------------------------------------------------------
REFCARD_VER=12.0
REFCARD_SHA=9cb06051459a8fbefd0a1d0013a6e8b14931ae544402aa9f56f1e77f555cfd1f
# The card ships in 30 languages; these are the ones of the bench. Each as refcard-XX-a4.pdf.gz
# (some also have a US letter copy, -lt, with the same text).
REFCARD_LANGS=(en es fr it pt ca gl ro de ru)

SOUNDS_VER=1.6.1-1
PROMPT_LANGS=(en es fr it ru)
# asterisk-core-sounds-XX: the docs package, with core-sounds-XX.txt.gz (no recordings); the
# same pins as scripts/bench/fetch-speech-set.sh.
declare -A DOC_SHA=(
    [en]=973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50
    [es]=9afdab7f559f036649fb406e625899306ca1004df8ebe39c30bfbd5912d66f74
    [fr]=04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056
    [it]=3884d9457e12f21caa018c18f0d587df5d53ebea14b673d8453a134c5941ab3b
    [ru]=28a61616bb0cd3345a7ea532dec4df9f071e5d0fa9f8c1a563ea9669002f39ab
)

# ---------------------------------------------------------------------------------------------
# The set
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 is needed (scripts/setup.sh)"
command -v pdftotext >/dev/null 2>&1 || die "pdftotext is needed for the reference card (apt-get install poppler-utils)"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aperture-translate.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PY="$(dirname "${BASH_SOURCE[0]}")/translate_set.py"

# sha256_of, verify and deb_fetch.
# shellcheck source=scripts/lib/fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/fetch.sh"

say "refcard: fetching Debian debian-refcard $REFCARD_VER"
deb_fetch debian-refcard "$REFCARD_VER" "$REFCARD_SHA"
members=()
for l in "${REFCARD_LANGS[@]}"; do members+=("./usr/share/doc/debian-refcard/refcard-$l-a4.pdf.gz"); done
mkdir -p "$WORK/refcard"
dpkg-deb --fsys-tarfile "$FETCHED" | tar --no-same-owner -x -C "$WORK/refcard" "${members[@]}"
args=()
for l in "${REFCARD_LANGS[@]}"; do
    gzip -dc "$WORK/refcard/usr/share/doc/debian-refcard/refcard-$l-a4.pdf.gz" >"$WORK/refcard-$l.pdf"
    args+=("$l=$WORK/refcard-$l.pdf")
done
python3 "$PY" refcard "$WORK/refcard.tsv" "${args[@]}"

args=()
for l in "${PROMPT_LANGS[@]}"; do
    say "prompts: fetching Debian asterisk-core-sounds-$l $SOUNDS_VER"
    deb_fetch "asterisk-core-sounds-$l" "$SOUNDS_VER" "${DOC_SHA[$l]}"
    mkdir -p "$WORK/$l"
    dpkg-deb --fsys-tarfile "$FETCHED" | tar --no-same-owner -x -C "$WORK/$l" "./usr/share/doc/asterisk-core-sounds-$l/core-sounds-$l.txt.gz"
    gzip -dc "$WORK/$l/usr/share/doc/asterisk-core-sounds-$l/core-sounds-$l.txt.gz" >"$WORK/core-sounds-$l.txt"
    args+=("$l=$WORK/core-sounds-$l.txt")
done
python3 "$PY" prompts "$WORK/prompts.tsv" "${args[@]}"

{
    echo "Translation bench set, made by scripts/bench/fetch-translate-set.sh."
    echo
    echo "== refcard.tsv (${REFCARD_LANGS[*]})"
    echo "package: Debian debian-refcard $REFCARD_VER (bookworm), sha256 $REFCARD_SHA"
    echo "files:   /usr/share/doc/debian-refcard/refcard-XX-a4.pdf.gz"
    echo "licence: GPL-3+, per the package's copyright file (the card: W. Martin Borgert, Holger Wansing, translators)"
    echo
    echo "== prompts.tsv (${PROMPT_LANGS[*]})"
    for l in "${PROMPT_LANGS[@]}"; do
        echo "package: Debian asterisk-core-sounds-$l $SOUNDS_VER (core-sounds-$l.txt), sha256 ${DOC_SHA[$l]}"
    done
    echo "licence: CC-BY-SA-3.0 (en es fr), CC-BY-3.0 (it ru), per the packages' copyright files"
} >"$WORK/SOURCES.txt"
# Moved in last, so that a run cut short leaves no file that would make the next one skip.
mv "$WORK/SOURCES.txt" "$WORK/refcard.tsv" "$DEST/"
mv "$WORK/prompts.tsv" "$DEST/"

# Rows per language of each file.
for f in refcard prompts; do
    say "$f.tsv: $(awk -F'\t' 'NR > 1 { if (!($2 in n)) order[++k] = $2; n[$2]++; ids[$1] }
        END { printf "%d ids, rows", length(ids); for (i = 1; i <= k; i++) printf " %s=%d", order[i], n[order[i]] }' "$DEST/$f.tsv")"
done
