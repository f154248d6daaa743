//! What each analyzer is, known before it runs or loads a model: [`AnalyzerSpec`].

use crate::{Insight, MediaKind};

/// The static description of one analyzer. Ingest queues jobs from it, the catalog's queue
/// orders them by it, and a worker knows from it which analyzers to queue again when one
/// stores insights, even for analyzers whose models it does not have.
///
/// Each analyzer has one, as a `const`:
///
/// ```
/// use aperture_core::{AnalyzerSpec, InsightValue, MediaKind};
///
/// const OCR: AnalyzerSpec = AnalyzerSpec {
///     name: "ocr",
///     version: "1",
///     kinds: &[MediaKind::Image, MediaKind::Document],
///     priority: 3,
///     reads: &["text"],
///     produces: &[InsightValue::OCR_LINE],
/// };
/// assert!(OCR.applies_to(MediaKind::Document));
/// assert!(OCR.reads_from("text"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyzerSpec {
    /// Stable name, used for jobs and insights: `thumbnail`, `phash`, `labels`, ...
    pub name: &'static str,
    /// The version of the analyzer's code: bump it whenever its results would change.
    ///
    /// This is the part known before anything loads. An analyzer whose results also depend
    /// on what is installed or configured appends that when it runs: the model files'
    /// fingerprint (`1+<fingerprint>`), a setting (`1-256` for the thumbnail size). The full
    /// string is what jobs and insights record (`analyzer_version`) and what decides that a
    /// stored result is stale; it starts with this one.
    pub version: &'static str,
    /// The kinds of asset it is queued for. It may still decline one when it runs.
    pub kinds: &'static [MediaKind],
    /// Higher runs first: the queue claims jobs by priority. An analyzer that reads others'
    /// insights ranks below them.
    pub priority: i32,
    /// The analyzers (by name, not insight kind) whose insights it reads. When one of them
    /// stores new insights for an asset, this analyzer's job for that asset is queued again.
    pub reads: &'static [&'static str],
    /// The insight kinds it stores ([`InsightValue::KINDS`](crate::InsightValue::KINDS)
    /// names those this build knows).
    pub produces: &'static [&'static str],
}

impl AnalyzerSpec {
    /// Whether it is queued for assets of `kind`.
    pub fn applies_to(&self, kind: MediaKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether it reads the insights of the analyzer named `analyzer`.
    pub fn reads_from(&self, analyzer: &str) -> bool {
        self.reads.contains(&analyzer)
    }

    /// Whether `insight` is one this analyzer may store: its name and a kind it produces
    /// (for a worker to check what an analyzer returns).
    pub fn made(&self, insight: &Insight) -> bool {
        insight.analyzer == self.name && self.produces.contains(&insight.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::PerceptualHash;
    use crate::{AssetId, InsightValue, Place, UnixMillis};

    const PHASH: AnalyzerSpec = AnalyzerSpec {
        name: "phash",
        version: "1-dct-8x8",
        kinds: &[MediaKind::Image],
        priority: 50,
        reads: &[],
        produces: &[InsightValue::PERCEPTUAL_HASH],
    };

    #[test]
    fn describes_what_an_analyzer_does() {
        assert!(PHASH.applies_to(MediaKind::Image));
        assert!(!PHASH.applies_to(MediaKind::Video));
        assert!(!PHASH.reads_from("text"));
        let mut insight = Insight {
            asset: AssetId::new(),
            analyzer: "phash".into(),
            analyzer_version: PHASH.version.into(),
            model: None,
            model_version: None,
            value: PerceptualHash {
                hash: "00000000000000ff".into(),
                bits: 64,
            }
            .into(),
            confidence: None,
            language: None,
            place: Place::Whole,
            created_at: UnixMillis(0),
        };
        assert!(PHASH.made(&insight));
        insight.analyzer = "labels".into();
        assert!(!PHASH.made(&insight));
        insight.analyzer = "phash".into();
        insight.value = InsightValue::Other {
            kind: "phash2".into(),
            value: serde_json::Value::Null,
        };
        assert!(!PHASH.made(&insight));
    }
}
