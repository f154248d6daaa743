//! Speech on the sample prompts (real recordings, 8 kHz telephone speech, with the
//! transcripts shipped beside them) with the real Whispers (tiny.en, and base for other
//! languages), and their guards: silence and monkeys screaming give no text.

use std::path::Path;

use aperture_analyze::{Analyzer, Input, Speech};
use aperture_core::{InsightValue, MediaKind, Place};
use aperture_media::fixtures::ffmpeg;

use crate::real_models::{models_dir, samples_dir};

/// Both Whispers of the model pack.
fn speech(model: &str) -> Speech {
    Speech::new(&models_dir(), Some(model)).unwrap()
}

/// The segments found in a file: (start ms, end ms, text), all in English.
fn transcribe(speech: &Speech, path: &Path) -> Vec<(u64, u64, String)> {
    segments(speech, path)
        .into_iter()
        .map(|(start, end, text, language)| {
            assert_eq!(language, "en", "{text}");
            (start, end, text)
        })
        .collect()
}

/// An audio asset for a WAV file.
fn audio_asset(path: &Path) -> aperture_catalog::Asset {
    let mut asset = crate::asset(
        path.file_name().unwrap().to_str().unwrap(),
        MediaKind::Audio,
        None,
    );
    asset.mime = "audio/wav".into();
    asset
}

/// The segments found in a file: (start ms, end ms, text, language).
fn segments(speech: &Speech, path: &Path) -> Vec<(u64, u64, String, String)> {
    let asset = audio_asset(path);
    timeline(
        speech
            .analyze(&Input {
                asset: &asset,
                path,
                insights: &[],
                frames: &[],
                suppress_plates: true,
            })
            .unwrap(),
    )
}

/// An analyzer's transcript: (start ms, end ms, text, language) of each segment.
fn timeline(out: aperture_analyze::Output) -> Vec<(u64, u64, String, String)> {
    out.insights
        .into_iter()
        .map(|i| match (i.value, i.place) {
            (
                InsightValue::TranscriptSegment(s),
                Place::Time {
                    start_ms, end_ms, ..
                },
            ) => (start_ms, end_ms, s.text, i.language.unwrap()),
            other => panic!("{other:?}"),
        })
        .collect()
}

