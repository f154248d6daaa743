//! Speech on the sample prompts (real recordings, 8 kHz telephone speech, with the
//! transcripts shipped beside them) with the real Whisper tiny.en, and its guards: silence and
//! monkeys screaming give no text.

use std::path::Path;

use aperture_analyze::{Analyzer, Input, Speech};
use aperture_core::{InsightValue, MediaKind, Place};
use aperture_media::fixtures::ffmpeg;

use crate::real_models::{models_dir, samples_dir};

/// The segments found in a file: (start ms, end ms, text).
fn transcribe(speech: &Speech, path: &Path) -> Vec<(u64, u64, String)> {
    let mut asset = crate::asset(
        path.file_name().unwrap().to_str().unwrap(),
        MediaKind::Audio,
        None,
    );
    asset.mime = "audio/wav".into();
    let out = speech
        .analyze(&Input {
            asset: &asset,
            path,
            insights: &[],
            frames: &[],
        })
        .unwrap();
    out.insights
        .iter()
        .map(|i| {
            assert_eq!(i.language.as_deref(), Some("en"));
            match (&i.value, i.place) {
                (
                    InsightValue::TranscriptSegment(s),
                    Place::Time {
                        start_ms, end_ms, ..
                    },
                ) => (start_ms, end_ms, s.text.clone()),
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

/// Lower case, letters, digits and single spaces.
fn normal(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn prompts_are_transcribed_with_their_times() {
    let speech = Speech::new(&models_dir()).unwrap();
    let audio = samples_dir().join("audio");
    for (file, said) in [
        ("hello-world.wav", "hello world"),
        ("tt-weasels.wav", "weasels have eaten our phone system"),
        (
            "conf-onlyperson.wav",
            "you are currently the only person in this conference",
        ),
    ] {
        let found = transcribe(&speech, &audio.join(file));
        let text = normal(
            &found
                .iter()
                .map(|s| s.2.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        assert_eq!(text, said, "{file}: {found:?}");
        let duration = aperture_media::probe_file(&audio.join(file), &Default::default())
            .unwrap()
            .metadata
            .duration_ms
            .unwrap();
        for (start, end, _) in &found {
            assert!(start < end && *end <= duration + 250, "{file}: {found:?}");
        }
    }
}

#[test]
fn silence_and_monkeys_invent_nothing() {
    let speech = Speech::new(&models_dir()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let silence = ffmpeg(
        dir.path(),
        &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "20"],
        "silence.wav",
    );
    assert!(transcribe(&speech, &silence).is_empty());
    let monkeys = samples_dir().join("audio/tt-monkeys.wav");
    let heard = transcribe(&speech, &monkeys);
    assert!(heard.is_empty(), "{heard:?}");
}

/// Whisper's own guards, past the voice detector: 30 s of digital silence, loud white noise
/// and a chord played on and off (music without words) give no text.
#[test]
fn whisper_hears_no_words_in_silence_noise_or_music() {
    use aperture_analyze::speech::whisper::Whisper;
    use aperture_media::audio::{AudioOptions, samples};

    let whisper = Whisper::load(&models_dir().join("whisper-tiny-en")).unwrap();
    assert_eq!(whisper.transcribe(&vec![0.0; 16_000 * 30]).unwrap(), None);
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in [
        ("noise.wav", "anoisesrc=d=20:c=white:a=0.3:r=16000"),
        (
            "chord.wav",
            "aevalsrc=0.2*(sin(2*PI*261.63*t)+sin(2*PI*329.63*t)+sin(2*PI*392*t))\
             *(0.6+0.4*sin(2*PI*2*t)):d=20:s=16000",
        ),
    ] {
        let path = ffmpeg(dir.path(), &["-f", "lavfi", "-i", source], name);
        let mut sound = Vec::new();
        for chunk in samples(&path, name, 0, None, &AudioOptions::default()).unwrap() {
            sound.extend(chunk.unwrap());
        }
        for window in sound.chunks(16_000 * 30) {
            let said = whisper.transcribe(window).unwrap();
            assert_eq!(said, None, "{name}");
        }
    }
}
