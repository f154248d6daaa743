# Shared by the sample fetchers (scripts/fetch-samples.sh, scripts/bench/fetch-speech-set.sh):
# sha256 checks and pinned Debian packages. The caller defines `say` and `die` and sets WORK (a
# private temporary folder). Sourced, never run.

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

verify() { # FILE SHA256
    local got
    got=$(sha256_of "$1")
    if [[ "$got" != "$2" ]]; then
        die "sha256 mismatch for $(basename "$1"):
    expected $2
    got      $got
  The registry served a different file than the one pinned here. Not using it."
    fi
    say "  sha256 ok  $(basename "$1") ($(du -k "$1" | cut -f1) KiB)"
}

APT_UPDATED=0
# deb_fetch PACKAGE VERSION SHA: download one .deb with apt-get, verify it; sets FETCHED.
deb_fetch() {
    local pkg=$1 ver=$2 sha=$3
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
        die "apt-get and dpkg-deb are needed for $pkg (a Debian machine)"
    fi
    if ! apt-cache show "$pkg=$ver" >/dev/null 2>&1 && ((APT_UPDATED == 0)); then
        say "  apt-get update (package lists do not have $pkg $ver)"
        if [[ ${EUID:-$(id -u)} -eq 0 ]]; then
            apt-get update -qq
        elif command -v sudo >/dev/null 2>&1; then
            sudo apt-get update -qq
        else
            die "package lists lack $pkg $ver; run 'apt-get update' as root"
        fi
        APT_UPDATED=1
    fi
    local dir="$WORK/deb-$pkg"
    mkdir -p "$dir"
    say "  apt-get download $pkg=$ver"
    # As root apt drops to the _apt user, which cannot write into our private temp dir.
    (cd "$dir" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$pkg=$ver") ||
        die "apt-get download $pkg=$ver failed (is Debian 12 'bookworm' in the apt sources?)"
    local debs=("$dir"/*.deb)
    [[ -f "${debs[0]}" ]] || die "apt-get download $pkg=$ver saved no .deb"
    verify "${debs[0]}" "$sha"
    FETCHED="${debs[0]}"
}