/// `prompts` one after another in one file `name`, each resampled alike and followed by its
/// seconds of silence.
fn with_pauses(
    dir: &Path,
    prompts: &[(std::path::PathBuf, u32)],
    name: &str,
) -> std::path::PathBuf {
    let mut args: Vec<String> = Vec::new();
    for (prompt, _) in prompts {
        args.extend(["-i".into(), prompt.to_str().unwrap().into()]);
    }
    let filter = prompts
        .iter()
        .enumerate()
        .map(|(i, (_, pad))| format!("[{i}:a]aresample=16000,apad=pad_dur={pad}[p{i}];"))
        .chain(std::iter::once(format!(
            "{}concat=n={}:v=0:a=1[out]",
            (0..prompts.len())
                .map(|i| format!("[p{i}]"))
                .collect::<String>(),
            prompts.len()
        )))
        .collect::<String>();
    args.extend([
        "-filter_complex".into(),
        filter,
        "-map".into(),
        "[out]".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ffmpeg(dir, &args, name)
}

/// Lower case, letters (accents kept), digits and single spaces.
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
    for model in aperture_analyze::speech::WHISPER_MODELS {
        prompts_are_transcribed_by(&speech(model));
    }
}

fn prompts_are_transcribed_by(speech: &Speech) {
    let audio = samples_dir().join("audio");
    for (file, said) in [
        ("hello-world.wav", "hello world"),
        ("tt-weasels.wav", "weasels have eaten our phone system"),
        (
            "conf-onlyperson.wav",
            "you are currently the only person in this conference",
        ),
    ] {
        let found = transcribe(speech, &audio.join(file));
        if speech.model() == "whisper-base" {
            // Base mishears a word now and then on telephone sound ("even our phone").
            let said: Vec<_> = found.iter().map(|s| s.2.as_str()).collect();
            let name = file.trim_end_matches(".wav");
            assert!(recall(&said.join(" "), name) >= 0.8, "{file}: {found:?}");
            continue;
        }
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
    for model in aperture_analyze::speech::WHISPER_MODELS {
        silence_and_monkeys_invent_nothing_with(&speech(model));
    }
}

fn silence_and_monkeys_invent_nothing_with(speech: &Speech) {
    let dir = tempfile::tempdir().unwrap();
    let silence = ffmpeg(
        dir.path(),
        &["-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "20"],
        "silence.wav",
    );
    assert!(transcribe(speech, &silence).is_empty());
    let monkeys = samples_dir().join("audio/tt-monkeys.wav");
    let heard = transcribe(speech, &monkeys);
    assert!(heard.is_empty(), "{heard:?}");
}

/// Whisper's own guards, past the voice detector: 30 s of digital silence, loud white noise
/// and a chord played on and off (music without words) give no text.
#[test]
fn whisper_hears_no_words_in_silence_noise_or_music() {
    use aperture_analyze::speech::whisper::{Language, Whisper};
    use aperture_media::audio::{AudioOptions, samples};

    let whispers: Vec<Whisper> = aperture_analyze::speech::WHISPER_MODELS
        .iter()
        .map(|m| Whisper::load(&models_dir().join(m)).unwrap())
        .collect();
    let detect = Language::Detect { fallback: None };
    for whisper in &whispers {
        assert_eq!(
            whisper.transcribe(&vec![0.0; 16_000 * 30], detect).unwrap(),
            None
        );
    }
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
        for (whisper, window) in whispers
            .iter()
            .flat_map(|w| sound.chunks(16_000 * 30).map(move |c| (w, c)))
        {
            let said = whisper.transcribe(window, detect).unwrap();
            assert_eq!(said, None, "{name}");
        }
    }
}

/// The words of the transcript shipped with a prompt (`es-NAME` and `fr-NAME` of
/// `audio-intl/`, `NAME` of `audio/`) that Whisper got, accents ignored, as a share of the
/// transcript's words.
fn recall(said: &str, prompt: &str) -> f64 {
    let file = if prompt.starts_with("es-") || prompt.starts_with("fr-") {
        ".transcripts-intl.txt"
    } else {
        ".transcripts-en.txt"
    };
    let lines = std::fs::read_to_string(samples_dir().join(file)).unwrap();
    let truth = lines
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{prompt}: ")))
        .unwrap_or_else(|| panic!("no transcript for {prompt}"));
    let fold = |t: &str| -> Vec<String> {
        normal(t)
            .chars()
            .map(|c| match c {
                'á' | 'à' | 'â' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'î' | 'ï' => 'i',
                'ó' | 'ô' => 'o',
                'ú' | 'ù' | 'û' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                c => c,
            })
            .collect::<String>()
            .split(' ')
            .map(str::to_owned)
            .collect()
    };
    let (said, truth) = (fold(said), fold(truth));
    truth.iter().filter(|w| said.contains(w)).count() as f64 / truth.len() as f64
}

/// English, Spanish and French in one file, a pause between them: each stretch gets its own
/// language and its words; a language given in advance is used as it is.
#[test]
fn each_stretch_of_a_file_keeps_its_own_language() {
    let base = speech("whisper-base");
    let dir = tempfile::tempdir().unwrap();
    let intl = samples_dir().join("audio-intl");
    // English first: the Spanish after it is not taken for the file's language so far (the
    // rule for an unsure guess is `choose_language`'s, tested on its own).
    // Each prompt followed by two seconds of silence.
    let mixed = with_pauses(
        dir.path(),
        &[
            (samples_dir().join("audio/tt-weasels.wav"), 2),
            (intl.join("es-conf-onlyperson.wav"), 2),
            (intl.join("fr-vm-intro.wav"), 2),
        ],
        "three-languages.wav",
    );

    let found = segments(&base, &mixed);
    let languages: Vec<&str> = found.iter().map(|s| s.3.as_str()).collect();
    assert_eq!(languages, ["en", "es", "fr"], "{found:?}");
    assert!(recall(&found[0].2, "tt-weasels") >= 0.8, "{found:?}");
    assert!(
        recall(&found[1].2, "es-conf-onlyperson") >= 0.7,
        "{found:?}"
    );
    assert!(recall(&found[2].2, "fr-vm-intro") >= 0.6, "{found:?}");
    // In time order, one after another.
    assert!(found.windows(2).all(|w| w[0].1 <= w[1].0), "{found:?}");

    // Told the language, Whisper uses it and says it did not detect it.
    let mut spanish = speech("whisper-base");
    spanish.language = Some("es".into());
    let weasels = intl.join("es-tt-weasels.wav");
    let out = spanish
        .analyze(&Input {
            asset: &audio_asset(&weasels),
            path: &weasels,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap();
    let [segment] = out.insights.as_slice() else {
        panic!("{:?}", out.insights)
    };
    assert_eq!(segment.language.as_deref(), Some("es"));
    let InsightValue::TranscriptSegment(s) = &segment.value else {
        panic!("{segment:?}")
    };
    assert_eq!(s.language_prob, None);
    assert!(recall(&s.text, "es-tt-weasels") >= 0.6, "{s:?}");

    // An English-only model cannot be told another language.
    let mut tiny = speech("whisper-tiny-en");
    tiny.language = Some("es".into());
    let err = tiny
        .analyze(&Input {
            asset: &audio_asset(&weasels),
            path: &weasels,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(err.to_string().contains("English only"), "{err}");
}

/// An audio asset for `path` with the metadata ingest would record (its header's duration).
fn probed_asset(path: &Path) -> aperture_catalog::Asset {
    let mut asset = audio_asset(path);
    let probe = aperture_media::probe_file(path, &Default::default()).unwrap();
    asset.mime = probe.mime;
    asset.metadata = probe.metadata;
    asset
}

fn analyze_probed(speech: &Speech, path: &Path) -> Result<usize, String> {
    speech
        .analyze(&Input {
            asset: &probed_asset(path),
            path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .map(|out| out.insights.len())
        .map_err(|e| e.to_string())
}

/// Damaged, empty, endless and hanging sound: a clear error naming the file, and no
/// transcript of part of it; an hour of silence is skipped without a word.
#[test]
fn bad_sound_is_named_and_never_half_transcribed() {
    let tiny = speech("whisper-tiny-en");
    let dir = tempfile::tempdir().unwrap();
    let prompt = samples_dir().join("audio/queue-periodic-announce.wav");
    let cut = |name: &str, from: &Path| {
        let bytes = std::fs::read(from).unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        path
    };
    // MP3 and M4A (index first, as phones write it) cut in half.
    let mp3 = ffmpeg(dir.path(), &["-i", prompt.to_str().unwrap()], "whole.mp3");
    let m4a = ffmpeg(
        dir.path(),
        &[
            "-i",
            prompt.to_str().unwrap(),
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
        ],
        "whole.m4a",
    );
    assert_eq!(analyze_probed(&tiny, &mp3), Ok(1), "the whole MP3 is heard");
    for damaged in [cut("cut.mp3", &mp3), cut("cut.m4a", &m4a)] {
        let name = damaged.file_name().unwrap().to_str().unwrap().to_owned();
        let err = analyze_probed(&tiny, &damaged).unwrap_err();
        assert!(
            err.contains(&name) && err.contains("truncated or damaged"),
            "{name}: {err}"
        );
    }

    // A WAV whose header promises four times the sound it holds (a recorder that died before
    // it wrote the real size): nothing is sized from the header; what is there is heard, and
    // its length comes from the file.
    let mut wav = std::fs::read(&prompt).unwrap();
    let data = wav.windows(4).position(|w| w == b"data").unwrap();
    let size = u32::from_le_bytes(wav[data + 4..data + 8].try_into().unwrap());
    wav[data + 4..data + 8].copy_from_slice(&(size * 4).to_le_bytes());
    let liar = dir.path().join("liar.wav");
    std::fs::write(&liar, &wav).unwrap();
    let heard = |path: &Path| {
        tiny.analyze(&Input {
            asset: &probed_asset(path),
            path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .map(|out| {
            out.insights
                .into_iter()
                .map(|i| (i.place, i.value))
                .collect::<Vec<_>>()
        })
        .map_err(|e| e.to_string())
    };
    let honest = heard(&prompt).unwrap();
    assert_eq!(honest.len(), 1);
    assert_eq!(heard(&liar), Ok(honest));

    // A WAV with a header and no sound at all.
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, {
        let mut header = wav[..data + 8].to_vec();
        header[data + 4..data + 8].copy_from_slice(&0u32.to_le_bytes());
        header
    })
    .unwrap();
    let err = analyze_probed(&tiny, &empty).unwrap_err();
    assert!(err.contains("empty.wav"), "{err}");

    // An hour of silence: nothing said, nothing invented.
    let hour = ffmpeg(
        dir.path(),
        &[
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=16000:cl=mono",
            "-t",
            "3600",
        ],
        "hour.flac",
    );
    assert_eq!(analyze_probed(&tiny, &hour), Ok(0));

    // A decoder that never answers is stopped, naming the file.
    let hanging =
        aperture_media::fixtures::script(dir.path(), "ffmpeg-that-hangs", "exec sleep 60");
    let mut stuck = speech("whisper-tiny-en");
    stuck.audio.ffmpeg = hanging;
    stuck.audio.stall_timeout = std::time::Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = analyze_probed(&stuck, &prompt).unwrap_err();
    assert!(
        err.contains("queue-periodic-announce.wav") && err.contains("stalled"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

/// A recording longer than a chunk is heard in parts that start at fixed times but end at
/// pauses: joined, they give the transcript of the whole, no stretch lost and none twice,
/// though two of its stretches cross the times between parts.
#[test]
fn a_recording_in_parts_is_heard_as_a_whole() {
    use aperture_catalog::jobs::{Part, PartResult};

    let mut base = speech("whisper-base");
    base.chunk = std::time::Duration::from_secs(25);
    let dir = tempfile::tempdir().unwrap();
    let intl = samples_dir().join("audio-intl");
    // Spanish from 0 s, English from about 24.8 s, French from about 47.7 s: 75 s.
    let path = with_pauses(
        dir.path(),
        &[
            (intl.join("es-conf-onlyperson.wav"), 20),
            (samples_dir().join("audio/tt-weasels.wav"), 20),
            (intl.join("fr-vm-intro.wav"), 20),
        ],
        "long-call.flac",
    );
    let asset = probed_asset(&path);
    let input = Input {
        asset: &asset,
        path: &path,
        insights: &[],
        frames: &[],
        suppress_plates: true,
    };
    let whole = timeline(base.analyze(&input).unwrap());
    let stretches = base.split(&input).unwrap().expect("75 s in parts of 25 s");
    assert_eq!(
        stretches,
        [(0, Some(25_000)), (25_000, Some(50_000)), (50_000, None)]
    );
    // Two stretches of speech cross the times between parts.
    for boundary in [25_000, 50_000] {
        assert!(
            whole.iter().any(|s| s.0 < boundary && boundary < s.1),
            "nothing said across {boundary} ms: {whole:?}"
        );
    }
    let count = stretches.len() as u32;
    let results: Vec<PartResult> = stretches
        .iter()
        .enumerate()
        .map(|(i, &(start_ms, end_ms))| {
            let part = Part {
                index: i as u32 + 1,
                count,
                start_ms,
                end_ms,
            };
            PartResult {
                part,
                version: base.version(),
                result: base.analyze_part(&input, &part).unwrap(),
            }
        })
        .collect();
    let joined = timeline(base.join(&input, &results).unwrap());
    let words = |t: &[(u64, u64, String, String)]| -> Vec<(String, String)> {
        t.iter().map(|s| (normal(&s.2), s.3.clone())).collect()
    };
    assert_eq!(words(&joined), words(&whole), "{joined:?}\n{whole:?}");
    assert_eq!(
        joined.iter().map(|s| s.3.as_str()).collect::<Vec<_>>(),
        ["es", "en", "fr"]
    );
    for (j, w) in joined.iter().zip(&whole) {
        assert!(
            j.0.abs_diff(w.0) <= 300 && j.1.abs_diff(w.1) <= 300,
            "{j:?} {w:?}"
        );
    }
}
