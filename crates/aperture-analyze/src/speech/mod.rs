//! Speech: what is said in audio files and in the sound of videos, as transcript segments with
//! their times.
//!
//! The sound is decoded by ffmpeg to 16 kHz mono ([`aperture_media::audio`]) and streamed
//! through a voice activity detector ([`vad`]) that keeps the stretches with speech and skips
//! silence; each stretch (at most 30 s, cut at its quietest moment when longer) is one window
//! for Whisper ([`whisper`]), whose text becomes one `transcript_segment` with the stretch's
//! time range. Memory holds one window of sound, whatever the file's length.
//!
//! What is said is written down; who says it is never modelled, within a file or across
//! files (the privacy rules in the README).

pub mod ct2;
mod decoder;
mod encoder;
pub mod vad;
pub mod whisper;

use std::path::Path;
use std::time::Duration;

use aperture_core::value::TranscriptSegment;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis};
use aperture_media::audio::{self, AudioOptions, SAMPLE_RATE};
use aperture_models as models;

use crate::loaded::Loaded;
use aperture_catalog::MAX_PARTS;
use aperture_catalog::jobs::{Part, PartResult, Stretch};

use crate::{Analyzer, Error, Input, Output};

/// The model pack's Whispers, the one used by default first: base knows 99 languages and
/// tells which is spoken; tiny.en knows English only, in a third of the time.
pub const WHISPER_MODELS: [&str; 2] = ["whisper-base", "whisper-tiny-en"];

/// What the `speech` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "speech",
    version: "2",
    kinds: &[MediaKind::Audio, MediaKind::Video],
    priority: 30,
    reads: &[],
    produces: &[InsightValue::TRANSCRIPT_SEGMENT],
};

/// Sound longer than this is transcribed in parts, by default.
pub const DEFAULT_CHUNK: Duration = Duration::from_secs(600);

/// Longer recordings are refused, by default.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(6 * 3600);

/// The analyzer.
pub struct Speech {
    model: Loaded<whisper::Whisper>,
    /// The model's name, as the pack calls it.
    name: String,
    fingerprint: String,
    /// How sound is decoded.
    pub audio: AudioOptions,
    /// The language everything is said in, when the user knows; `None` detects it per
    /// stretch of speech.
    pub language: Option<String>,
    /// Longer recordings are transcribed in parts of this length, cut at pauses, which
    /// several workers run at once. Default: 10 minutes.
    pub chunk: Duration,
    /// Longer recordings are refused. Default: 6 hours.
    pub max_duration: Duration,
}

impl Speech {
    /// The analyzer over `model` (a name of [`WHISPER_MODELS`]), or the first of them that is
    /// installed.
    pub fn new(models_dir: &Path, model: Option<&str>) -> Result<Self, models::Error> {
        let name = match model {
            Some(name) => name,
            None => WHISPER_MODELS
                .iter()
                .copied()
                .find(|m| models::require(models_dir, m).is_ok())
                .unwrap_or(WHISPER_MODELS[0]),
        };
        Self::from_folder(name, models::require(models_dir, name)?)
    }

    /// The analyzer over the model `name` in `folder` (`model.safetensors`, `tokenizer.json`,
    /// the CTranslate2 `config.json`, `installed.json`).
    pub fn from_folder(name: &str, folder: std::path::PathBuf) -> Result<Self, models::Error> {
        let fingerprint = models::fingerprint(&folder)?;
        Ok(Self {
            model: Loaded::new(folder),
            name: name.to_owned(),
            fingerprint,
            audio: AudioOptions::default(),
            language: None,
            chunk: DEFAULT_CHUNK,
            max_duration: DEFAULT_MAX_DURATION,
        })
    }

    /// The model's name, as the model pack calls it.
    pub fn model(&self) -> &str {
        &self.name
    }
}

impl Analyzer for Speech {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    /// The model's fingerprint, and the language when one is set: transcripts made in
    /// another language, or parts made under another setting, are not this version's.
    fn version(&self) -> String {
        match &self.language {
            Some(code) => format!("{}+{}+{code}", SPEC.version, self.fingerprint),
            None => format!("{}+{}", SPEC.version, self.fingerprint),
        }
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        self.check(input)?;
        let run = self.hear(input, 0, None)?;
        self.check_complete(input.asset, run.decoded_ms)?;
        Ok(self.output(input.asset, run.heard))
    }

