//! Speech: what is said in audio files and in the sound of videos, as transcript segments with
//! their times.
//!
//! The sound is decoded by ffmpeg to 16 kHz mono ([`aperture_media::audio`]) and streamed
//! through a voice activity detector ([`vad`]) that keeps the stretches with speech and skips
//! silence; each stretch (at most 30 s, cut at its quietest moment when longer) is one window
//! for Whisper ([`whisper`]), whose text becomes one `transcript_segment` with the stretch's
//! time range. Memory holds one window of sound, whatever the file's length.
//!
//! Nothing here tells speakers apart: no diarization, no voiceprints, within a file or across
//! files.

pub mod ct2;
mod decoder;
pub mod vad;
pub mod whisper;

use std::path::Path;
use std::time::Duration;

use aperture_core::value::TranscriptSegment;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis};
use aperture_media::audio::{self, AudioOptions, SAMPLE_RATE};
use aperture_models as models;

use crate::loaded::Loaded;
use crate::{Analyzer, Error, Input, Output};

/// The model pack's Whispers, the one used by default first: base knows 99 languages and
/// tells which is spoken; tiny.en knows English only, in a third of the time.
pub const WHISPER_MODELS: [&str; 2] = ["whisper-base", "whisper-tiny-en"];

/// What the `speech` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "speech",
    version: "1",
    kinds: &[MediaKind::Audio, MediaKind::Video],
    priority: 30,
    reads: &[],
    produces: &[InsightValue::TRANSCRIPT_SEGMENT],
};

/// Longer recordings are refused. Default: 6 hours.
const MAX_DURATION: Duration = Duration::from_secs(6 * 3600);

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

    fn version(&self) -> String {
        format!("{}+{}", SPEC.version, self.fingerprint)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
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
            && ms > MAX_DURATION.as_millis() as u64
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} lasts {}, longer than the {} limit for speech",
                    asset.name,
                    aperture_core::human::clock(ms),
                    aperture_core::human::clock(MAX_DURATION.as_millis() as u64)
                ),
            });
        }
        let model = self.model.get(whisper::Whisper::load)?;
        if let Some(code) = &self.language
            && !model.multilingual()
            && code != "en"
        {
            return Err(Error::BadInput {
                reason: format!(
                    "{} knows English only, not {code}: install whisper-base",
                    self.name
                ),
            });
        }
        let mut detector = vad::Detector::new(SAMPLE_RATE);
        let mut insights = Vec::new();
        let mut spoken = Spoken::default();
        let mut heard = |window: vad::Window| -> Result<(), Error> {
            let language = match &self.language {
                Some(code) => whisper::Language::Fixed(code),
                None => whisper::Language::Detect {
                    fallback: spoken.main(),
                },
            };
            let said = model.transcribe(&window.samples, language).map_err(|e| {
                let at = aperture_core::human::clock(window.start_ms);
                match e {
                    Error::Transient { reason } => Error::Transient {
                        reason: format!("{} at {at}: {reason}", asset.name),
                    },
                    other => other,
                }
            })?;
            if let Some(said) = said {
                spoken.heard(&said, window.end_ms - window.start_ms);
                insights.push(self.segment(asset, &window, said));
            }
            Ok(())
        };
        let max_samples = MAX_DURATION.as_secs() * u64::from(SAMPLE_RATE);
        let mut read = 0u64;
        let chunks =
            audio::samples(input.path, &asset.name, 0, None, &self.audio).map_err(audio_error)?;
        for chunk in chunks {
            let chunk = chunk.map_err(audio_error)?;
            read += chunk.len() as u64;
            if read > max_samples {
                return Err(Error::BadInput {
                    reason: format!(
                        "{} goes on past the {} limit for speech",
                        asset.name,
                        aperture_core::human::clock(MAX_DURATION.as_millis() as u64)
                    ),
                });
            }
            for window in detector.push(&chunk) {
                heard(window)?;
            }
        }
        if let Some(window) = detector.finish() {
            heard(window)?;
        }
        // A recording that ends well before the length its header gives is cut off or damaged:
        // say so rather than keep a transcript of part of it. (A video's sound may end before
        // its pictures, so only audio files are held to their header.)
        let decoded_ms = read * 1000 / u64::from(SAMPLE_RATE);
        if asset.kind == MediaKind::Audio
            && let Some(header_ms) = asset.metadata.duration_ms
            && decoded_ms + (header_ms / 20).max(2_000) < header_ms
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
        Ok(Output {
            insights,
            ..Output::default()
        })
    }
}

impl Speech {
    fn segment(
        &self,
        asset: &aperture_catalog::Asset,
        window: &vad::Window,
        said: whisper::Said,
    ) -> Insight {
        Insight {
            asset: asset.id,
            analyzer: SPEC.name.into(),
            analyzer_version: self.version(),
            model: Some(self.name.clone()),
            model_version: Some(self.fingerprint.clone()),
            confidence: Some(said.avg_logprob.exp().clamp(0.0, 1.0) as f32),
            language: Some(said.language),
            place: Place::Time {
                start_ms: window.start_ms,
                end_ms: window.end_ms,
                rect: None,
            },
            value: TranscriptSegment {
                text: said.text,
                no_speech_prob: Some(said.no_speech as f32),
                avg_logprob: Some(said.avg_logprob as f32),
                language_prob: said.language_prob.map(|p| p as f32),
                words: Vec::new(),
            }
            .into(),
            created_at: UnixMillis::now(),
        }
    }
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
