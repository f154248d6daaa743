//! Understanding assets: the [`Analyzer`] trait, the analyzers, and the [`Worker`] that runs
//! them off the catalog's job queue.
//!
//! An analyzer reads one asset and returns insights (each recording the analyzer and model
//! version and its place in the asset) and derived objects such as thumbnails. Analyzers are
//! blocking: the worker runs them on a blocking thread.
//!
//! ```
//! use aperture_analyze::{Analyzer, builtin};
//!
//! let names: Vec<_> = builtin().iter().map(|a| a.name()).collect();
//! assert!(names.contains(&"thumbnail"));
//! ```
//!
//! Nothing here recognises, clusters or matches faces or people, in any form.

pub mod embed;
mod image_input;
mod language;
pub mod models;
mod phash;
mod text;
mod thumbnail;
pub mod worker;

use std::path::Path;
use std::sync::Arc;

use aperture_catalog::Asset;
use aperture_core::{Insight, MediaKind};
use bytes::Bytes;

pub use language::{DETECTOR as LANGUAGE_DETECTOR, detect as detect_language};
pub use phash::{PerceptualHash, distance as phash_distance};
pub use text::Text;
pub use thumbnail::Thumbnail;
pub use worker::{Worker, WorkerReport};

/// What an analyzer is given: the asset's record and a local file with its verified bytes.
pub struct Input<'a> {
    pub asset: &'a Asset,
    pub path: &'a Path,
}

/// What an analyzer found.
#[derive(Debug, Default)]
pub struct Output {
    pub insights: Vec<Insight>,
    /// Objects made from the asset, stored under it and erased with it: (name, bytes).
    pub derived: Vec<(String, Bytes)>,
}

/// Why an analyzer produced nothing. The variant decides what the queue does next.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The analyzer does not apply to this asset after all: the job is skipped.
    #[error("{reason}")]
    NotApplicable { reason: String },
    /// The input is damaged or beyond limits; trying again cannot help: the job fails.
    #[error("{reason}")]
    BadInput { reason: String },
    /// Something that may pass (a busy device, a missing model being installed): retried.
    #[error("{reason}")]
    Transient { reason: String },
}

/// One kind of understanding. Implementations are cheap to share across threads.
pub trait Analyzer: Send + Sync {
    /// Stable name, used for jobs and insights: `thumbnail`, `phash`, `labels`, ...
    fn name(&self) -> &'static str;
    /// Changes whenever results would change (code or model): stale results are re-run.
    fn version(&self) -> String;
    /// Higher runs first.
    fn priority(&self) -> i32 {
        0
    }
    /// The kinds of asset it is queued for. It may still decline one (`NotApplicable`).
    fn kinds(&self) -> &'static [MediaKind];
    /// Blocking: decoding and inference happen here.
    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error>;
}

/// The analyzers that need no model files.
pub fn builtin() -> Vec<Arc<dyn Analyzer>> {
    vec![
        Arc::new(Thumbnail::default()),
        Arc::new(PerceptualHash),
        Arc::new(Text::default()),
    ]
}