    fn split(&self, input: &Input<'_>) -> Result<Option<Vec<Stretch>>, Error> {
        self.check(input)?;
        // Only where ffmpeg lands exactly on the time asked (an index, or a constant rate):
        // in raw AAC, MP3 or MPEG-TS a seek is a guess from the bit rate, and the parts' times
        // would not line up.
        let seekable = input.asset.metadata.container.as_deref().is_some_and(|c| {
            ["wav", "flac", "ogg", "mp4", "mov", "matroska", "webm"]
                .iter()
                .any(|k| c.contains(k))
        });
        let Some(duration) = input.asset.metadata.duration_ms.filter(|_| seekable) else {
            return Ok(None);
        };
        let chunk = (self.chunk.as_millis() as u64)
            .max(duration.div_ceil(MAX_PARTS as u64))
            .max(1000);
        Ok(crate::parts::even(duration, chunk))
    }

    fn analyze_part(&self, input: &Input<'_>, part: &Part) -> Result<Vec<u8>, Error> {
        self.check(input)?;
        let run = self.hear(input, part.start_ms, part.end_ms)?;
        if part.end_ms.is_none() {
            self.check_complete(input.asset, run.decoded_ms)?;
        }
        serde_json::to_vec(&run.heard).map_err(|e| Error::Transient {
            reason: format!(
                "{}: part {} cannot be stored: {e}",
                input.asset.name, part.index
            ),
        })
    }

    fn join(&self, input: &Input<'_>, parts: &[PartResult]) -> Result<Output, Error> {
        let mut heard = Vec::new();
        for p in parts {
            let part: Vec<Heard> =
                serde_json::from_slice(&p.result).map_err(|e| Error::BadInput {
                    reason: format!(
                        "{}: what part {} of {} heard cannot be read back ({e}); \
                     `aperture reindex speech` transcribes it again",
                        input.asset.name, p.part.index, p.part.count
                    ),
                })?;
            heard.extend(part);
        }
        Ok(self.output(input.asset, without_repeats(heard)))
    }
}

/// A stretch of speech and what Whisper heard in it, times from the start of the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Heard {
    start_ms: u64,
    end_ms: u64,
    text: String,
    language: String,
    language_prob: Option<f64>,
    avg_logprob: f64,
    no_speech: f64,
}

/// What one run over (a stretch of) a file heard, and where its sound ended.
struct Run {
    heard: Vec<Heard>,
    /// Where decoding stopped, in milliseconds from the start of the file.
    decoded_ms: u64,
}

/// How much sound before its stretch a part decodes, so that the voice detector has learnt the
/// room's noise by the time the stretch begins (and finds the same pauses as the part before).
const LEAD_MS: u64 = 30_000;

