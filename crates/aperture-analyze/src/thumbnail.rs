//! Thumbnails: the image upright, at most 256 pixels a side, as JPEG.

use std::io::Cursor;

use aperture_core::{Insight, MediaKind, Place, UnixMillis};
use bytes::Bytes;
use image::codecs::jpeg::JpegEncoder;

use crate::{Analyzer, Error, Input, Output, image_input};

/// The analyzer: the image upright, scaled to fit a square, as a JPEG derived object.
pub struct Thumbnail {
    /// The square's side in pixels; part of the version and of the object's name.
    pub max_side: u32,
}

impl Default for Thumbnail {
    fn default() -> Self {
        Self { max_side: 256 }
    }
}

impl Analyzer for Thumbnail {
    fn name(&self) -> &'static str {
        "thumbnail"
    }

    fn version(&self) -> String {
        format!("1-{}", self.max_side)
    }

    fn priority(&self) -> i32 {
        100
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &[MediaKind::Image]
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let image = image_input::decode(input.asset, input.path)?;
        let small = image.thumbnail(self.max_side, self.max_side).into_rgb8();
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(Cursor::new(&mut jpeg), 80)
            .encode_image(&small)
            .map_err(|e| Error::BadInput {
                reason: format!("cannot encode thumbnail of {}: {e}", input.asset.name),
            })?;
        let name = format!("thumbnail-{}.jpg", self.max_side);
        let insight = Insight {
            asset: input.asset.id,
            analyzer: self.name().into(),
            analyzer_version: self.version(),
            model: None,
            model_version: None,
            kind: "thumbnail".into(),
            value: serde_json::json!({
                "name": name,
                "mime": "image/jpeg",
                "width": small.width(),
                "height": small.height(),
                "bytes": jpeg.len(),
            }),
            confidence: None,
            language: None,
            place: Place::Whole,
            created_at: UnixMillis::now(),
        };
        Ok(Output {
            insights: vec![insight],
            derived: vec![(name, Bytes::from(jpeg))],
        })
    }
}
