//! Understanding assets: the [`Analyzer`] trait and the analyzers, with the networks and the
//! ML runtimes they run on. (The worker that runs them off the job queue is `aperture-lake`'s.)
//!
//! An analyzer reads one asset and returns insights (each recording the analyzer and model
//! version and its place in the asset) and derived objects such as thumbnails. Analyzers are
//! blocking: a worker runs them on a blocking thread.
//!
//! ```
//! use aperture_analyze::{Analyzer, builtin};
//!
//! let names: Vec<_> = builtin().iter().map(|a| a.name()).collect();
//! assert!(names.contains(&"thumbnail"));
//! ```
//!
//! Nothing here recognises, clusters or matches faces or people, in any form.

mod bert_onnx;
pub mod clip;
pub mod efficientnet;
pub mod embed;
mod embedding;
pub mod faces;
pub mod frames;
mod gate;
mod image_input;
pub mod labels;
mod language;
mod loaded;
pub mod ocr;
pub mod onnx;
mod onnx_graph;
pub mod parts;
mod phash;
mod resize;
pub mod sensitive;
pub mod speech;
mod text;
mod thumbnail;
pub mod torch_legacy;
pub mod translate;
pub mod video;
mod weights;

/// Helpers for this crate's unit tests.
#[cfg(test)]
mod test_support {
    use candle_core::Tensor;

    /// The largest difference between two tensors of the same shape, element by element.
    pub fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap()
    }
}

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aperture_catalog::Asset;
use aperture_catalog::jobs::{Part, PartResult, Stretch};
use aperture_core::{AnalyzerSpec, Insight, MediaKind};
use aperture_models as models;
use bytes::Bytes;

pub use clip::Clip;
pub use embedding::{MINILM_MODEL, MINILM_SPACE, TextEmbedding, describe};
pub use frames::Frame;
pub use labels::Labels;
pub use language::{
    DETECTOR as LANGUAGE_DETECTOR, SHORT_LANGUAGES, detect as detect_language,
    detect_short as detect_short_language,
};
pub use loaded::{give_back_freed_memory_now_and_then, set_budget as set_model_budget};
pub use ocr::Ocr;
pub use phash::{PerceptualHash, distance as phash_distance};
pub use sensitive::Sensitive;
pub use speech::Speech;
pub use text::Text;
pub use thumbnail::Thumbnail;
pub use translate::Translate;
pub use video::Video;

/// What an analyzer is given: the asset's record and a local file with its verified bytes.
pub struct Input<'a> {
    /// The asset as the catalog has it.
    pub asset: &'a Asset,
    /// A local file with the asset's bytes, for the analyzer to read and never change; it may
    /// be removed as soon as [`Analyzer::analyze`] returns.
    pub path: &'a Path,
    /// The asset's insights from the analyzers named by [`Analyzer::reads`] (empty for an
    /// analyzer that reads none).
    pub insights: &'a [Insight],
    /// For a video, its keyframes as local files, each with its shot's time range, for the
    /// image analyzers to read instead of the video (empty otherwise, and for analyzers that
    /// do not read `video`).
    pub frames: &'a [Frame],
    /// Leave out text that looks like a licence plate on pictures of vehicles (OCR): true
    /// unless the asset's collection reads plates (a collection of documents).
    pub suppress_plates: bool,
}

/// What an analyzer found.
#[derive(Debug, Default)]
pub struct Output {
    /// Everything found; it replaces what this analyzer found in the asset before.
    pub insights: Vec<Insight>,
    /// Objects made from the asset, stored under it and erased with it: (name, bytes).
    pub derived: Vec<(String, Bytes)>,
    /// Large objects made from the asset, in temporary files (removed when dropped) that are
    /// streamed into the store: (name, file).
    pub derived_files: Vec<(String, tempfile::TempPath)>,
}

/// Why an analyzer produced nothing. The variant decides what the queue does next: a closed
/// set, one variant per outcome of a job (skipped, failed for good, retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The analyzer does not apply to this asset after all: the job is skipped.
    #[error("{reason}")]
    NotApplicable {
        /// Why, kept on the job.
        reason: String,
    },
    /// The input is damaged or beyond limits; trying again cannot help: the job fails.
    #[error("{reason}")]
    BadInput {
        /// What is wrong with the input, naming it; kept on the job.
        reason: String,
    },
    /// Something that may pass (a busy device, a missing model being installed): retried.
    #[error("{reason}")]
    Transient {
        /// What went wrong; kept on the job while it waits for its retry.
        reason: String,
    },
}

