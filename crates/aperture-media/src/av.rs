//! Audio and video: what `ffprobe` says about the container and its streams.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aperture_core::{Gps, MediaKind};
use serde::Deserialize;

use crate::{Probe, ProbeOptions, file_label};

/// More than `ffprobe -show_format -show_streams` prints for any real file.
const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `ffprobe` on `path` and fills in `probe`: the container, codecs, size, duration, rates
/// and creation time. The kind becomes [`MediaKind::Video`] when there is a video stream (cover
/// art does not count) and [`MediaKind::Audio`] when there is only audio. Failures are noted in
/// the problems.
pub(crate) fn probe(path: &Path, opts: &ProbeOptions, probe: &mut Probe) {
    let label = file_label(path);
    let problem = match run_ffprobe(path, opts) {
        Ok(run) if run.status.success() => match serde_json::from_slice::<Output>(&run.stdout) {
            Ok(output) => return apply(&output, &label, probe),
            Err(e) => format!("cannot parse ffprobe output for {label}: {e}"),
        },
        Ok(run) => format!(
            "ffprobe cannot read {label}: {}",
            first_error_line(&run.stderr, path, &label)
                .unwrap_or_else(|| format!("ffprobe failed ({})", run.status))
        ),
        Err(RunError::NotFound) => {
            "ffprobe not found: install ffmpeg to read audio and video metadata".to_owned()
        }
        Err(RunError::TimedOut(limit)) => format!(
            "ffprobe timed out after {} s reading {label}",
            limit.as_secs_f64()
        ),
        Err(RunError::Io(e)) => format!("cannot run {}: {e}", opts.ffprobe.display()),
    };
    probe.metadata.problems.push(problem);
}

struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

enum RunError {
    NotFound,
    TimedOut(Duration),
    Io(io::Error),
}

/// Runs `ffprobe`, reading its output on two threads so neither pipe can fill up and stall it,
/// and kills it when it runs past the timeout.
fn run_ffprobe(path: &Path, opts: &ProbeOptions) -> Result<Run, RunError> {
    let mut child = Command::new(&opts.ffprobe)
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .args(INPUT_GUARDS)
        .arg("-i")
        .arg(input_url(path))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => RunError::NotFound,
            _ => RunError::Io(e),
        })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        kill(&mut child);
        return Err(RunError::Io(io::Error::other(
            "ffprobe's output pipes are missing",
        )));
    };
    let (tx, rx) = mpsc::channel();
    if let Err(e) = drain(stdout, tx.clone(), true).and_then(|()| drain(stderr, tx, false)) {
        kill(&mut child);
        return Err(RunError::Io(e));
    }

    let deadline = Instant::now() + opts.ffprobe_timeout;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((true, bytes)) => out = bytes,
            Ok((false, bytes)) => err = bytes,
            Err(_) => {
                kill(&mut child);
                return Err(RunError::TimedOut(opts.ffprobe_timeout));
            }
        }
    }
    let status = child.wait().map_err(RunError::Io)?;
    Ok(Run {
        status,
        stdout: out,
        stderr: err,
    })
}

/// Input options for every ffprobe and ffmpeg run on a stored file: the local file only, read
/// as one of the containers of audio and video. A playlist (HLS, DASH), a concat list or any
/// other format that names further files is refused even when sniffing took it for audio or
/// video (an ID3 header makes an HLS playlist `audio/mpeg`): it would read another file on
/// the server into the asset. The protocol list alone does not stop that: a playlist's
/// entries are local files too.
pub(crate) const INPUT_GUARDS: &[&str] = &[
    "-protocol_whitelist",
    "file",
    "-format_whitelist",
    // Demuxer names (`ffmpeg -demuxers`); `mov` is mov,mp4,m4a,3gp,3g2,mj2 and `matroska`
    // matroska,webm, `live_flv` ffmpeg's choice for FLV recorded from a live stream. Of these
    // only mov can open other files (its data references), and only when asked to
    // (`enable_drefs`, off by default).
    "mov,matroska,webm,avi,asf,mpeg,mpegts,mpegvideo,m4v,h264,hevc,av1,ivf,obu,flv,live_flv,mxf,nut,\
     rm,dv,wtv,gxf,vc1,h263,mp3,aac,ac3,eac3,dts,dtshd,truehd,mlp,flac,wav,w64,aiff,caf,au,\
     amr,amrnb,amrwb,ogg,ape,wv,tta,tak,dsf,mpc,mpc8,oma,voc,loas,gsm,qcp,xwma",
];

