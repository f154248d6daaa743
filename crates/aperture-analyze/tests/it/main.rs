//! The built-in analyzers on images the tests draw.

mod text;

mod clip;
mod embed;

mod real_models;
mod speech;
mod translate;
mod video;

use std::io::Cursor;
use std::path::Path;

use aperture_analyze::{Analyzer, Error, Input, PerceptualHash, Thumbnail, phash_distance};
use aperture_catalog::Asset;
use aperture_core::{AssetId, ContentHash, MediaKind, MediaMetadata, UnixMillis};
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

fn asset(name: &str, kind: MediaKind, orientation: Option<u16>) -> Asset {
    Asset {
        id: AssetId::new(),
        collection: "c".into(),
        hash: ContentHash::of(name.as_bytes()),
        size: 0,
        kind,
        mime: "image/jpeg".into(),
        ingested_at: UnixMillis::now(),
        captured_at: None,
        name: name.into(),
        metadata: MediaMetadata {
            orientation,
            ..MediaMetadata::default()
        },
    }
}

/// A busy scene of coloured blocks and discs, like nothing else drawn with another seed.
fn scene(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut img = RgbImage::from_pixel(width, height, Rgb([200, 200, 200]));
    for _ in 0..40 {
        let (x0, y0) = (
            (next() % width as u64) as u32,
            (next() % height as u64) as u32,
        );
        let (w, h) = (
            (next() % (width as u64 / 3) + 4) as u32,
            (next() % (height as u64 / 3) + 4) as u32,
        );
        let colour = Rgb([next() as u8, next() as u8, next() as u8]);
        let disc = next() % 2 == 0;
        for y in y0..(y0 + h).min(height) {
            for x in x0..(x0 + w).min(width) {
                let (dx, dy) = (
                    x as f32 - (x0 + w / 2) as f32,
                    y as f32 - (y0 + h / 2) as f32,
                );
                let inside = !disc
                    || (dx / (w as f32 / 2.0)).powi(2) + (dy / (h as f32 / 2.0)).powi(2) <= 1.0;
                if inside {
                    img.put_pixel(x, y, colour);
                }
            }
        }
    }
    img
}

fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut Cursor::new(&mut out), format)
        .unwrap();
    out
}

fn jpeg_quality(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(Cursor::new(&mut out), quality)
        .encode_image(img)
        .unwrap();
    out
}

fn run(analyzer: &dyn Analyzer, asset: &Asset, path: &Path) -> aperture_analyze::Output {
    analyzer
        .analyze(&Input {
            asset,
            path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_or_else(|e| panic!("{}: {e}", asset.name))
}

fn hash_of(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = run(&PerceptualHash, &asset(name, MediaKind::Image, None), &path);
    assert_eq!(out.insights[0].analyzer, "phash");
    out.insights[0].value.to_json_value()["hash"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn thumbnails_are_small_upright_jpegs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.png");
    std::fs::write(&path, encode(&scene(800, 400, 1), ImageFormat::Png)).unwrap();

    let upright = run(
        &Thumbnail::default(),
        &asset("wide.png", MediaKind::Image, None),
        &path,
    );
    let value = upright.insights[0].value.to_json_value();
    assert_eq!(
        (value["width"].as_u64(), value["height"].as_u64()),
        (Some(256), Some(128))
    );
    let (name, bytes) = &upright.derived[0];
    assert_eq!(name, "thumbnail-256.jpg");
    let decoded = image::load_from_memory(bytes).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (256, 128));
    assert_eq!(image::guess_format(bytes).unwrap(), ImageFormat::Jpeg);

    // EXIF orientation 6 (rotate 90° clockwise): the thumbnail stands up.
    let rotated = run(
        &Thumbnail::default(),
        &asset("wide.png", MediaKind::Image, Some(6)),
        &path,
    );
    let value = rotated.insights[0].value.to_json_value();
    assert_eq!(
        (value["width"].as_u64(), value["height"].as_u64()),
        (Some(128), Some(256))
    );
    assert_eq!(
        rotated.insights[0].analyzer_version,
        Thumbnail::default().version()
    );
}

#[test]
fn near_duplicates_hash_close_and_different_photos_far() {
    let dir = tempfile::tempdir().unwrap();
    let original = scene(640, 480, 7);
    let base = hash_of(
        dir.path(),
        "original.png",
        &encode(&original, ImageFormat::Png),
    );
    let half = image::imageops::resize(&original, 320, 240, image::imageops::FilterType::Triangle);
    let cropped = image::imageops::crop_imm(&original, 16, 12, 608, 456).to_image();
    let copies = [
        ("resized.png", encode(&half, ImageFormat::Png)),
        ("recompressed.jpg", jpeg_quality(&original, 30)),
        ("cropped.png", encode(&cropped, ImageFormat::Png)),
    ];
    for (name, bytes) in &copies {
        let d = phash_distance(&base, &hash_of(dir.path(), name, bytes)).unwrap();
        eprintln!("{name}: {d} bits");
        assert!(d <= 10, "{name}: {d} bits from the original");
    }
    for seed in [8, 9, 10] {
        let other = hash_of(
            dir.path(),
            "other.png",
            &encode(&scene(640, 480, seed), ImageFormat::Png),
        );
        let d = phash_distance(&base, &other).unwrap();
        assert!(
            d >= 16,
            "seed {seed}: only {d} bits from a different picture"
        );
    }
}

#[test]
fn a_decompression_bomb_is_refused_from_its_header() {
    let png = bomb_png();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    std::fs::write(&path, &png).unwrap();
    let err = Thumbnail::default()
        .analyze(&Input {
            asset: &asset("bomb.png", MediaKind::Image, None),
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(
        err.to_string().contains("bomb.png") && err.to_string().contains("limit"),
        "{err}"
    );
}

#[test]
fn damaged_and_foreign_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = encode(&scene(300, 200, 3), ImageFormat::Jpeg);
    let path = dir.path().join("cut.jpg");
    std::fs::write(&path, &good[..200]).unwrap();
    let err = PerceptualHash
        .analyze(&Input {
            asset: &asset("cut.jpg", MediaKind::Image, None),
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err:?}");
    assert!(err.to_string().contains("cut.jpg"), "{err}");

    let err = Thumbnail::default()
        .analyze(&Input {
            asset: &asset("song.mp3", MediaKind::Audio, None),
            path: &path,
            insights: &[],
            frames: &[],
            suppress_plates: true,
        })
        .unwrap_err();
    assert!(matches!(err, Error::NotApplicable { .. }), "{err:?}");
}

pub use aperture_media::fixtures::bomb_png;
