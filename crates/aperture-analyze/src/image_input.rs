//! Decoding images for analyzers, within limits, upright.

use std::path::Path;

use aperture_catalog::Asset;
use image::{DynamicImage, ImageReader, Limits, metadata::Orientation};

use crate::Error;

/// The largest image decoded, in pixels per side and in bytes of decoded pixels. A
/// 30,000 × 30,000 photo (or a decompression bomb claiming to be one) is refused up front
/// from its header, before any pixel memory is taken.
pub const MAX_SIDE: u32 = 20_000;
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

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

/// Refuses an image whose header promises more pixels than `decode` will ever decode (a
/// decompression bomb), reading the header only. Files that are not images pass.
pub fn check_size(path: &Path, name: &str) -> Result<(), String> {
    let reader = match ImageReader::open(path).and_then(|r| r.with_guessed_format()) {
        Ok(r) if r.format().is_some() => r,
        Ok(_) => return Ok(()),
        Err(e) => return Err(format!("cannot read {name}: {e}")),
    };
    let (w, h) = match reader.into_dimensions() {
        Ok(size) => size,
        // A PNG cut short after its header still says how large it claims to be.
        Err(_) => match png_header_size(path) {
            Some(size) => size,
            // Other damaged headers are stored and flagged, as at any ingest.
            None => return Ok(()),
        },
    };
    let bytes = u64::from(w) * u64::from(h) * 4;
    if w > MAX_SIDE || h > MAX_SIDE || bytes > MAX_DECODED_BYTES {
        return Err(format!(
            "{name} claims {w} × {h} pixels ({} MiB decoded); images may be at most {MAX_SIDE} \
             pixels a side and {} MiB decoded (a decompression bomb?)",
            bytes >> 20,
            MAX_DECODED_BYTES >> 20
        ));
    }
    Ok(())
}

/// Width and height from a PNG's IHDR chunk, read from the file's first 24 bytes.
fn png_header_size(path: &Path) -> Option<(u32, u32)> {
    use std::io::Read;
    let mut head = [0u8; 24];
    std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
    if &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(head[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(head[20..24].try_into().ok()?);
    Some((w, h))
}
