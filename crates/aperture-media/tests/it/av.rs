//! Audio and video made with `ffmpeg -f lavfi`. These tests need ffmpeg and fail, saying so,
//! without it: a skipped test would hide that the probing was never checked.

use std::time::Duration;

use aperture_core::MediaKind;
use aperture_media::fixtures::{self, ffmpeg, wav};
use aperture_media::{ProbeOptions, probe_file};

use crate::{has_problem, probe, write};

#[test]
fn video() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&fixtures::video(dir.path()));
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("video/mp4", MediaKind::Video)
    );
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!((meta.width, meta.height), (Some(320), Some(240)));
    assert_eq!(meta.frame_rate, Some(25.0));
    assert_eq!(meta.video_codec.as_deref(), Some("h264"));
    assert_eq!(meta.audio_codec.as_deref(), Some("aac"));
    let duration = meta.duration_ms.expect("duration");
    assert!(duration.abs_diff(2000) <= 100, "duration {duration} ms");
    assert_eq!(meta.captured_at.as_deref(), Some("2020-01-02T03:04:05Z"));
    assert!(meta.container.as_deref().is_some_and(|c| c.contains("mp4")));
    let gps = meta.gps.expect("location");
    assert_eq!((gps.latitude, gps.longitude), (48.8582, 2.2945));
    assert_eq!((meta.sample_rate, meta.channels), (Some(44100), Some(1)));
}

#[test]
fn wav_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = wav(dir.path());
    let probe = probe(&path);
    assert_eq!(probe.kind, MediaKind::Audio);
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!(meta.container.as_deref(), Some("wav"));
    assert_eq!((meta.sample_rate, meta.channels), (Some(44100), Some(1)));
    assert_eq!(meta.duration_ms, Some(1000));
    assert_eq!((meta.width, meta.video_codec.as_ref()), (None, None));
}

#[test]
fn audio_only_mp4_is_audio() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1:sample_rate=48000",
            "-ac",
            "2",
            "-c:a",
            "aac",
        ],
        "voice.mp4",
    );
    let probe = probe(&path);
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("audio/mp4", MediaKind::Audio)
    );
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!((meta.sample_rate, meta.channels), (Some(48000), Some(2)));
    assert_eq!(meta.audio_codec.as_deref(), Some("aac"));
}

#[test]
fn truncated_mp4_is_noted_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let whole = std::fs::read(fixtures::video(dir.path())).unwrap();
    let probe = probe(&write(dir.path(), "cut.mp4", &whole[..10_000]));
    assert_eq!(probe.kind, MediaKind::Video);
    assert_eq!(
        probe.metadata.problems.len(),
        1,
        "{:?}",
        probe.metadata.problems
    );
    let problem = &probe.metadata.problems[0];
    assert!(
        problem.starts_with("ffprobe cannot read cut.mp4: "),
        "{problem}"
    );
    // Stable text: no decoder addresses, no temporary paths.
    assert!(
        !problem.contains("0x") && !problem.contains(&*dir.path().to_string_lossy()),
        "{problem}"
    );
}

#[test]
fn missing_ffprobe_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let path = wav(dir.path());
    let opts = ProbeOptions {
        ffprobe: dir.path().join("no-such-ffprobe"),
        ..ProbeOptions::default()
    };
    let probe = probe_file(&path, &opts).unwrap();
    assert_eq!(probe.kind, MediaKind::Audio);
    assert_eq!(
        probe.metadata.problems,
        ["ffprobe not found: install ffmpeg to read audio and video metadata"]
    );
}

#[cfg(unix)]
#[test]
fn hanging_ffprobe_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let path = wav(dir.path());
    let fake = aperture_media::fixtures::script(dir.path(), "slow-ffprobe", "exec sleep 30");
    let opts = ProbeOptions {
        ffprobe: fake,
        ffprobe_timeout: Duration::from_millis(300),
        ..ProbeOptions::default()
    };
    let started = std::time::Instant::now();
    let probe = probe_file(&path, &opts).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        has_problem(&probe, "ffprobe timed out after 0.3 s reading tone.wav"),
        "{:?}",
        probe.metadata.problems
    );
}

/// An HLS playlist behind an ID3 header sniffs as MP3, but names another file on the machine
/// (here a video with sound): neither ffprobe nor ffmpeg's decoding reads that file into the
/// asset (ffmpeg's protocol list alone let both read it: the playlist's entry is a local file).
#[test]
fn a_playlist_posing_as_audio_reads_no_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let other = fixtures::video(dir.path());
    let mut bytes = b"ID3\x03\x00\x00\x00\x00\x00\x00".to_vec();
    bytes.extend_from_slice(
        format!(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:2,\n{}\n#EXT-X-ENDLIST\n",
            other.display()
        )
        .as_bytes(),
    );
    let path = write(dir.path(), "song.mp3", &bytes);
    let probe = probe(&path);
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("audio/mpeg", MediaKind::Audio)
    );
    let meta = &probe.metadata;
    assert_eq!(
        (&meta.video_codec, &meta.audio_codec, meta.duration_ms),
        (&None, &None, None),
        "{meta:?}"
    );
    assert!(
        has_problem(&probe, "ffprobe cannot read song.mp3"),
        "{:?}",
        meta.problems
    );

    let decoded: Result<Vec<Vec<f32>>, _> =
        aperture_media::audio::samples(&path, "song.mp3", 0, None, &Default::default())
            .and_then(|samples| samples.collect());
    let err = decoded
        .expect_err("the other file's sound was decoded")
        .to_string();
    assert!(err.contains("song.mp3"), "{err}");
}