impl Speech {
    /// Refuses what this analyzer cannot or must not transcribe.
    fn check(&self, input: &Input<'_>) -> Result<(), Error> {
        let asset = input.asset;
        if !matches!(asset.kind, MediaKind::Audio | MediaKind::Video) {
            return Err(Error::NotApplicable {
                reason: format!("{} is {}, not sound", asset.name, asset.mime),
            });
        }
        if asset.kind == MediaKind::Video && asset.metadata.audio_codec.is_none() {
            return Err(Error::NotApplicable {
                reason: format!("{} has no sound", asset.name),
            });
        }
        if let Some(ms) = asset.metadata.duration_ms
            && ms > self.max_duration.as_millis() as u64
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} lasts {}, longer than the {} limit for speech",
                    asset.name,
                    aperture_core::human::clock(ms),
                    aperture_core::human::clock(self.max_duration.as_millis() as u64)
                ),
            });
        }
        if let Some(code) = &self.language
            && let Some(refused) = refused_language(&self.name, code)
        {
            return Err(Error::BadInput {
                reason: format!("{}: {refused}", asset.name),
            });
        }
        Ok(())
    }

    /// Transcribes the stretches of speech that reach into `from..until` (to the end of the
    /// file when `until` is `None`). A stretch that starts before `until` is heard to its end,
    /// past `until` (the voice detector closes it at a pause, within 30 s): parts are cut at
    /// pauses, and the next part, which hears the same stretch, gives it up at the join.
    fn hear(&self, input: &Input<'_>, from: u64, until: Option<u64>) -> Result<Run, Error> {
        let asset = input.asset;
        let model = self.model.get(whisper::Whisper::load)?;
        let decode_from = from.saturating_sub(LEAD_MS);
        // By then every stretch that began before `until` has closed.
        let enough = until.map(|u| u + vad::LONGEST_MS + 1_000);
        let mut detector = vad::Detector::new(SAMPLE_RATE);
        let mut heard = Vec::new();
        let mut spoken = Spoken::default();
        // Whether a stretch past `until` has come: the rest is the next part's.
        let mut past = false;
        let mut listen = |window: vad::Window, past: &mut bool| -> Result<(), Error> {
            let (start_ms, end_ms) = (window.start_ms + decode_from, window.end_ms + decode_from);
            if end_ms <= from {
                return Ok(());
            }
            if until.is_some_and(|u| start_ms >= u) {
                *past = true;
                return Ok(());
            }
            let language = match &self.language {
                Some(code) => whisper::Language::Fixed(code),
                None => whisper::Language::Detect {
                    fallback: spoken.main(),
                },
            };
            let said = model.transcribe(&window.samples, language).map_err(|e| {
                let at = aperture_core::human::clock(start_ms);
                match e {
                    Error::Transient { reason } => Error::Transient {
                        reason: format!("{} at {at}: {reason}", asset.name),
                    },
                    other => other,
                }
            })?;
            if let Some(said) = said {
                spoken.heard(&said, end_ms - start_ms);
                heard.push(Heard {
                    start_ms,
                    end_ms,
                    text: said.text,
                    language: said.language,
                    language_prob: said.language_prob,
                    avg_logprob: said.avg_logprob,
                    no_speech: said.no_speech,
                });
            }
            Ok(())
        };
        let max_samples = self.max_duration.as_secs() * u64::from(SAMPLE_RATE);
        let mut read = 0u64;
        let at = |read: u64| decode_from + read * 1000 / u64::from(SAMPLE_RATE);
        let blocks = audio::samples(input.path, &asset.name, decode_from, None, &self.audio)
            .map_err(audio_error)?;
        // Blocks of a second of sound, as the decoder hands them over.
        for block in blocks {
            let block = block.map_err(audio_error)?;
            read += block.len() as u64;
            if read > max_samples {
                return Err(Error::BadInput {
                    reason: format!(
                        "{} goes on past the {} limit for speech",
                        asset.name,
                        aperture_core::human::clock(self.max_duration.as_millis() as u64)
                    ),
                });
            }
            for window in detector.push(&block) {
                listen(window, &mut past)?;
            }
            if past || enough.is_some_and(|t| at(read) > t) {
                return Ok(Run {
                    heard,
                    decoded_ms: at(read),
                });
            }
        }
        if let Some(window) = detector.finish() {
            listen(window, &mut past)?;
        }
        Ok(Run {
            heard,
            decoded_ms: at(read),
        })
    }

    /// A recording that ends more than 2 s (or 1 %) before the length its header gives is cut
    /// off or damaged:
    /// say so rather than keep a transcript of part of it. (A video's sound may end before its
    /// pictures, so only audio files are held to their header.)
    fn check_complete(
        &self,
        asset: &aperture_catalog::Asset,
        decoded_ms: u64,
    ) -> Result<(), Error> {
        if asset.kind == MediaKind::Audio
            && let Some(header_ms) = asset.metadata.duration_ms
            && decoded_ms + (header_ms / 100).max(2_000) < header_ms
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} ends after {} of the {} its header gives: it is truncated or damaged",
                    asset.name,
                    aperture_core::human::clock(decoded_ms),
                    aperture_core::human::clock(header_ms)
                ),
            });
        }
        Ok(())
    }

    fn output(&self, asset: &aperture_catalog::Asset, heard: Vec<Heard>) -> Output {
        Output {
            insights: heard.into_iter().map(|h| self.segment(asset, h)).collect(),
            ..Output::default()
        }
    }

    fn segment(&self, asset: &aperture_catalog::Asset, heard: Heard) -> Insight {
        Insight {
            asset: asset.id,
            analyzer: SPEC.name.into(),
            analyzer_version: self.version(),
            model: Some(self.name.clone()),
            model_version: Some(self.fingerprint.clone()),
            confidence: Some(heard.avg_logprob.exp().clamp(0.0, 1.0) as f32),
            language: Some(heard.language),
            place: Place::Time {
                start_ms: heard.start_ms,
                end_ms: heard.end_ms,
                rect: None,
            },
            value: TranscriptSegment {
                text: heard.text,
                no_speech_prob: Some(heard.no_speech as f32),
                avg_logprob: Some(heard.avg_logprob as f32),
                language_prob: heard.language_prob.map(|p| p as f32),
                words: Vec::new(),
            }
            .into(),
            created_at: UnixMillis::now(),
        }
    }
}

