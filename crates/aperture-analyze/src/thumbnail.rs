//! Thumbnails: the image upright, at most 256 pixels a side, as JPEG.

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};
use bytes::Bytes;

use crate::{Analyzer, Error, Input, Output, image_input};

/// `image` as a JPEG of `quality`; an error names the file `name` it was made from.
pub(crate) fn jpeg(image: &image::RgbImage, quality: u8, name: &str) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .map_err(|e| Error::BadInput {
            reason: format!("cannot encode a picture of {name} as JPEG: {e}"),
        })?;
    Ok(out)
}

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

/// What the `thumbnail` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "thumbnail",
    version: "1",
    kinds: &[MediaKind::Image],
    priority: 100,
    reads: &[],
    produces: &[InsightValue::THUMBNAIL],
};

impl Analyzer for Thumbnail {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        format!("{}-{}", SPEC.version, self.max_side)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let image = image_input::decode(input.asset, input.path)?;
        let small = image.thumbnail(self.max_side, self.max_side).into_rgb8();
        let jpeg = jpeg(&small, 80, &input.asset.name)?;
        let name = format!("thumbnail-{}.jpg", self.max_side);
        let insight = Insight {
            asset: input.asset.id,
            analyzer: self.name().into(),
            analyzer_version: self.version(),
            model: None,
            model_version: None,
            value: value::Thumbnail {
                name: name.clone(),
                mime: "image/jpeg".into(),
                width: small.width(),
                height: small.height(),
                bytes: jpeg.len() as u64,
            }
            .into(),
            confidence: None,
            language: None,
            place: Place::Whole,
            created_at: UnixMillis::now(),
        };
        Ok(Output {
            insights: vec![insight],
            derived: vec![(name, Bytes::from(jpeg))],
            derived_files: Vec::new(),
        })
    }
}
