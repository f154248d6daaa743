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

/// `DIR/NAME`: an executable `/bin/sh` script running `body`, to stand in for a program
/// (ffmpeg, pip, a translator) in a test.
///
/// The file is written by a `sh` child, never through a file this process holds open: tests run
/// on many threads, and a child forked by another test while this process held the file open
/// for writing would keep it open, so running the script would fail with "Text file busy"
/// (`ETXTBSY`).
#[cfg(unix)]
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::io::Write;
    use std::process::Stdio;
    let path = dir.join(name);
    let mut child = Command::new("sh")
        .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
        .arg(&path)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sh to write {}: {e}", path.display()));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(format!("#!/bin/sh\n{body}\n").as_bytes())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    drop(stdin);
    let status = child.wait().expect("sh was started");
    assert!(status.success(), "sh failed writing {}", path.display());
    path
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

/// A corpus of hostile and damaged files in `dir`, made from valid files of every kind this
/// crate reads (JPEG, PNG, GIF, WebP, TIFF, PDF with text and with scans, HTML, text, WAV,
/// MP4) and any real photos in `photos`: each cut short at several points, with bits flipped,
/// and under names that lie about its type; then bombs (images whose headers claim billions
/// of pixels, a PDF stream that inflates to a gigabyte, nested and looping PDF objects),
/// markup nested hundreds of thousands deep, endless lines, empty files and noise. Returns the
/// files made, over 200. Needs ffmpeg (for the WAV and the MP4). `photos`: more valid files
/// to damage the same ways (any kind).
pub fn hostile_corpus(dir: &Path, photos: &[PathBuf]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let media = dir.join(".media");
    std::fs::create_dir_all(&media).unwrap();
    let mut bases: Vec<(String, Vec<u8>)> = vec![
        ("photo.jpg".into(), jpeg(640, 480)),
        ("picture.png".into(), png(320, 200)),
        ("anim.gif".into(), image(64, 48, ImageFormat::Gif)),
        ("small.webp".into(), image(64, 48, ImageFormat::WebP)),
        ("scan.tiff".into(), image(128, 96, ImageFormat::Tiff)),
        ("report.pdf".into(), pdf_with_text_pages(3)),
        (
            "scanned.pdf".into(),
            pdf_of_scans(&[(jpeg(400, 300), 400, 300)]),
        ),
        (
            "page.html".into(),
            b"<html><head><title>Budget</title><script>var x = 1;</script></head><body>\
              <h1>Harbour budget</h1><p>The council met &amp; agreed.</p></body></html>"
                .to_vec(),
        ),
        (
            "notes.txt".into(),
            "Minutes of the meeting. Les comptes sont approuvés. 会议纪要。\n"
                .repeat(40)
                .into_bytes(),
        ),
        ("tone.wav".into(), std::fs::read(wav(&media)).unwrap()),
        ("clip.mp4".into(), std::fs::read(video(&media)).unwrap()),
    ];
    for photo in photos {
        let name = photo.file_name().unwrap().to_string_lossy().into_owned();
        bases.push((name, std::fs::read(photo).unwrap()));
    }
    std::fs::remove_dir_all(&media).unwrap();

    let mut made = Vec::new();
    let mut put = |name: String, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        made.push(path);
    };
    let lies = ["jpg", "pdf", "mp4", "png", "html", "wav", "txt"];
    for (n, (name, bytes)) in bases.iter().enumerate() {
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
        // Cut short: its header only, a tenth, half, three quarters, all but its last byte.
        for (label, len) in [
            ("head", 16.min(bytes.len())),
            ("tenth", bytes.len() / 10),
            ("half", bytes.len() / 2),
            ("three-quarters", bytes.len() * 3 / 4),
            ("most", bytes.len().saturating_sub(1)),
        ] {
            put(format!("{n:02}-{stem}-cut-{label}.{ext}"), &bytes[..len]);
        }
        // Bits flipped: one, a few dozen, a burst of noise in the middle.
        for (label, flips) in [("flip1", 1), ("flip40", 40)] {
            let mut damaged = bytes.clone();
            for _ in 0..flips {
                let at = (random() % damaged.len() as u64) as usize;
                damaged[at] ^= 1 << (random() % 8);
            }
            put(format!("{n:02}-{stem}-{label}.{ext}"), &damaged);
        }
        // Its header damaged, where parsers take their sizes from.
        let mut header = bytes.clone();
        for b in header.iter_mut().skip(4).take(60).step_by(7) {
            *b = !*b;
        }
        put(format!("{n:02}-{stem}-header.{ext}"), &header);
        let mut noisy = bytes.clone();
        let from = noisy.len() / 3;
        for b in noisy.iter_mut().skip(from).take(512) {
            *b = random() as u8;
        }
        put(format!("{n:02}-{stem}-noise.{ext}"), &noisy);
        // Names that lie: the same bytes under other kinds' extensions.
        for lie in lies.iter().filter(|l| **l != ext).take(4) {
            put(format!("{n:02}-{stem}-as.{lie}"), bytes);
        }
    }

    // Images whose headers claim more pixels than anything should decode.
    put("bomb-30000.png".into(), &bomb_png());
    let mut jpeg_bomb = jpeg(64, 64);
    if let Some(sof) = jpeg_bomb.windows(2).position(|w| w == [0xff, 0xc0]) {
        jpeg_bomb[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xfe, 0xff, 0xfe]);
    }
    put("bomb-65534.jpg".into(), &jpeg_bomb);
    let mut gif_bomb = image(8, 8, ImageFormat::Gif);
    gif_bomb[6..10].copy_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    put("bomb-screen.gif".into(), &gif_bomb);
    // Just under the side limit, or many pixels of one colour: tiny on disk.
    let encode = |img: image::DynamicImage| {
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    };
    put(
        "wide-19000x1.png".into(),
        &encode(image::RgbImage::new(19_000, 1).into()),
    );
    put(
        "tall-1x19000.png".into(),
        &encode(image::GrayImage::new(1, 19_000).into()),
    );
    put(
        "flat-12000x12000.png".into(),
        &encode(image::GrayImage::new(12_000, 12_000).into()),
    );

    // PDFs: a stream that inflates to a gigabyte, arrays nested deep, pages that loop.
    let zeros = {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        for _ in 0..1024 {
            z.write_all(&block).unwrap();
        }
        z.finish().unwrap()
    };
    let mut inflating = format!(
        "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages \
         /Kids [3 0 R] /Count 1 >>\nendobj\n3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 \
         612 792] /Contents 4 0 R >>\nendobj\n4 0 obj\n<< /Length {} /Filter /FlateDecode >>\n\
         stream\n",
        zeros.len()
    )
    .into_bytes();
    inflating.extend_from_slice(&zeros);
    inflating.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    put("bomb-inflate.pdf".into(), &inflating);
    let mut nested = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R /Deep ".to_vec();
    nested.extend(std::iter::repeat_n(b'[', 200_000));
    nested.extend(std::iter::repeat_n(b']', 200_000));
    nested.extend_from_slice(
        b" >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n\
          << /Root 1 0 R >>\n%%EOF\n",
    );
    put("deep-arrays.pdf".into(), &nested);
    put(
        "looping-pages.pdf".into(),
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages \
          /Kids [3 0 R 2 0 R] /Count 1000000 >>\nendobj\n3 0 obj\n<< /Type /Pages /Parent 2 0 R \
          /Kids [2 0 R 3 0 R] /Count 1000000 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n",
    );
    put(
        "self-parent.pdf".into(),
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 1 0 R /Kids [1 0 R] /Count 5 >>\nendobj\n\
          trailer\n<< /Root 1 0 R /Prev 0 >>\n%%EOF\n",
    );

    // Markup and text: nesting hundreds of thousands deep, one endless line, no text at all.
    let mut divs = String::from("<html><body>");
    for _ in 0..150_000 {
        divs.push_str("<div>");
    }
    divs.push_str("deep");
    for _ in 0..150_000 {
        divs.push_str("</div>");
    }
    put("nested-divs.html".into(), divs.as_bytes());
    put(
        "open-tags.html".into(),
        "<b><i><u>".repeat(300_000).as_bytes(),
    );
    put(
        "endless-line.txt".into(),
        "word ".repeat(4_000_000).as_bytes(),
    );
    put(
        "entities.html".into(),
        "&amp;&#x1F600;&#99999999;&".repeat(200_000).as_bytes(),
    );
    put("controls.txt".into(), &vec![0x07; 100_000]);

    // Audio and video whose headers lie about their size.
    let mut wav_lie = std::fs::read(dir.join("09-tone-cut-most.wav")).unwrap();
    wav_lie[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    if let Some(data) = wav_lie.windows(4).position(|w| w == b"data") {
        wav_lie[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    put("huge-claims.wav".into(), &wav_lie);

    // Nothing, and noise, under every extension.
    for ext in [
        "jpg", "png", "pdf", "mp4", "wav", "html", "txt", "gif", "webp", "tiff", "mov", "mp3",
    ] {
        put(format!("empty.{ext}"), b"");
        let noise: Vec<u8> = (0..4096).map(|_| random() as u8).collect();
        put(format!("noise.{ext}"), &noise);
    }
    made
}
