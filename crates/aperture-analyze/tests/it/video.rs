//! The video analyzer on edits ffmpeg builds with known transitions, and on bad input.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aperture_analyze::video::{Video, VideoOptions};
use aperture_analyze::{Analyzer, Error, Input, Output};
use aperture_catalog::Asset;
use aperture_catalog::jobs::{Part, PartResult};
use aperture_core::value::{ShotContent, Transition};
use aperture_core::{AssetId, ContentHash, InsightValue, MediaKind, Place, UnixMillis};
use aperture_media::fixtures::ffmpeg;

/// The asset as ingest would record it: probed for real.
fn probed(path: &Path) -> Asset {
    let probe = aperture_media::probe_file(path, &Default::default()).unwrap();
    Asset {
        id: AssetId::new(),
        collection: "c".into(),
        hash: ContentHash::of(path.as_os_str().as_encoded_bytes()),
        size: std::fs::metadata(path).unwrap().len(),
        kind: MediaKind::Video,
        mime: probe.mime,
        ingested_at: UnixMillis::now(),
        captured_at: None,
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        metadata: probe.metadata,
    }
}

fn analyze(video: &Video, path: &Path) -> Result<Output, Error> {
    analyze_with(video, path)
}

/// 25 fps, 320×240: a Mandelbrot zoom (0–3 s, steady change that is no transition), a hard
/// cut to a moving test pattern, a one-second dissolve (5–6 s) into moving gradients, a one-second fade through black (8–9 s) into
/// colour bars that do not move (9–12 s).
fn edit(dir: &Path) -> PathBuf {
    ffmpeg(
        dir,
        &[
            "-filter_complex",
            "mandelbrot=s=320x240:r=25,trim=duration=3,format=yuv420p,setsar=1,settb=1/25[a];\
             testsrc2=s=320x240:r=25:d=3,format=yuv420p,setsar=1,settb=1/25[b];\
             gradients=s=320x240:r=25:speed=0.01:seed=1:d=4,format=yuv420p,setsar=1,settb=1/25[c];\
             smptebars=s=320x240:r=25:d=4,format=yuv420p,setsar=1,settb=1/25[d];\
             [a][b]concat=n=2:v=1:a=0,settb=1/25[ab];\
             [ab][c]xfade=transition=dissolve:duration=1:offset=5,settb=1/25[abc];\
             [abc][d]xfade=transition=fadeblack:duration=1:offset=8,format=yuv420p[out]",
            "-map",
            "[out]",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
        ],
        "edit.mp4",
    )
}

/// A shot as the tests look at it: start and end (ms), transition, content, keyframe.
type Shot = (u64, u64, Transition, Option<ShotContent>, Option<String>);