/// `file:` keeps ffprobe from reading a name as an option (`-x.mp4`) or a protocol
/// (`http:...`, `concat:...`).
pub(crate) fn input_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

/// Reads a pipe to its end on a thread and sends what it read, tagged with `is_stdout`.
fn drain<R: Read + Send + 'static>(
    pipe: R,
    tx: mpsc::Sender<(bool, Vec<u8>)>,
    is_stdout: bool,
) -> io::Result<()> {
    let thread = std::thread::Builder::new().name("ffprobe-output".to_owned());
    thread.spawn(move || {
        let mut bytes = Vec::new();
        // A read error just ends the output early; the exit status tells what happened.
        let _ = pipe.take(MAX_OUTPUT_BYTES).read_to_end(&mut bytes);
        let _ = tx.send((is_stdout, bytes));
    })?;
    Ok(())
}

fn kill(child: &mut Child) {
    if let Err(e) = child.kill() {
        tracing::warn!(error = %e, "cannot kill ffprobe");
    }
    let _ = child.wait();
}

/// The first line ffprobe wrote to stderr, without the decoder's address (`@ 0x55d…`) and
/// with the probed path replaced by the file's name, so the same damage reads the same.
fn first_error_line(stderr: &[u8], path: &Path, label: &str) -> Option<String> {
    let stderr = String::from_utf8_lossy(stderr);
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty())?;
    let url = input_url(path);
    let line = line.replace(&*url.to_string_lossy(), label);
    Some(strip_address(&line))
}

/// `[mov,mp4 @ 0x5581f0] moov atom not found` → `[mov,mp4] moov atom not found`.
pub(crate) fn strip_address(line: &str) -> String {
    match (line.find(" @ 0x"), line.find(']')) {
        (Some(at), Some(close)) if at < close => format!("{}{}", &line[..at], &line[close..]),
        _ => line.to_owned(),
    }
}

/// What we read of `ffprobe -print_format json -show_format -show_streams`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Output {
    streams: Vec<Stream>,
    format: Format,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Format {
    format_name: Option<String>,
    duration: Option<String>,
    tags: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    sample_rate: Option<String>,
    channels: Option<u32>,
    duration: Option<String>,
    disposition: HashMap<String, i64>,
    tags: HashMap<String, String>,
}

impl Stream {
    fn is(&self, codec_type: &str) -> bool {
        self.codec_type.as_deref() == Some(codec_type)
    }

    /// Cover art in audio files shows up as a one-frame video stream.
    fn is_attached_picture(&self) -> bool {
        self.disposition
            .get("attached_pic")
            .is_some_and(|&v| v != 0)
    }
}

fn apply(output: &Output, label: &str, probe: &mut Probe) {
    let video = output
        .streams
        .iter()
        .find(|s| s.is("video") && !s.is_attached_picture());
    let audio = output.streams.iter().find(|s| s.is("audio"));
    let meta = &mut probe.metadata;
    meta.container = output.format.format_name.clone();
    meta.duration_ms = seconds_to_ms(output.format.duration.as_deref()).or_else(|| {
        let streams = output.streams.iter();
        streams
            .filter_map(|s| seconds_to_ms(s.duration.as_deref()))
            .max()
    });
    if let Some(video) = video {
        meta.video_codec = video.codec_name.clone();
        meta.width = video.width.filter(|&w| w > 0);
        meta.height = video.height.filter(|&h| h > 0);
        meta.frame_rate =
            rate(video.avg_frame_rate.as_deref()).or_else(|| rate(video.r_frame_rate.as_deref()));
    }
    if let Some(audio) = audio {
        meta.audio_codec = audio.codec_name.clone();
        meta.sample_rate = audio.sample_rate.as_deref().and_then(|r| r.parse().ok());
        meta.channels = audio.channels.filter(|&c| c > 0);
    }
    let stream_tags = output.streams.iter().map(|s| &s.tags);
    let all_tags: Vec<_> = std::iter::once(&output.format.tags)
        .chain(stream_tags)
        .collect();
    meta.captured_at = captured_at(&all_tags);
    meta.gps = all_tags.iter().find_map(|tags| location(tags));

    let kind = match (video, audio) {
        (Some(_), _) => MediaKind::Video,
        (None, Some(_)) => MediaKind::Audio,
        (None, None) => {
            meta.problems
                .push(format!("ffprobe found no audio or video stream in {label}"));
            return;
        }
    };
    if kind != probe.kind {
        if let Some(mime) = retyped_mime(&probe.mime, kind) {
            probe.mime = mime;
        }
        probe.kind = kind;
    }
}

