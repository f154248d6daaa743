//! Test fixtures made in code, for this crate's tests and for other crates' tests: images
//! drawn pixel by pixel, an EXIF block with known values, PDFs built with lopdf, audio and video
//! made with `ffmpeg -f lavfi`. Enabled by the `fixtures` feature; not part of the API.
//!
//! ```toml
//! [dev-dependencies]
//! aperture-media = { workspace = true, features = ["fixtures"] }
//! ```
//!
//! These are test helpers: they panic, with a message, when something they rely on fails
//! (ffmpeg missing, an encoder refusing its input).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::codecs::jpeg::JpegEncoder;
use image::{ImageFormat, Rgb, RgbImage};
use lopdf::content::{Content, Operation};
use lopdf::{Dictionary, Document, Object, Stream, dictionary};

/// A `width`×`height` picture with a gradient and a pattern, so that it compresses like a
/// photo rather than like a flat colour.
pub fn gradient(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        Rgb([
            (x * 255 / width) as u8,
            (y * 255 / height) as u8,
            ((x ^ y) & 0xFF) as u8,
        ])
    })
}

/// The [`gradient`] as a baseline JPEG (quality 90), without EXIF.
pub fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&gradient(width, height))
        .expect("encode fixture jpeg");
    out
}

/// The [`gradient`] as a PNG.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    image(width, height, ImageFormat::Png)
}

/// The [`gradient`] in any format the `image` crate writes (GIF, WebP, BMP, TIFF, ...).
pub fn image(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    gradient(width, height)
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encode fixture {format:?}: {e}"));
    out.into_inner()
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

/// The TIFF structure of an EXIF block: a phone photo taken at the Eiffel Tower. It holds
/// orientation 6, DateTimeOriginal `2021:07:04 10:20:30`, Make `TestCam`, Model `Model X` and
/// GPS 48°51'29.6"N 2°17'40.2"E (48.8582, 2.2945), no altitude. Put it into a JPEG with
/// [`with_exif`].
pub fn exif_block() -> Vec<u8> {
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
    writer.write(&mut tiff, false).expect("write fixture exif");
    tiff.into_inner()
}

/// Inserts `tiff` (an [`exif_block`]) as an EXIF APP1 segment right after the JPEG's
/// start-of-image marker.
pub fn with_exif(jpeg: &[u8], tiff: &[u8]) -> Vec<u8> {
    assert!(jpeg.starts_with(&[0xFF, 0xD8]), "not a jpeg");
    let payload = [b"Exif\0\0".as_slice(), tiff].concat();
    let len = u16::try_from(payload.len() + 2).expect("exif block fits one segment");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PDF whose pages (A4) draw the given content streams, with the resources that `resources`
/// adds to the document, shared by all pages.
pub fn pdf(pages: &[Vec<u8>], resources: impl FnOnce(&mut Document) -> Dictionary) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let resources = resources(&mut doc);
    let resources_id = doc.add_object(resources);
    let kids: Vec<Object> = pages
        .iter()
        .map(|content| {
            let content_id = doc.add_object(Stream::new(dictionary! {}, content.clone()));
            doc.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "Contents" => content_id,
            })
            .into()
        })
        .collect();
    let count = i64::try_from(kids.len()).expect("page count");
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages",
            "Kids" => kids,
            "Count" => count,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! {
        "Type" => "Catalog",
        "Pages" => pages_id,
    });
    doc.trailer.set("Root", catalog_id);
    doc.compress();
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).expect("save fixture pdf");
    bytes
}

/// Resources naming Helvetica as font `F1`, which [`text_page`] uses.
pub fn helvetica() -> Dictionary {
    dictionary! {
        "Font" => dictionary! {
            "F1" => dictionary! {
                "Type" => "Font",
                "Subtype" => "Type1",
                "BaseFont" => "Helvetica",
            },
        },
    }
}

/// A content stream that writes `Hello page {n}` in font `F1` (see [`helvetica`]).
pub fn text_page(n: usize) -> Vec<u8> {
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 24.into()]),
            Operation::new("Td", vec![100.into(), 700.into()]),
            Operation::new(
                "Tj",
                vec![Object::string_literal(format!("Hello page {n}"))],
            ),
            Operation::new("ET", vec![]),
        ],
    };
    content.encode().expect("encode fixture page")
}

