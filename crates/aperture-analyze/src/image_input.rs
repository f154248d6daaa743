//! Decoding images for analyzers, within limits, upright.

use std::path::Path;

use aperture_catalog::Asset;
use image::{DynamicImage, ImageReader, Limits, metadata::Orientation};

use crate::Error;

pub use aperture_media::{MAX_DECODED_BYTES, MAX_SIDE};

/// Decodes the asset's image, applies its EXIF orientation, and names the file in errors.
pub fn decode(asset: &Asset, path: &Path) -> Result<DynamicImage, Error> {
    if asset.kind != aperture_core::MediaKind::Image {
        return Err(Error::NotApplicable {
            reason: format!("{} is {}, not an image", asset.name, asset.mime),
        });
    }
    let bad = |what: String| Error::BadInput {
        reason: format!("cannot decode image {}: {what}", asset.name),
    };
    let mut reader = ImageReader::open(path)
        .map_err(|e| Error::Transient {
            reason: format!("cannot read {}: {e}", asset.name),
        })?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let mut image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => bad(format!(
            "larger than the {MAX_SIDE}-pixel or {} MiB limit",
            MAX_DECODED_BYTES >> 20
        )),
        image::ImageError::Unsupported(e) => Error::NotApplicable {
            reason: format!("cannot decode image {}: {e}", asset.name),
        },
        e => bad(e.to_string()),
    })?;
    if let Some(orientation) = asset
        .metadata
        .orientation
        .and_then(|o| u8::try_from(o).ok())
        .and_then(Orientation::from_exif)
    {
        image.apply_orientation(orientation);
    }
    Ok(image)
}