/// The MIME type of a container sniffed as one kind that turned out to hold the other: an
/// audio-only MP4 is `audio/mp4`, an Ogg with Theora video is `video/ogg`.
fn retyped_mime(mime: &str, kind: MediaKind) -> Option<String> {
    let subtype = match (kind, mime.split_once('/')?) {
        (MediaKind::Audio, ("video", "x-m4v")) => "mp4",
        (MediaKind::Audio, ("video", s @ ("mp4" | "webm" | "x-matroska" | "ogg"))) => s,
        (MediaKind::Video, ("audio", "m4a")) => "mp4",
        (MediaKind::Video, ("audio", s @ ("mp4" | "webm" | "x-matroska" | "ogg"))) => s,
        _ => return None,
    };
    let top = if kind == MediaKind::Audio {
        "audio"
    } else {
        "video"
    };
    Some(format!("{top}/{subtype}"))
}

fn seconds_to_ms(seconds: Option<&str>) -> Option<u64> {
    let seconds: f64 = seconds?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| (seconds * 1000.0).round() as u64)
}

/// `25/1` → 25.0, `30000/1001` → 29.97; `0/0` (unknown) → `None`.
fn rate(text: Option<&str>) -> Option<f64> {
    let text = text?;
    let value = match text.split_once('/') {
        Some((num, den)) => num.trim().parse::<f64>().ok()? / den.trim().parse::<f64>().ok()?,
        None => text.trim().parse().ok()?,
    };
    (value.is_finite() && value > 0.0).then_some(value)
}

/// When the recording was made. Apple's `creationdate` is the local time with its offset and
/// survives edits, so it wins over `creation_time` (UTC, often the time of the last export).
fn captured_at(all_tags: &[&HashMap<String, String>]) -> Option<String> {
    ["com.apple.quicktime.creationdate", "creation_time"]
        .iter()
        .find_map(|key| {
            all_tags
                .iter()
                .find_map(|tags| tag(tags, key).and_then(iso_time))
        })
}

fn tag<'a>(tags: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str())
}

/// `2020-01-02T03:04:05.000000Z` → `2020-01-02T03:04:05Z`, `…05+0100` → `…05+01:00`. Zero
/// timestamps (the 1904 and 1970 epochs muxers write when they know no time) give `None`.
fn iso_time(text: &str) -> Option<String> {
    let text = text.trim();
    let date_time = text.get(..19)?;
    let shape_ok = date_time.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'-',
        10 => b == b'T' || b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    if !shape_ok || date_time.starts_with("1904-01-01") || date_time.starts_with("1970-01-01") {
        return None;
    }
    let rest = &text[19..];
    let zone = rest.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let zone = match zone.as_bytes() {
        [] => String::new(),
        [b'Z' | b'z'] => "Z".to_owned(),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let [h1, h2, m1, m2] = digits.map(char::from);
            format!("{}{h1}{h2}:{m1}{m2}", char::from(*sign))
        }
        _ => return None,
    };
    Some(format!("{}T{}{zone}", &date_time[..10], &date_time[11..]))
}

