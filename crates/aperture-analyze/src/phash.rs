//! Perceptual hashes, for near-duplicate detection: resized, recompressed or lightly edited
//! copies of a photo get hashes a few bits apart.

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, UnixMillis, value};
use image_hasher::{HashAlg, HasherConfig};

use crate::{Analyzer, Error, Input, Output};

/// A 64-bit DCT-based hash (pHash) of the upright image.
pub struct PerceptualHash;

/// What the `phash` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "phash",
    version: "1-dct-8x8",
    kinds: &[MediaKind::Image, MediaKind::Video],
    priority: 50,
    reads: &["video"],
    produces: &[InsightValue::PERCEPTUAL_HASH],
};

impl Analyzer for PerceptualHash {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn reads_pictures(&self) -> bool {
        true
    }

    fn version(&self) -> String {
        SPEC.version.into()
    }

    /// An image's hash, or one per keyframe of a video (with its shot's time range).
    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let hasher = HasherConfig::new()
            .hash_size(8, 8)
            .hash_alg(HashAlg::Median)
            .preproc_dct()
            .to_hasher();
        let mut insights = Vec::new();
        crate::frames::for_each_picture(input, |place, image| {
            let hash = hasher.hash_image(&image);
            insights.push(Insight {
                asset: input.asset.id,
                analyzer: self.name().into(),
                analyzer_version: self.version(),
                model: None,
                model_version: None,
                value: value::PerceptualHash {
                    hash: aperture_core::hex(hash.as_bytes()),
                    bits: 64,
                }
                .into(),
                confidence: None,
                language: None,
                place,
                created_at: UnixMillis::now(),
            });
            Ok(())
        })?;
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}

/// Hamming distance between two hex hashes of equal length; `None` when they do not parse.
pub fn distance(a: &str, b: &str) -> Option<u32> {
    if a.len() != b.len() || !a.len().is_multiple_of(2) {
        return None;
    }
    let byte = |s: &str, i: usize| u8::from_str_radix(s.get(i..i + 2)?, 16).ok();
    (0..a.len())
        .step_by(2)
        .map(|i| Some((byte(a, i)? ^ byte(b, i)?).count_ones()))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hamming_distance() {
        assert_eq!(distance("00ff", "00ff"), Some(0));
        assert_eq!(distance("00ff", "01fe"), Some(2));
        assert_eq!(distance("00", "0000"), None);
        assert_eq!(distance("zz", "00"), None);
    }
}
