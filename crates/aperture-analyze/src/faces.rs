//! Face *detection*, only to blur faces in an image on export (`aperture get --blur-faces`,
//! `?blur=faces`). Nothing about a face is stored, compared or kept: each call detects, blurs
//! and forgets. The detector is SeetaFace's frontal model run by `rustface` (frontal faces
//! only; a face in profile may be missed, which the caller is told nothing of: blur on export
//! lowers exposure, it is no guarantee).

use std::io::Cursor;
use std::path::Path;

use aperture_catalog::Asset;
use image::{DynamicImage, GenericImageView, ImageFormat, RgbImage};

use crate::Error;

/// The model's name in the model pack.
pub const FACE_MODEL: &str = "face-detector";
/// Faces are found on a copy at most this many pixels on its long side (detection time grows
/// with the area; the boxes are scaled back).
const DETECT_SIDE: u32 = 1600;
/// Each face's box grows by this share of its size on every side: hair, ears and chin.
const MARGIN: f32 = 0.25;

/// What [`FaceBlur::blur`] made.
pub struct Blurred {
    /// The image, encoded as `format`.
    pub bytes: Vec<u8>,
    /// PNG for a PNG original, JPEG for every other.
    pub format: ImageFormat,
    /// How many faces were blurred.
    pub faces: usize,
}

impl Blurred {
    /// The media type of [`Blurred::bytes`].
    pub fn mime(&self) -> &'static str {
        match self.format {
            ImageFormat::Png => "image/png",
            _ => "image/jpeg",
        }
    }
}

/// The face detector, loaded from the model pack.
pub struct FaceBlur {
    model: rustface::Model,
}

impl FaceBlur {
    /// Loads the detector from `models_dir` (`aperture models install face-detector`).
    pub fn load(models_dir: &Path) -> Result<Self, Error> {
        let folder =
            aperture_models::require(models_dir, FACE_MODEL).map_err(|e| Error::Transient {
                reason: e.to_string(),
            })?;
        let path = folder.join("seeta_fd_frontal_v1.0.bin");
        let file = std::fs::File::open(&path).map_err(|e| Error::Transient {
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let model =
            rustface::read_model(std::io::BufReader::new(file)).map_err(|e| Error::Transient {
                reason: format!("{} is not a SeetaFace model: {e}", path.display()),
            })?;
        Ok(Self { model })
    }

    /// Decodes the asset's image at `path` (within the decoding limits, upright), blurs every
    /// face found, and encodes the result.
    pub fn blur(&self, asset: &Asset, path: &Path) -> Result<Blurred, Error> {
        let image = crate::image_input::decode(asset, path)?;
        let boxes = self.faces(&image);
        let mut rgb = image.to_rgb8();
        for b in &boxes {
            obscure(&mut rgb, *b);
        }
        let format = if asset.mime == "image/png" {
            ImageFormat::Png
        } else {
            ImageFormat::Jpeg
        };
        let mut bytes = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(rgb)
            .write_to(&mut bytes, format)
            .map_err(|e| Error::BadInput {
                reason: format!("cannot encode {} with its faces blurred: {e}", asset.name),
            })?;
        Ok(Blurred {
            bytes: bytes.into_inner(),
            format,
            faces: boxes.len(),
        })
    }

    /// The faces in `image` as (x, y, width, height) in its pixels, margins included.
    pub fn faces(&self, image: &DynamicImage) -> Vec<(u32, u32, u32, u32)> {
        let (w, h) = image.dimensions();
        if w < 20 || h < 20 {
            return Vec::new(); // smaller than the detector's window: no face to find
        }
        let scale = (DETECT_SIDE as f32 / w.max(h) as f32).min(1.0);
        let gray = if scale < 1.0 {
            image
                .resize(
                    ((w as f32 * scale) as u32).max(20),
                    ((h as f32 * scale) as u32).max(20),
                    image::imageops::FilterType::Triangle,
                )
                .to_luma8()
        } else {
            image.to_luma8()
        };
        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_min_face_size(20);
        detector.set_score_thresh(2.0);
        detector.set_pyramid_scale_factor(0.8);
        detector.set_slide_window_step(4, 4);
        let faces = detector.detect(&rustface::ImageData::new(
            gray.as_raw(),
            gray.width(),
            gray.height(),
        ));
        faces
            .iter()
            .filter_map(|f| {
                let b = f.bbox();
                let (bw, bh) = (b.width() as f32 / scale, b.height() as f32 / scale);
                let x0 = b.x() as f32 / scale - bw * MARGIN;
                let y0 = b.y() as f32 / scale - bh * MARGIN;
                let x1 = x0 + bw * (1.0 + 2.0 * MARGIN);
                let y1 = y0 + bh * (1.0 + 2.0 * MARGIN);
                let (x0, y0) = (x0.max(0.0) as u32, y0.max(0.0) as u32);
                let (x1, y1) = ((x1 as u32).min(w), (y1 as u32).min(h));
                (x1 > x0 && y1 > y0).then_some((x0, y0, x1 - x0, y1 - y0))
            })
            .collect()
    }
}

/// Makes a region unrecognisable for good: one flat colour, the region's mean, with its edge
/// softened into the picture. (A mosaic of a few blocks can be matched against known faces;
/// a flat fill keeps nothing of the face but its average colour.)
fn obscure(image: &mut RgbImage, (x, y, w, h): (u32, u32, u32, u32)) {
    let mut sum = [0u64; 3];
    for py in y..y + h {
        for px in x..x + w {
            let p = image.get_pixel(px, py).0;
            for c in 0..3 {
                sum[c] += u64::from(p[c]);
            }
        }
    }
    let n = u64::from(w) * u64::from(h);
    let mean = image::Rgb(sum.map(|s| (s / n.max(1)) as u8));
    for py in y..y + h {
        for px in x..x + w {
            image.put_pixel(px, py, mean);
        }
    }
}