fn shots(out: &Output) -> Vec<Shot> {
    out.insights
        .iter()
        .filter_map(|i| match (&i.value, i.place) {
            (
                InsightValue::Shot(s),
                Place::Time {
                    start_ms, end_ms, ..
                },
            ) => Some((
                start_ms,
                end_ms,
                s.transition,
                s.content,
                s.keyframe.clone(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn finds_cuts_dissolves_fades_and_still_segments_in_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = edit(dir.path());
    let out = analyze(&Video::default(), &path).unwrap();
    let found = shots(&out);
    let starts: Vec<(u64, Transition)> = found.iter().map(|s| (s.0, s.2)).collect();
    // The cut at 3 s (±2 frames); the next shots start inside their transitions: the
    // dissolve (5–6 s) and the fade through black (8–9 s).
    let expected = [
        (0, 0, Transition::Start),
        (2920, 3080, Transition::Cut),
        (5000, 6000, Transition::Dissolve),
        (8000, 9000, Transition::Fade),
    ];
    assert_eq!(starts.len(), expected.len(), "{found:?}");
    for ((start, kind), (from, to, want_kind)) in starts.iter().zip(expected) {
        assert_eq!(*kind, want_kind, "{found:?}");
        assert!(
            (from..=to).contains(start),
            "{start} not in {from}..{to}: {found:?}"
        );
    }
    assert_eq!(
        found.last().unwrap().3,
        Some(ShotContent::Static),
        "{found:?}"
    );
    assert!(found.last().unwrap().1.abs_diff(12_000) <= 80, "{found:?}");

    // Every shot has a keyframe, stored, decodable, inside its shot.
    for (_, _, _, _, keyframe) in &found {
        let name = keyframe.as_ref().expect("a keyframe per shot");
        let (_, bytes) = out.derived.iter().find(|(n, _)| n == name).unwrap();
        let image = image::load_from_memory(bytes).unwrap();
        assert_eq!((image.width(), image.height()), (320, 240));
    }
    // The thumbnail and the storyboard (a tile a second, a cue each).
    assert!(out.derived.iter().any(|(n, _)| n == "thumbnail-256.jpg"));
    let vtt = out
        .derived
        .iter()
        .find(|(n, _)| n == "storyboard.vtt")
        .map(|(_, b)| String::from_utf8(b.to_vec()).unwrap())
        .unwrap();
    assert_eq!(vtt.matches(" --> ").count(), 12, "{vtt}");
    assert!(vtt.contains("00:00:11.000 --> 00:00:12.000\nstoryboard.jpg#xywh="));
    assert!(
        out.insights
            .iter()
            .any(|i| matches!(&i.value, InsightValue::Storyboard(s) if s.tiles == 12))
    );
}

/// Splits the video as the worker would, analyses the parts in reverse order (they may run
/// anywhere, in any order) through their stored form, and joins them.
fn analyze_in_parts(video: &Video, path: &Path) -> (usize, Output) {
    let asset = probed(path);
    let input = Input {
        asset: &asset,
        path,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    };
    let stretches = video.split(&input).unwrap().expect("long enough to split");
    let count = stretches.len() as u32;
    let mut parts: Vec<PartResult> = stretches
        .iter()
        .enumerate()
        .rev()
        .map(|(n, &(start_ms, end_ms))| {
            let part = Part {
                index: n as u32 + 1,
                count,
                start_ms,
                end_ms,
            };
            PartResult {
                part,
                version: video.version(),
                result: video.analyze_part(&input, &part).unwrap(),
            }
        })
        .collect();
    parts.sort_by_key(|p| p.part.index);
    (stretches.len(), video.join(&input, &parts).unwrap())
}

/// The largest mean difference per channel (0–255) between the same tile of two outputs'
/// storyboards.
fn sprite_difference(a: &Output, b: &Output) -> f64 {
    let sprite = |out: &Output| {
        let (_, bytes) = out
            .derived
            .iter()
            .find(|(n, _)| n == "storyboard.jpg")
            .unwrap();
        image::load_from_memory(bytes).unwrap().into_rgb8()
    };
    let (w, h) = a
        .insights
        .iter()
        .find_map(|i| match &i.value {
            InsightValue::Storyboard(s) => Some((s.tile_width, s.tile_height)),
            _ => None,
        })
        .unwrap();
    let (a, b) = (sprite(a), sprite(b));
    assert_eq!(a.dimensions(), b.dimensions());
    let mut worst = 0.0f64;
    for ty in 0..a.height() / h {
        for tx in 0..a.width() / w {
            let mut sum = 0u64;
            for y in ty * h..(ty + 1) * h {
                for x in tx * w..(tx + 1) * w {
                    let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
                    sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
                }
            }
            worst = worst.max(sum as f64 / f64::from(w * h * 3));
        }
    }
    worst
}

/// Asserts that the split analysis found the shots of one pass, to a frame (40 ms at 25 fps),
/// with the same transitions, contents and storyboard.
fn assert_same_timeline(whole: &Output, joined: &Output) {
    let (one, parts) = (shots(whole), shots(joined));
    assert_eq!(parts.len(), one.len(), "{parts:?} against {one:?}");
    for (p, o) in parts.iter().zip(&one) {
        assert!(
            p.0.abs_diff(o.0) <= 40 && p.1.abs_diff(o.1) <= 40,
            "{p:?} against {o:?}"
        );
        assert_eq!((p.2, p.3), (o.2, o.3), "{parts:?} against {one:?}");
        assert!(p.4.is_some(), "{parts:?}");
    }
    let tiles = |out: &Output| {
        out.insights.iter().find_map(|i| match &i.value {
            InsightValue::Storyboard(s) => Some((s.tiles, s.interval_ms)),
            _ => None,
        })
    };
    assert_eq!(tiles(joined), tiles(whole));
    // The same frame in every tile: one taken half a second late differs far more.
    let difference = sprite_difference(whole, joined);
    assert!(
        difference < 3.0,
        "storyboards differ by {difference:.1} a channel"
    );
    assert!(joined.derived.iter().any(|(n, _)| n == "thumbnail-256.jpg"));
}

fn in_parts_of(ms: u64) -> Video {
    Video {
        options: VideoOptions {
            chunk: Duration::from_millis(ms),
            ..VideoOptions::default()
        },
    }
}

/// Parts of 5 seconds give the timeline one pass gives: the shots that run across the edges
/// at 5 and 10 seconds (3–5.5 s, 5.5–8.5 s, 8.5–12 s) stay one shot each, with the same
/// transitions, contents and storyboard. Parts of 2.5 s (five, each decoded from a seek, edges
/// inside storyboard tiles and inside the dissolve) too.
#[test]
fn a_video_split_in_five_second_parts_joins_into_one_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let path = edit(dir.path());
    let whole = analyze(&Video::default(), &path).unwrap();
    assert_eq!(shots(&whole).len(), 4, "{:?}", shots(&whole));
    let asset = probed(&path);
    let input = Input {
        asset: &asset,
        path: &path,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    };
    assert!(
        Video::default().split(&input).unwrap().is_none(),
        "twelve seconds are one job at the default ten minutes"
    );
    for (ms, count) in [(5_000, 3), (2_500, 5)] {
        let (parts, joined) = analyze_in_parts(&in_parts_of(ms), &path);
        assert_eq!(parts, count);
        assert_same_timeline(&whole, &joined);
    }
    // The comparison tells a storyboard taken half a second late apart.
    let late = ffmpeg(
        dir.path(),
        &[
            "-ss",
            "0.5",
            "-i",
            path.to_str().unwrap(),
            "-c:v",
            "libx264",
        ],
        "late.mp4",
    );
    let late = analyze(&Video::default(), &late).unwrap();
    let difference = sprite_difference(&whole, &late);
    assert!(
        difference > 3.0,
        "half a second late differs by {difference:.1}"
    );
}

/// A stream whose video starts half a second after its audio (as phones and edit lists make
/// them) splits on the same clock as one pass; a stretch in MPEG-TS, which has no index to
/// seek by, is not split at all.
#[test]
fn a_delayed_video_stream_splits_on_the_same_clock_and_mpeg_ts_is_not_split() {
    let dir = tempfile::tempdir().unwrap();
    let edit = edit(dir.path());
    let edit = edit.to_str().unwrap();
    let delayed = ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=d=13",
            "-itsoffset",
            "0.52",
            "-i",
            edit,
            "-map",
            "0:a",
            "-map",
            "1:v",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
        ],
        "delayed.mp4",
    );
    let whole = analyze(&Video::default(), &delayed).unwrap();
    let (parts, joined) = analyze_in_parts(&in_parts_of(2_500), &delayed);
    assert!(parts >= 5);
    assert_same_timeline(&whole, &joined);

    let ts = ffmpeg(
        dir.path(),
        &["-i", edit, "-c", "copy", "-f", "mpegts"],
        "edit.ts",
    );
    let asset = probed(&ts);
    let input = Input {
        asset: &asset,
        path: &ts,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    };
    assert!(in_parts_of(2_500).split(&input).unwrap().is_none());
}

#[test]
fn a_rotated_phone_video_comes_out_upright_and_variable_frame_rate_keeps_its_clock() {
    let dir = tempfile::tempdir().unwrap();
    // Variable frame rate: a cut at 2.5 s, frames dropped unevenly before it (a whole
    // second, 1–2 s, and every fourth), timestamps kept: the cut must still be at 2.5 s.
    let vfr = ffmpeg(
        dir.path(),
        &[
            "-filter_complex",
            "testsrc2=s=320x240:r=30:d=2.5,setsar=1[a];\
             smptebars=s=320x240:r=30:d=1.5,setsar=1[b];[a][b]concat=n=2:v=1:a=0,\
             select='not(between(n\\,30\\,59))*not(eq(mod(n\\,4)\\,1))'[out]",
            "-map",
            "[out]",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
        ],
        "vfr.mp4",
    );
    // Tagged as rotated by 90° (the display matrix phones write).
    let rotated = ffmpeg(
        dir.path(),
        &[
            "-i",
            vfr.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
        ],
        "rotated.mp4",
    );
    for path in [&vfr, &rotated] {
        let out = analyze(&Video::default(), path).unwrap();
        let found = shots(&out);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].0.abs_diff(2500) <= 70, "{found:?}");
        let (_, thumb) = out
            .derived
            .iter()
            .find(|(n, _)| n == "thumbnail-256.jpg")
            .unwrap();
        let thumb = image::load_from_memory(thumb).unwrap();
        let portrait = thumb.height() > thumb.width();
        assert_eq!(portrait, path == &rotated, "{}", path.display());
    }
}

