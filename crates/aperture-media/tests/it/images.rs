//! Images drawn in code, with EXIF written by the test (see `aperture_media::fixtures`).

use aperture_core::MediaKind;
use aperture_media::fixtures::{exif_block, image, jpeg, png, with_exif};
use image::ImageFormat;

use crate::{has_problem, probe, write};

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
        let probe = probe(&write(dir.path(), name, &image(40, 30, format)));
        assert_eq!((probe.mime.as_str(), probe.kind), (mime, MediaKind::Image));
        let meta = &probe.metadata;
        assert!(meta.problems.is_empty(), "{name}: {:?}", meta.problems);
        assert_eq!((meta.width, meta.height), (Some(40), Some(30)), "{name}");
    }
}