/// The stretches of all parts in order, each heard once: where the next part heard a stretch
/// the one before had heard whole (ending at most a second later: the same pause), it gives it
/// up; where it heard one that goes on further (two voice detectors that cut a long run of
/// speech in different places), it is kept, less the words it repeats from the end of the
/// one before. Speech is never dropped to avoid a repeat; a repeat worded differently stays.
fn without_repeats(heard: Vec<Heard>) -> Vec<Heard> {
    let mut out: Vec<Heard> = Vec::with_capacity(heard.len());
    for mut next in heard {
        if let Some(last) = out.last()
            && next.start_ms < last.end_ms
        {
            if next.end_ms <= last.end_ms + 1_000 {
                continue;
            }
            next.text = after_repeated_words(&last.text, &next.text);
            if next.text.is_empty() {
                continue;
            }
        }
        out.push(next);
    }
    out
}

/// `after` without its first words where they repeat the last words of `before` (case and
/// punctuation aside).
fn after_repeated_words(before: &str, after: &str) -> String {
    let word = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let a: Vec<String> = before.split_whitespace().map(word).collect();
    let b: Vec<&str> = after.split_whitespace().collect();
    let repeated = (1..=a.len().min(b.len()))
        .rev()
        .find(|&k| (0..k).all(|i| a[a.len() - k + i] == word(b[i])))
        .unwrap_or(0);
    b[repeated..].join(" ")
}

/// Why `model` cannot be told that everything is said in `code`, if it cannot: a language
/// Whisper does not know, or any but English for an English-only model (the pack names those
/// `*-en`).
pub fn refused_language(model: &str, code: &str) -> Option<String> {
    if !whisper::LANGUAGES.contains(&code) {
        return Some(format!(
            "[speech] language {code:?} is not one Whisper knows (en, es, fr, de, ru, zh, ...)"
        ));
    }
    (code != "en" && model.ends_with("-en")).then(|| {
        format!("[speech] language is {code}, but {model} knows English only: install whisper-base")
    })
}

/// The languages heard so far in a file, by seconds of speech the model was sure of: the
/// main one decides a stretch whose language the model is unsure of (a short "okay" in a
/// Spanish interview stays Spanish).
#[derive(Debug, Default)]
struct Spoken(Vec<(String, u64)>);

impl Spoken {
    fn heard(&mut self, said: &whisper::Said, ms: u64) {
        if said
            .language_prob
            .is_none_or(|p| p < whisper::SURE_OF_LANGUAGE)
        {
            return;
        }
        match self.0.iter_mut().find(|(code, _)| *code == said.language) {
            Some((_, total)) => *total += ms,
            None => self.0.push((said.language.clone(), ms)),
        }
    }

    fn main(&self) -> Option<&str> {
        self.0
            .iter()
            .max_by_key(|(_, ms)| *ms)
            .map(|(code, _)| code.as_str())
    }
}

/// A missing ffmpeg may be installed; a file that will not decode will not.
fn audio_error(e: aperture_media::video::DecodeError) -> Error {
    crate::video::decode_error(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(start_ms: u64, end_ms: u64, text: &str) -> Heard {
        Heard {
            start_ms,
            end_ms,
            text: text.into(),
            language: "en".into(),
            language_prob: None,
            avg_logprob: -0.2,
            no_speech: 0.01,
        }
    }

    #[test]
    fn what_two_parts_heard_is_kept_once() {
        let joined = without_repeats(vec![
            heard(0, 4_000, "Hello there."),
            heard(20_000, 29_000, "Ask not what your country can do for you."),
            // The next part heard the same stretch, give or take a pause.
            heard(20_100, 28_900, "Ask not what your country can do for you"),
            // And one that begins inside the last: its repeated words go.
            heard(27_000, 34_000, "For you, ask what you can do."),
            heard(40_000, 41_000, "Thanks."),
        ]);
        let texts: Vec<&str> = joined.iter().map(|h| h.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Hello there.",
                "Ask not what your country can do for you.",
                "ask what you can do.",
                "Thanks."
            ]
        );
        // A long run of speech two detectors cut in different places: nothing the second
        // heard past the first is lost.
        let joined = without_repeats(vec![
            heard(590_000, 615_000, "and then we went down to the river"),
            heard(600_000, 620_000, "down to the river and across the bridge"),
        ]);
        assert_eq!(joined.len(), 2);
        assert_eq!(joined[1].text, "and across the bridge");
        assert_eq!(after_repeated_words("a b c", "x y"), "x y");
        assert_eq!(after_repeated_words("a b c", "B, C"), "");
    }
}