/// Each bad input fails with an error that names the file and says what is wrong.
#[test]
fn bad_video_fails_with_the_files_name() {
    let dir = tempfile::tempdir().unwrap();
    let good = edit(dir.path());
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    // Truncated before its index (`moov` is written last without faststart).
    cases.push((write("truncated.mp4", &bytes[..bytes.len() / 2]), "moov"));
    cases.push((write("empty.mp4", b""), "empty.mp4"));
    cases.push((write("noise.mp4", &[0x5a; 4096]), "noise.mp4"));
    let audio = ffmpeg(
        dir.path(),
        &["-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac"],
        "audio-only.mp4",
    );
    cases.push((audio, "no video stream"));
    for (path, says) in &cases {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut asset = probed(path);
        asset.kind = MediaKind::Video;
        let err = Video::default()
            .analyze(&Input {
                asset: &asset,
                path,
                insights: &[],
                frames: &[],
                suppress_plates: true,
            })
            .unwrap_err();
        assert!(matches!(err, Error::BadInput { .. }), "{name}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&name) && text.contains(says),
            "{name}: {text}"
        );
    }

    // A header that claims 16,000 × 16,000 is refused before decoding.
    let mut huge = probed(&good);
    (huge.metadata.width, huge.metadata.height) = (Some(16_000), Some(16_000));
    huge.name = "huge.mp4".into();
    let err = Video::default()
        .analyze(&Input {
            asset: &huge,
            path: &good,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("huge.mp4") && err.to_string().contains("16000 × 16000"),
        "{err}"
    );

    // … and by the decoder itself when probing could not say (ffmpeg's -max_pixels).
    let mut small_limit = VideoOptions::default();
    small_limit.decode.max_pixels = 320 * 200;
    let mut unknown = probed(&good);
    (unknown.metadata.width, unknown.metadata.height) = (None, None);
    let err = Video {
        options: small_limit,
    }
    .analyze(&Input {
        asset: &unknown,
        path: &good,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    })
    .unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(err.to_string().contains("edit.mp4"), "{err}");

    // Longer than the limit.
    let short_limit = Video {
        options: VideoOptions {
            max_duration: Duration::from_secs(5),
            ..VideoOptions::default()
        },
    };
    let err = analyze(&short_limit, &good).unwrap_err();
    assert!(
        err.to_string().contains("longer than the 00:00:05 limit"),
        "{err}"
    );
}

#[test]
fn damage_mid_stream_keeps_what_decodes_and_a_second_video_stream_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let good = edit(dir.path());
    let mut bytes = std::fs::read(&good).unwrap();
    // Overwrite a stretch in the middle of the media data.
    let mid = bytes.len() / 2;
    bytes[mid..mid + 2000].fill(0xff);
    let damaged = dir.path().join("damaged.mp4");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = analyze(&Video::default(), &damaged).unwrap();
    assert!(shots(&out).len() >= 3, "{:?}", shots(&out));

    let two = ffmpeg(
        dir.path(),
        &[
            "-i",
            good.to_str().unwrap(),
            "-f",
            "lavfi",
            "-i",
            "color=red:s=160x120:d=12",
            "-map",
            "0:v",
            "-map",
            "1:v",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ],
        "two-streams.mkv",
    );
    let out = analyze(&Video::default(), &two).unwrap();
    assert_eq!(shots(&out).len(), 4, "{:?}", shots(&out));
}