/// The ISO 6709 position phones write into videos (`+48.8582+002.2945+035.000/`), in decimal
/// degrees. Other ISO 6709 forms (degrees and minutes run together) are not read.
fn location(tags: &HashMap<String, String>) -> Option<Gps> {
    let text = ["com.apple.quicktime.location.iso6709", "location"]
        .iter()
        .find_map(|key| tag(tags, key))?;
    let text = text.trim().trim_end_matches('/');
    let text = text.split("CRS").next()?;
    let mut numbers = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices().skip(1) {
        if c == '+' || c == '-' {
            numbers.push(&text[start..i]);
            start = i;
        }
    }
    numbers.push(&text[start..]);
    let [latitude, longitude, rest @ ..] = numbers.as_slice() else {
        return None;
    };
    let degrees = |text: &str, max_int_digits: usize| -> Option<f64> {
        let digits = text.get(1..)?;
        let int_digits = digits.split('.').next()?.len();
        let value: f64 = text.parse().ok()?;
        (int_digits <= max_int_digits && value.is_finite()).then_some(value)
    };
    let latitude = degrees(latitude, 2).filter(|l| l.abs() <= 90.0)?;
    let longitude = degrees(longitude, 3).filter(|l| l.abs() <= 180.0)?;
    let altitude = rest.first().and_then(|a| a.parse::<f64>().ok());
    Some(Gps {
        latitude,
        longitude,
        altitude: altitude.filter(|a| a.is_finite()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aperture_core::MediaMetadata;

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rates() {
        assert_eq!(rate(Some("25/1")), Some(25.0));
        assert!((rate(Some("30000/1001")).unwrap() - 29.97).abs() < 0.001);
        assert_eq!(rate(Some("0/0")), None);
        assert_eq!(rate(Some("24")), Some(24.0));
        assert_eq!(rate(Some("x/1")), None);
        assert_eq!(rate(None), None);
    }

    #[test]
    fn durations() {
        assert_eq!(seconds_to_ms(Some("2.000000")), Some(2000));
        assert_eq!(seconds_to_ms(Some("0.0235")), Some(24));
        assert_eq!(seconds_to_ms(Some("N/A")), None);
        assert_eq!(seconds_to_ms(Some("-1")), None);
    }

    #[test]
    fn times() {
        let t = |s| iso_time(s);
        assert_eq!(
            t("2020-01-02T03:04:05.000000Z").as_deref(),
            Some("2020-01-02T03:04:05Z")
        );
        assert_eq!(
            t("2020-01-02T03:04:05+0100").as_deref(),
            Some("2020-01-02T03:04:05+01:00")
        );
        assert_eq!(
            t("2020-01-02 03:04:05").as_deref(),
            Some("2020-01-02T03:04:05")
        );
        assert_eq!(t("1904-01-01T00:00:00.000000Z"), None);
        assert_eq!(t("1970-01-01T00:00:00.000000Z"), None);
        assert_eq!(t("yesterday"), None);
        assert_eq!(t("2020-01-02T03:04:05 and more"), None);
    }

    #[test]
    fn apple_creation_date_wins() {
        let format = tags(&[("creation_time", "2020-01-02T03:04:05.000000Z")]);
        let stream = tags(&[(
            "com.apple.quicktime.creationdate",
            "2020-01-02T04:04:05+0100",
        )]);
        assert_eq!(
            captured_at(&[&format, &stream]).as_deref(),
            Some("2020-01-02T04:04:05+01:00")
        );
    }

    #[test]
    fn locations() {
        let gps = location(&tags(&[("location", "+48.8582+002.2945/")])).unwrap();
        assert_eq!(
            (gps.latitude, gps.longitude, gps.altitude),
            (48.8582, 2.2945, None)
        );
        let gps = location(&tags(&[(
            "com.apple.quicktime.location.ISO6709",
            "-33.8650+151.2094+012.500/",
        )]))
        .unwrap();
        assert_eq!(
            (gps.latitude, gps.longitude, gps.altitude),
            (-33.865, 151.2094, Some(12.5))
        );
        // Degrees and minutes run together: not read rather than misread.
        assert_eq!(location(&tags(&[("location", "+4851.49+00217.67/")])), None);
        assert_eq!(location(&tags(&[("location", "somewhere")])), None);
    }

    #[test]
    fn error_lines_are_stable() {
        let path = Path::new("/tmp/x/clip.mp4");
        let stderr = b"\n[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d0c3a0] moov atom not found\n\
            file:/tmp/x/clip.mp4: Invalid data found when processing input\n";
        assert_eq!(
            first_error_line(stderr, path, "clip.mp4").as_deref(),
            Some("[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found")
        );
        let stderr = b"file:/tmp/x/clip.mp4: Invalid data found when processing input\n";
        assert_eq!(
            first_error_line(stderr, path, "clip.mp4").as_deref(),
            Some("clip.mp4: Invalid data found when processing input")
        );
    }

    #[test]
    fn audio_only_mp4_is_audio() {
        let output: Output = serde_json::from_str(
            r#"{"streams": [
                {"codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}},
                {"codec_type": "audio", "codec_name": "aac", "sample_rate": "48000", "channels": 2}
              ],
              "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2", "duration": "1.5"}}"#,
        )
        .unwrap();
        let mut probe = Probe {
            mime: "video/mp4".to_owned(),
            kind: MediaKind::Video,
            metadata: MediaMetadata::default(),
        };
        apply(&output, "song.m4a", &mut probe);
        assert_eq!(
            (probe.mime.as_str(), probe.kind),
            ("audio/mp4", MediaKind::Audio)
        );
        let meta = &probe.metadata;
        assert_eq!(meta.video_codec, None);
        assert_eq!(meta.audio_codec.as_deref(), Some("aac"));
        assert_eq!((meta.sample_rate, meta.channels), (Some(48000), Some(2)));
        assert_eq!(meta.duration_ms, Some(1500));
        assert!(meta.problems.is_empty());
    }
}