/// A PDF of `pages` pages, each with a line of text: it has a text layer.
pub fn pdf_with_text_pages(pages: usize) -> Vec<u8> {
    let contents: Vec<Vec<u8>> = (1..=pages).map(text_page).collect();
    pdf(&contents, |_| helvetica())
}

/// A PDF of `pages` pages that each draw a filled rectangle and a 2×2 image and no text: a
/// scan, as far as text goes.
pub fn pdf_without_text(pages: usize) -> Vec<u8> {
    let image = Stream::new(
        dictionary! {
            "Type" => "XObject",
            "Subtype" => "Image",
            "Width" => 2,
            "Height" => 2,
            "ColorSpace" => "DeviceGray",
            "BitsPerComponent" => 8,
        },
        vec![0, 255, 255, 0],
    );
    let page = b"0 0 1 rg 100 100 300 200 re f q 200 0 0 200 100 400 cm /Im0 Do Q".to_vec();
    pdf(&vec![page; pages], |doc| {
        dictionary! { "XObject" => dictionary! { "Im0" => doc.add_object(image) } }
    })
}

/// A PDF of one page per JPEG (`(bytes, width, height)`), each drawn across the top of an
/// A4 page at its own aspect ratio, and nothing else: a scanned document without a text layer.
pub fn pdf_of_scans(scans: &[(Vec<u8>, u32, u32)]) -> Vec<u8> {
    let pages: Vec<Vec<u8>> = scans
        .iter()
        .enumerate()
        .map(|(i, (_, w, h))| {
            let height = (595.0 * f64::from(*h) / f64::from(*w)).min(842.0);
            format!(
                "q 595 0 0 {height:.2} 0 {:.2} cm /Im{i} Do Q",
                842.0 - height
            )
            .into_bytes()
        })
        .collect();
    pdf(&pages, |doc| {
        let mut images = Dictionary::new();
        for (i, (jpeg, width, height)) in scans.iter().enumerate() {
            let stream = Stream::new(
                dictionary! {
                    "Type" => "XObject",
                    "Subtype" => "Image",
                    "Width" => i64::from(*width),
                    "Height" => i64::from(*height),
                    "ColorSpace" => "DeviceRGB",
                    "BitsPerComponent" => 8,
                    "Filter" => "DCTDecode",
                },
                jpeg.clone(),
            )
            .with_compression(false);
            images.set(format!("Im{i}"), doc.add_object(stream));
        }
        dictionary! { "XObject" => images }
    })
}

/// Runs `ffmpeg -v error -y ARGS DIR/NAME` and returns `DIR/NAME`. Panics, saying what to
/// install, when ffmpeg cannot be run: a test that skipped itself would hide that the probing
/// was never checked.
pub fn ffmpeg(dir: &Path, args: &[&str], name: &str) -> PathBuf {
    let out = dir.join(name);
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "these tests need ffmpeg and ffprobe on PATH (apt-get install ffmpeg): \
                 cannot run ffmpeg: {e}"
            )
        });
    assert!(
        output.status.success(),
        "ffmpeg failed making {name}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

/// `DIR/clip.mp4`: 2 s of 320×240 test pattern at 25 fps (H.264, yuv420p) with a 440 Hz tone
/// (AAC, 44.1 kHz mono), tagged `creation_time=2020-01-02T03:04:05Z` and
/// `location=+48.8582+002.2945/`.
pub fn video(dir: &Path) -> PathBuf {
    ffmpeg(
        dir,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
            "-metadata",
            "creation_time=2020-01-02T03:04:05Z",
            "-metadata",
            "location=+48.8582+002.2945/",
        ],
        "clip.mp4",
    )
}

/// `DIR/tone.wav`: 1 s of a 440 Hz tone, 16-bit PCM, 44.1 kHz mono.
pub fn wav(dir: &Path) -> PathBuf {
    ffmpeg(
        dir,
        &["-f", "lavfi", "-i", "sine=frequency=440:duration=1"],
        "tone.wav",
    )
}

/// A valid PNG header that claims 30,000 × 30,000 pixels, followed by almost nothing.
pub fn bomb_png() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend(30_000u32.to_be_bytes());
    ihdr.extend(30_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    png.extend(13u32.to_be_bytes());
    png.extend(&ihdr);
    png.extend(crc32(&ihdr).to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
