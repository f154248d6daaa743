//! Images: size from the header, EXIF, and cheap checks for truncation. Pixels are never
//! decoded and a large file is never read whole: headers and trailers are reached by seeking.

use std::io::{self, BufReader, Read, Seek, SeekFrom};

use aperture_core::MediaMetadata;
use image::{ImageFormat, ImageReader};

use crate::{exif_tags, jpeg};

/// TIFF-based files keep their tags anywhere in the file; we read at most this much of the
/// start, where cameras put them.
const MAX_TIFF_EXIF_BYTES: u64 = 16 * 1024 * 1024;
/// How far from the end a PNG's `IEND` chunk may be (it is the last 12 bytes, plus padding).
const PNG_TAIL_WINDOW: u64 = 1024;

/// Reads the size, EXIF and integrity of the image in `file`, whose type was sniffed as `mime`.
pub(crate) fn probe<R: Read + Seek>(
    file: &mut R,
    mime: &str,
    meta: &mut MediaMetadata,
) -> io::Result<()> {
    match mime {
        "image/jpeg" => probe_jpeg(file, meta),
        "image/tiff" | "image/x-canon-cr2" => probe_tiff(file, mime, meta),
        _ => {
            file.seek(SeekFrom::Start(0))?;
            if let Some(format) = header_format(mime) {
                read_size(BufReader::new(&mut *file), format, meta);
            }
            if mime == "image/png" && !png_has_end(file)? {
                meta.problems
                    .push("truncated png: no IEND chunk".to_owned());
            }
            if matches!(
                mime,
                "image/png" | "image/webp" | "image/heif" | "image/avif"
            ) {
                read_container_exif(file, meta)?;
            }
            Ok(())
        }
    }
}

fn probe_jpeg<R: Read + Seek>(file: &mut R, meta: &mut MediaMetadata) -> io::Result<()> {
    let header = jpeg::read_header(&mut *file)?;
    if let Some((width, height)) = header.size {
        meta.width = Some(width);
        meta.height = Some(height);
    }
    if let Some(exif) = header.exif {
        exif_tags::read_raw(exif, meta);
    }
    let scan_start = match header.scan_start {
        Ok(scan_start) => scan_start,
        Err(problem) => {
            meta.problems.push(problem);
            return Ok(());
        }
    };
    if header.size.is_none() {
        meta.problems
            .push("cannot read image header: no jpeg frame header".to_owned());
    }
    if !jpeg::has_end_marker(&mut *file, scan_start)? {
        meta.problems
            .push("truncated jpeg: no end-of-image marker".to_owned());
    }
    Ok(())
}

/// TIFF and the camera raw formats built on it. The first image of a raw file is usually a
/// small preview, so its size is replaced by the one EXIF gives for the photo, if any.
fn probe_tiff<R: Read + Seek>(
    file: &mut R,
    mime: &str,
    meta: &mut MediaMetadata,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    if mime == "image/tiff" {
        read_size(BufReader::new(&mut *file), ImageFormat::Tiff, meta);
    }
    let len = file.seek(SeekFrom::End(0))?;
    file.seek(SeekFrom::Start(0))?;
    let mut tiff = Vec::new();
    file.take(MAX_TIFF_EXIF_BYTES).read_to_end(&mut tiff)?;
    let whole_file = len <= MAX_TIFF_EXIF_BYTES;
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let exif = reader
        .read_raw(tiff)
        .or_else(|e| e.distill_partial_result(|_| {}));
    match exif {
        Ok(exif) => {
            if exif_tags::primary_is_preview(&exif) {
                meta.width = None;
                meta.height = None;
            }
            exif_tags::apply(&exif, meta);
        }
        Err(e) if whole_file => meta.problems.push(format!("cannot read tiff tags: {e}")),
        // The tags of a large TIFF may lie past the part we read (libtiff writes them last).
        Err(e) => tracing::debug!(error = %e, "no tiff tags in the start of a large file"),
    }
    Ok(())
}

/// The formats whose header the `image` crate can read.
fn header_format(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/png" => Some(ImageFormat::Png),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        "image/bmp" => Some(ImageFormat::Bmp),
        _ => None,
    }
}

/// Reads the pixel size from the image header; no pixels are decoded.
fn read_size<R: io::BufRead + Seek>(reader: R, format: ImageFormat, meta: &mut MediaMetadata) {
    match ImageReader::with_format(reader, format).into_dimensions() {
        Ok((width, height)) => {
            meta.width = Some(width);
            meta.height = Some(height);
        }
        Err(e) => meta.problems.push(format!("cannot read image header: {e}")),
    }
}

/// Whether `IEND` is among the last bytes of the file.
fn png_has_end<R: Read + Seek>(file: &mut R) -> io::Result<bool> {
    let len = file.seek(SeekFrom::End(0))?;
    let start = len.saturating_sub(PNG_TAIL_WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.take(len - start).read_to_end(&mut tail)?;
    Ok(tail.windows(4).any(|w| w == b"IEND"))
}

/// EXIF from PNG, WebP and HEIF/AVIF containers, which kamadak-exif walks itself (streaming,
/// so memory stays small). Their structural errors are the container's, not the EXIF's, and
/// are left to the checks above.
fn read_container_exif<R: Read + Seek>(file: &mut R, meta: &mut MediaMetadata) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let exif = reader
        .read_from_container(&mut BufReader::new(&mut *file))
        .or_else(|e| e.distill_partial_result(|_| {}));
    match exif {
        Ok(exif) => exif_tags::apply(&exif, meta),
        Err(exif::Error::Io(e)) if e.kind() != io::ErrorKind::UnexpectedEof => return Err(e),
        Err(e) => tracing::debug!(error = %e, "no exif read from image container"),
    }
    Ok(())
}