/// One kind of understanding. Implementations are cheap to share across threads.
pub trait Analyzer: Send + Sync {
    /// What it is, known before anything loads: name, kinds, priority, what it reads and
    /// stores (one of [`SPECS`]).
    fn spec(&self) -> &'static AnalyzerSpec;
    /// The full version: the spec's, plus what else its results depend on (the model files'
    /// fingerprint, a setting). Stale results are re-run when it changes.
    fn version(&self) -> String;
    /// Stable name, used for jobs and insights: `thumbnail`, `phash`, `labels`, ...
    fn name(&self) -> &'static str {
        self.spec().name
    }
    /// Higher runs first.
    fn priority(&self) -> i32 {
        self.spec().priority
    }
    /// The kinds of asset it is queued for. It may still decline one (`NotApplicable`).
    fn kinds(&self) -> &'static [MediaKind] {
        self.spec().kinds
    }
    /// The analyzers whose insights this one reads. When one of them stores new insights
    /// for an asset, this analyzer's job for that asset is queued again.
    fn reads(&self) -> &'static [&'static str] {
        self.spec().reads
    }
    /// Whether it looks at pictures: a video's keyframes are then handed to it
    /// ([`Input::frames`]). Analyzers that read only others' insights leave it `false`.
    fn reads_pictures(&self) -> bool {
        false
    }
    /// Blocking: decoding and inference happen here.
    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error>;

    /// Long media: the stretches of time, `(start_ms, end_ms)` with `None` for "to the end",
    /// that jobs of their own analyse ([`Analyzer::analyze_part`]), on any worker and at once,
    /// before one job joins their results ([`Analyzer::join`]). `None`, the default and the
    /// answer for media short enough: one job runs [`Analyzer::analyze`].
    fn split(&self, input: &Input<'_>) -> Result<Option<Vec<Stretch>>, Error> {
        let _ = input;
        Ok(None)
    }

    /// Analyses one stretch of a split file. What it returns is the analyzer's own encoding,
    /// kept by the queue until every part is done (and erased with the asset).
    fn analyze_part(&self, input: &Input<'_>, part: &Part) -> Result<Vec<u8>, Error> {
        let _ = part;
        Err(Error::NotApplicable {
            reason: format!(
                "the {} analyzer does not split {}",
                self.name(),
                input.asset.name
            ),
        })
    }

    /// Joins the results of every part of a split file, in order, into the insights and
    /// derived objects of the whole, as [`Analyzer::analyze`] would have found them.
    fn join(&self, input: &Input<'_>, parts: &[PartResult]) -> Result<Output, Error> {
        let _ = parts;
        Err(Error::NotApplicable {
            reason: format!(
                "the {} analyzer does not split {}",
                self.name(),
                input.asset.name
            ),
        })
    }
}

/// An insight of `analyzer` about the whole of `asset`, made by `model` whose files have the
/// fingerprint `model_version`; callers set the confidence, language and place where they
/// differ.
pub(crate) fn model_insight(
    analyzer: &dyn Analyzer,
    asset: &Asset,
    (model, model_version): (&str, &str),
    value: aperture_core::InsightValue,
) -> Insight {
    Insight {
        asset: asset.id,
        analyzer: analyzer.name().into(),
        analyzer_version: analyzer.version(),
        model: Some(model.into()),
        model_version: Some(model_version.into()),
        value,
        confidence: None,
        language: None,
        place: aperture_core::Place::Whole,
        created_at: aperture_core::UnixMillis::now(),
    }
}

/// Every analyzer of this build, known without its models: a worker that cannot run an
/// analyzer still queues it again when what it reads changes, and ingest queues jobs by them.
pub const SPECS: &[&AnalyzerSpec] = &[
    &thumbnail::SPEC,
    &phash::SPEC,
    &text::SPEC,
    &labels::SPEC,
    &ocr::SPEC,
    &sensitive::SPEC,
    &embedding::SPEC,
    &clip::SPEC,
    &video::SPEC,
    &video::preview::SPEC,
    &speech::SPEC,
    &translate::SPEC,
];

