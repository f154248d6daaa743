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

/// The model pack's English Whisper (tiny.en).
pub const WHISPER_MODEL: &str = "whisper-tiny-en";

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
    fingerprint: String,
    /// How sound is decoded.
    pub audio: AudioOptions,
}

impl Speech {
    /// The analyzer over the installed Whisper model.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        Self::from_folder(models::require(models_dir, WHISPER_MODEL)?)
    }

    /// The analyzer over a model folder (`model.safetensors`, `tokenizer.json`, the
    /// CTranslate2 `config.json`, `installed.json`).
    pub fn from_folder(folder: std::path::PathBuf) -> Result<Self, models::Error> {
        let fingerprint = models::fingerprint(&folder)?;
        Ok(Self {
            model: Loaded::new(folder),
            fingerprint,
            audio: AudioOptions::default(),
        })
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
        let mut detector = vad::Detector::new(SAMPLE_RATE);
        let mut insights = Vec::new();
        let mut heard = |window: vad::Window| -> Result<(), Error> {
            let said = model.transcribe(&window.samples).map_err(|e| {
                let at = aperture_core::human::clock(window.start_ms);
                match e {
                    Error::Transient { reason } => Error::Transient {
                        reason: format!("{} at {at}: {reason}", asset.name),
                    },
                    other => other,
                }
            })?;
            if let Some(said) = said {
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
            model: Some(WHISPER_MODEL.into()),
            model_version: Some(self.fingerprint.clone()),
            confidence: Some(said.avg_logprob.exp().clamp(0.0, 1.0) as f32),
            language: Some("en".into()),
            place: Place::Time {
                start_ms: window.start_ms,
                end_ms: window.end_ms,
                rect: None,
            },
            value: TranscriptSegment {
                text: said.text,
                no_speech_prob: Some(said.no_speech as f32),
                avg_logprob: Some(said.avg_logprob as f32),
                words: Vec::new(),
            }
            .into(),
            created_at: UnixMillis::now(),
        }
    }
}

/// A missing ffmpeg may be installed; a file that will not decode will not.
fn audio_error(e: aperture_media::video::DecodeError) -> Error {
    crate::video::decode_error(e)
}