#[cfg(unix)]
#[test]
fn a_hung_decoder_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let good = edit(dir.path());
    let hang = aperture_media::fixtures::script(dir.path(), "ffmpeg-that-hangs", "exec sleep 30");
    let mut options = VideoOptions::default();
    options.decode.ffmpeg = hang;
    options.decode.stall_timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let err = analyze(&Video { options }, &good).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(
        err.to_string().contains("edit.mp4") && err.to_string().contains("stalled"),
        "{err}"
    );
}

#[test]
fn a_preview_is_made_only_for_what_browsers_cannot_play() {
    use aperture_analyze::video::preview::{NAME, Preview};
    let dir = tempfile::tempdir().unwrap();
    let h264 = edit(dir.path());
    let err = analyze_with(&Preview::default(), &h264).unwrap_err();
    assert!(matches!(err, Error::NotApplicable { .. }), "{err:?}");

    // MPEG-4 Part 2 in AVI with MP3 sound, 1280×960: a 720-line H.264/AAC MP4 comes out.
    let avi = ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=s=1280x960:r=25:d=2",
            "-f",
            "lavfi",
            "-i",
            "sine=d=2",
            "-c:v",
            "mpeg4",
            "-c:a",
            "libmp3lame",
        ],
        "old.avi",
    );
    let out = analyze_with(&Preview::default(), &avi).unwrap();
    let (name, file) = &out.derived_files[0];
    assert_eq!(name, NAME);
    let probe = aperture_media::probe_file(file, &Default::default()).unwrap();
    let meta = probe.metadata;
    assert_eq!(
        (meta.video_codec.as_deref(), meta.audio_codec.as_deref()),
        (Some("h264"), Some("aac"))
    );
    assert_eq!((meta.width, meta.height), (Some(960), Some(720)));
    assert!(meta.duration_ms.unwrap().abs_diff(2000) < 100);
    assert!(matches!(
        &out.insights[0].value,
        InsightValue::Preview(p) if p.name == NAME && p.height == 720
    ));
}

fn analyze_with(analyzer: &dyn Analyzer, path: &Path) -> Result<Output, Error> {
    analyzer.analyze(&Input {
        asset: &probed(path),
        path,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    })
}
