//! Limits on what is decoded: an image whose header promises more pixels than any analyzer
//! will decode (a decompression bomb) is refused before it is stored.

use std::io::{BufRead, BufReader, Cursor, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader};

/// The largest image decoded, in pixels per side. A 30,000 × 30,000 photo (or a
/// decompression bomb claiming to be one) is refused up front from its header, before any
/// pixel memory is taken.
pub const MAX_SIDE: u32 = 20_000;
/// The most bytes of decoded pixels (RGBA) an image may take.
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

/// An image refused for its size.
#[derive(Debug, thiserror::Error)]
pub enum TooLarge {
    /// The header claims more pixels than the limits allow.
    #[error(
        "{} claims {width} × {height} pixels ({} MiB decoded); images may be at most {MAX_SIDE} \
         pixels a side and {} MiB decoded (a decompression bomb?)",
        .name,
        decoded_bytes(*.width, *.height) >> 20,
        MAX_DECODED_BYTES >> 20
    )]
    Image {
        /// The file as shown to people.
        name: String,
        /// What the header claims.
        width: u32,
        /// What the header claims.
        height: u32,
    },
    /// The image's header made its reader fail, so its size cannot be bounded.
    #[error("{name}: its image header could not be read safely, so its size is unknown")]
    Unreadable {
        /// The file as shown to people.
        name: String,
    },
    /// The file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn decoded_bytes(width: u32, height: u32) -> u64 {
    u64::from(width) * u64::from(height) * 4
}

/// Refuses an image whose header promises more pixels than the analyzers will ever decode,
/// reading the header only; `name` is how errors show the file. Files that are not images,
/// and images whose header cannot be read (stored and flagged, as at any ingest), pass. Only a
/// regular file is read: anything else (a FIFO, refused when opened without waiting for a
/// writer; a folder; a device) is [`TooLarge::Io`], as a file that cannot be opened is.
pub fn check_image_size(path: &Path, name: &str) -> Result<(), TooLarge> {
    let io = |source| TooLarge::Io {
        path: path.to_owned(),
        source,
    };
    guarded(name, || {
        let file = crate::open_file_only(path)
            .map_err(io)?
            .map_err(|what| io(std::io::Error::other(what)))?;
        claimed_size(BufReader::new(file), path).map_err(io)
    })
}

/// [`check_image_size`] on an image's bytes already in memory (a small file read whole at
/// ingest), so that what is checked is what is stored; `name` (the file's path as shown) gives
/// the extension, as the path does there. Reading memory fails in no way of its own.
pub fn check_image_bytes(bytes: &[u8], name: &str) -> Result<(), TooLarge> {
    guarded(name, || {
        claimed_size(Cursor::new(bytes), Path::new(name)).map_err(|source| TooLarge::Io {
            path: PathBuf::from(name),
            source,
        })
    })
}

/// Bounds the size `read` finds. A header reader that panics on hostile bytes: refused, since
/// nothing then bounds what decoding it would take.
fn guarded(
    name: &str,
    read: impl FnOnce() -> Result<Option<(u32, u32)>, TooLarge>,
) -> Result<(), TooLarge> {
    let claimed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
            Err(TooLarge::Unreadable {
                name: name.to_owned(),
            })
        })?;
    match claimed {
        Some((width, height))
            if width > MAX_SIDE
                || height > MAX_SIDE
                || decoded_bytes(width, height) > MAX_DECODED_BYTES =>
        {
            Err(TooLarge::Image {
                name: name.to_owned(),
                width,
                height,
            })
        }
        _ => Ok(()),
    }
}

/// The size an image's header claims; `None` for what is not an image, or an image whose header
/// cannot be read. The format is guessed from the content, else from `path`'s extension.
fn claimed_size<R: BufRead + Seek>(
    mut source: R,
    path: &Path,
) -> std::io::Result<Option<(u32, u32)>> {
    let mut reader = ImageReader::new(&mut source);
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let reader = reader.with_guessed_format()?;
    if reader.format().is_none() {
        return Ok(None);
    }
    if let Ok(size) = reader.into_dimensions() {
        return Ok(Some(size));
    }
    // A PNG cut short after its header still says how large it claims to be.
    source.seek(SeekFrom::Start(0))?;
    let mut head = [0u8; 24];
    if source.read_exact(&mut head).is_err() {
        return Ok(None);
    }
    Ok(png_header_size(&head))
}

/// Width and height from a PNG's IHDR chunk, in the file's first 24 bytes.
fn png_header_size(head: &[u8; 24]) -> Option<(u32, u32)> {
    if &head[..8] != b"\x89PNG\r\n\x1a\n" || &head[12..16] != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(head[16..20].try_into().ok()?);
    let h = u32::from_be_bytes(head[20..24].try_into().ok()?);
    Some((w, h))
}
