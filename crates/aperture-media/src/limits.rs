//! Limits on what is decoded: an image whose header promises more pixels than any analyzer
//! will decode (a decompression bomb) is refused before it is stored.

use std::path::{Path, PathBuf};

use image::ImageReader;

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
/// and images whose header cannot be read (stored and flagged, as at any ingest), pass.
pub fn check_image_size(path: &Path, name: &str) -> Result<(), TooLarge> {
    // A header reader that panics on hostile bytes: refused, since nothing then bounds what
    // decoding it would take.
    std::panic::catch_unwind(|| check_image_size_unguarded(path, name)).unwrap_or_else(|_| {
        Err(TooLarge::Unreadable {
            name: name.to_owned(),
        })
    })
}

fn check_image_size_unguarded(path: &Path, name: &str) -> Result<(), TooLarge> {
    let io = |source| TooLarge::Io {
        path: path.to_owned(),
        source,
    };
    let reader = match ImageReader::open(path).and_then(|r| r.with_guessed_format()) {
        Ok(r) if r.format().is_some() => r,
        Ok(_) => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let (width, height) = match reader.into_dimensions() {
        Ok(size) => size,
        // A PNG cut short after its header still says how large it claims to be.
        Err(_) => match png_header_size(path) {
            Some(size) => size,
            None => return Ok(()),
        },
    };
    if width > MAX_SIDE || height > MAX_SIDE || decoded_bytes(width, height) > MAX_DECODED_BYTES {
        return Err(TooLarge::Image {
            name: name.to_owned(),
            width,
            height,
        });
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
