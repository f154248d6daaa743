//! Images drawn in code, with EXIF written by the test.

use std::io::Cursor;

use aperture_core::MediaKind;
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage};

use crate::{has_problem, probe, write};

fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x ^ y) & 0xFF) as u8,
        ])
    })
}

pub(crate) fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&gradient(width, height))
        .unwrap();
    out
}

fn encode(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    gradient(width, height).write_to(&mut out, format).unwrap();
    out.into_inner()
}

pub(crate) fn png(width: u32, height: u32) -> Vec<u8> {
    encode(width, height, ImageFormat::Png)
}

fn ascii(tag: Tag, text: &str) -> Field {
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Ascii(vec![text.as_bytes().to_vec()]),
    }
}

/// Degrees, minutes and tenths of seconds.
fn dms(tag: Tag, degrees: u32, minutes: u32, tenths_of_seconds: u32) -> Field {
    let parts = [(degrees, 1), (minutes, 1), (tenths_of_seconds, 10)];
    Field {
        tag,
        ifd_num: In::PRIMARY,
        value: Value::Rational(parts.map(|(num, denom)| Rational { num, denom }).to_vec()),
    }
}

/// The TIFF structure of an EXIF block: a phone photo taken at the Eiffel Tower.
pub(crate) fn exif_block() -> Vec<u8> {
    let fields = [
        Field {
            tag: Tag::Orientation,
            ifd_num: In::PRIMARY,
            value: Value::Short(vec![6]),
        },
        ascii(Tag::DateTimeOriginal, "2021:07:04 10:20:30"),
        ascii(Tag::Make, "TestCam"),
        ascii(Tag::Model, "Model X"),
        ascii(Tag::GPSLatitudeRef, "N"),
        dms(Tag::GPSLatitude, 48, 51, 296),
        ascii(Tag::GPSLongitudeRef, "E"),
        dms(Tag::GPSLongitude, 2, 17, 402),
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut tiff = Cursor::new(Vec::new());
    writer.write(&mut tiff, false).unwrap();
    tiff.into_inner()
}

/// Inserts `tiff` as an EXIF APP1 segment right after the JPEG's start-of-image marker.
pub(crate) fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    let payload = [b"Exif\0\0".as_slice(), tiff].concat();
    let len = u16::try_from(payload.len() + 2).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

#[test]
fn jpeg_with_exif() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "IMG_0001.JPG",
        &with_exif(&jpeg(64, 48), &exif_block()),
    );
    let probe = probe(&path);
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("image/jpeg", MediaKind::Image)
    );
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!((meta.width, meta.height), (Some(64), Some(48)));
    assert_eq!(meta.orientation, Some(6));
    assert_eq!(meta.captured_at.as_deref(), Some("2021-07-04T10:20:30"));
    assert_eq!(meta.camera_make.as_deref(), Some("TestCam"));
    assert_eq!(meta.camera_model.as_deref(), Some("Model X"));
    let gps = meta.gps.expect("gps position");
    assert!((gps.latitude - 48.8582).abs() < 1e-4, "{gps:?}");
    assert!((gps.longitude - 2.2945).abs() < 1e-4, "{gps:?}");
    assert_eq!(gps.altitude, None);
}

#[test]
fn jpeg_without_exif() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "plain.jpeg", &jpeg(33, 17)));
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!((meta.width, meta.height), (Some(33), Some(17)));
    assert_eq!((meta.orientation, meta.captured_at.as_ref()), (None, None));
}

#[test]
fn truncated_jpeg_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let whole = jpeg(320, 240);
    let probe = probe(&write(dir.path(), "cut.jpg", &whole[..whole.len() / 2]));
    assert_eq!(probe.kind, MediaKind::Image);
    assert_eq!(
        probe.metadata.problems,
        ["truncated jpeg: no end-of-image marker"]
    );
    // The header survived the cut.
    assert_eq!(
        (probe.metadata.width, probe.metadata.height),
        (Some(320), Some(240))
    );
}

#[test]
fn jpeg_cut_inside_its_header_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "stub.jpg", &jpeg(8, 8)[..100]));
    assert_eq!(
        probe.metadata.problems,
        ["truncated jpeg: ends inside its header"]
    );
}

#[test]
fn png_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "drawing.png", &png(64, 48)));
    assert_eq!(
        (probe.mime.as_str(), probe.kind),
        ("image/png", MediaKind::Image)
    );
    let meta = &probe.metadata;
    assert!(meta.problems.is_empty(), "{:?}", meta.problems);
    assert_eq!((meta.width, meta.height), (Some(64), Some(48)));
}

#[test]
fn truncated_png_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let whole = png(200, 150);
    let probe = probe(&write(dir.path(), "cut.png", &whole[..whole.len() / 2]));
    assert_eq!(probe.kind, MediaKind::Image);
    assert_eq!(probe.metadata.problems, ["truncated png: no IEND chunk"]);
    assert_eq!(
        (probe.metadata.width, probe.metadata.height),
        (Some(200), Some(150))
    );
}

#[test]
fn png_with_a_broken_header_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = png(10, 10);
    // Zero width is invalid; the CRC no longer matches either.
    bytes[16..20].copy_from_slice(&[0, 0, 0, 0]);
    let probe = probe(&write(dir.path(), "broken.png", &bytes));
    assert_eq!(probe.kind, MediaKind::Image);
    assert!(
        has_problem(&probe, "cannot read image header: "),
        "{:?}",
        probe.metadata.problems
    );
    assert_eq!(probe.metadata.width, None);
}

#[test]
fn garbage_named_jpg_is_a_generic_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let probe = probe(&write(dir.path(), "photo.jpg", &garbage));
    assert_eq!(probe.mime, "application/octet-stream");
    assert_eq!(probe.kind, MediaKind::Other);
    assert_eq!(
        probe.metadata.problems,
        ["extension .jpg does not match content (application/octet-stream)"]
    );
}

#[test]
fn png_named_jpg_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let probe = probe(&write(dir.path(), "photo.jpg", &png(4, 4)));
    assert_eq!(probe.mime, "image/png");
    assert_eq!(
        (probe.metadata.width, probe.metadata.height),
        (Some(4), Some(4))
    );
    assert_eq!(
        probe.metadata.problems,
        ["extension .jpg does not match content (image/png)"]
    );
}

#[test]
fn other_formats_give_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        (ImageFormat::Gif, "image/gif", "a.gif"),
        (ImageFormat::WebP, "image/webp", "a.webp"),
        (ImageFormat::Bmp, "image/bmp", "a.bmp"),
        (ImageFormat::Tiff, "image/tiff", "a.tiff"),
    ];
    for (format, mime, name) in formats {
        let probe = probe(&write(dir.path(), name, &encode(40, 30, format)));
        assert_eq!((probe.mime.as_str(), probe.kind), (mime, MediaKind::Image));
        let meta = &probe.metadata;
        assert!(meta.problems.is_empty(), "{name}: {:?}", meta.problems);
        assert_eq!((meta.width, meta.height), (Some(40), Some(30)), "{name}");
    }
}
