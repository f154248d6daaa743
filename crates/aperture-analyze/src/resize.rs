//! Scaling images for the models, with SIMD convolution (`fast_image_resize`): the image
//! crate's resize took as long as the EfficientNet inference it feeds.

use std::borrow::Cow;

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage};

/// The interpolation, as the reference pipelines use them.
#[derive(Debug, Clone, Copy)]
pub enum Filter {
    /// PIL's `BILINEAR` (a triangle filter widened when shrinking).
    Bilinear,
    /// PIL's `BICUBIC` (Catmull-Rom, widened when shrinking).
    Bicubic,
}

/// The image as 8-bit RGB, without a copy when it already is.
pub fn rgb(image: &DynamicImage) -> Cow<'_, RgbImage> {
    match image.as_rgb8() {
        Some(rgb) => Cow::Borrowed(rgb),
        None => Cow::Owned(image.to_rgb8()),
    }
}

/// `crop` (left, top, width, height; the whole image when `None`) of `src`, scaled to
/// `width × height`. The crop is cut out first, as PIL's `crop` then `resize` does: pixels
/// outside it never bleed into its edges.
pub fn resize(
    src: &RgbImage,
    crop: Option<(u32, u32, u32, u32)>,
    width: u32,
    height: u32,
    filter: Filter,
) -> RgbImage {
    let mut dst = RgbImage::new(width.max(1), height.max(1));
    let filter = match filter {
        Filter::Bilinear => FilterType::Bilinear,
        Filter::Bicubic => FilterType::CatmullRom,
    };
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
    let cut;
    let source = match crop {
        Some((left, top, w, h)) if (left, top, w, h) != (0, 0, src.width(), src.height()) => {
            cut = image::imageops::crop_imm(src, left, top, w.max(1), h.max(1)).to_image();
            &cut
        }
        _ => src,
    };
    if Resizer::new().resize(source, &mut dst, &options).is_err() {
        // Only an empty source or crop can fail; the image crate copes with those.
        let (left, top, w, h) = crop.unwrap_or((0, 0, src.width(), src.height()));
        let part = image::imageops::crop_imm(src, left, top, w.max(1), h.max(1)).to_image();
        let kind = match filter {
            FilterType::Bilinear => image::imageops::FilterType::Triangle,
            _ => image::imageops::FilterType::CatmullRom,
        };
        dst = image::imageops::resize(&part, width.max(1), height.max(1), kind);
    }
    dst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_image_stays_flat_and_crops_land_where_asked() {
        let mut src = RgbImage::from_pixel(200, 100, image::Rgb([10, 20, 30]));
        for y in 0..100 {
            for x in 100..200 {
                src.put_pixel(x, y, image::Rgb([200, 200, 200]));
            }
        }
        let left = resize(&src, Some((0, 0, 100, 100)), 32, 32, Filter::Bicubic);
        assert!(left.pixels().all(|p| p.0 == [10, 20, 30]));
        let right = resize(&src, Some((100, 0, 100, 100)), 16, 16, Filter::Bilinear);
        assert!(right.pixels().all(|p| p.0 == [200, 200, 200]));
        let whole = resize(&src, None, 20, 10, Filter::Bilinear);
        assert_eq!(whole.dimensions(), (20, 10));
    }
}