/// Readers whose stored result may hold across a new result of what they read: (reader,
/// producer, whether the result made from `before` holds for `after`). Known without models,
/// as [`SPECS`] is, since workers with other models share the queue. Only OCR reading the
/// labels today: it reads from them only where vehicles are, and a re-index after a
/// classifier upgrade would otherwise run OCR, the costliest analyzer, again on every picture.
type Holds = fn(before: &[Insight], after: &[Insight]) -> bool;
const STILL_CURRENT: &[(&str, &str, Holds)] = &[(
    ocr::SPEC.name,
    labels::SPEC.name,
    ocr::plates::same_vehicles,
)];

/// Whether `reader`'s stored result, made from `before` (what `producer` found), holds for
/// `after` too (what `producer` found now): then `producer`'s new result does not queue
/// `reader` again.
pub fn still_current(reader: &str, producer: &str, before: &[Insight], after: &[Insight]) -> bool {
    STILL_CURRENT
        .iter()
        .any(|&(r, p, holds)| r == reader && p == producer && holds(before, after))
}

/// Whether [`still_current`] may keep some reader of `producer` from running again (so that
/// a worker reads what `producer` found before only when it may matter).
pub fn may_keep_readers(producer: &str) -> bool {
    STILL_CURRENT.iter().any(|&(_, p, _)| p == producer)
}

/// For analyzers: a model that is missing or damaged is something an install fixes, so the
/// job is tried again later rather than failed for good.
impl From<models::Error> for Error {
    fn from(e: models::Error) -> Self {
        Error::Transient {
            reason: e.to_string(),
        }
    }
}

/// The one-time model conversions that need an ML runtime, for
/// [`aperture_models::install`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Conversions;

impl models::Convert for Conversions {
    fn convert(
        &self,
        kind: models::ConversionKind,
        from: &[PathBuf],
        to: &Path,
    ) -> Result<(), String> {
        match kind {
            models::ConversionKind::TorchLegacyToSafetensors => match from {
                [one] => torch_legacy::to_safetensors(one, to),
                _ => Err(format!("a torch file is one file, not {}", from.len())),
            },
            models::ConversionKind::Ct2WhisperToSafetensors => {
                speech::ct2::to_safetensors(from, to)
            }
        }
    }
}

/// An analyzer this build has that cannot run with the models installed, and why.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// The analyzer's name.
    pub analyzer: &'static str,
    /// Names the command that installs what is missing.
    pub reason: String,
}

/// Every analyzer that can run with the models installed in `models_dir` (the built-in ones
/// always can), and the others with the reason. Nothing is loaded yet: models load on first use.
pub fn available(models_dir: &Path) -> (Vec<Arc<dyn Analyzer>>, Vec<Unavailable>) {
    let mut analyzers = builtin();
    let mut missing = Vec::new();
    let mut add =
        |analyzer: &'static str, made: Result<Arc<dyn Analyzer>, models::Error>| match made {
            Ok(a) => analyzers.push(a),
            Err(e) => missing.push(Unavailable {
                analyzer,
                reason: e.to_string(),
            }),
        };
    add(
        "labels",
        Labels::new(models_dir).map(|a| Arc::new(a) as Arc<dyn Analyzer>),
    );
    add(
        "ocr",
        Ocr::new(models_dir).map(|a| Arc::new(a) as Arc<dyn Analyzer>),
    );
    add(
        "sensitive",
        Sensitive::new(models_dir).map(|a| Arc::new(a) as Arc<dyn Analyzer>),
    );
    add(
        "embedding",
        TextEmbedding::new(models_dir).map(|a| Arc::new(a) as Arc<dyn Analyzer>),
    );
    add(
        "speech",
        Speech::new(models_dir, None).map(|a| Arc::new(a) as Arc<dyn Analyzer>),
    );
    (analyzers, missing)
}

/// The analyzers that need no model files.
pub fn builtin() -> Vec<Arc<dyn Analyzer>> {
    vec![
        Arc::new(Thumbnail::default()),
        Arc::new(PerceptualHash),
        Arc::new(Text::default()),
        Arc::new(Video::default()),
        Arc::new(video::preview::Preview::default()),
    ]
}
