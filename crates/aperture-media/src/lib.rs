//! Sniffing media types from bytes and probing their metadata: EXIF for images, `ffprobe` for
//! audio and video, `lopdf` for PDFs.
//!
//! The type of a file is decided from its first bytes, never from its name. Probing a file fails
//! only when the file cannot be read; whatever is wrong with its *content* (a truncated JPEG, a
//! PDF that does not parse, an extension that lies) is written, in words, into
//! [`MediaMetadata::problems`], because an archive keeps damaged files too.
//!
//! ```
//! use aperture_core::MediaKind;
//!
//! let (mime, kind) = aperture_media::sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
//! assert_eq!((mime.as_str(), kind), ("application/pdf", MediaKind::Document));
//! ```
//!
//! ```no_run
//! use std::path::Path;
//! use aperture_media::{probe_file, ProbeOptions};
//!
//! let probe = probe_file(Path::new("holiday.jpg"), &ProbeOptions::default())?;
//! println!("{} {} {:?}", probe.mime, probe.kind, probe.metadata.captured_at);
//! for problem in &probe.metadata.problems {
//!     eprintln!("holiday.jpg: {problem}");
//! }
//! # Ok::<(), aperture_media::Error>(())
//! ```

pub mod audio;
mod av;
mod exif_tags;
mod extension;
#[cfg(feature = "fixtures")]
#[doc(hidden)]
pub mod fixtures;
mod jpeg;
mod limits;
mod pdf;
pub mod pdf_objects;
pub mod pdf_text;
mod picture;
mod sniff;
pub mod text;
pub mod video;

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aperture_core::{MediaKind, MediaMetadata};

pub use limits::{MAX_DECODED_BYTES, MAX_SIDE, TooLarge, check_image_bytes, check_image_size};
pub use sniff::{SNIFF_LEN, sniff};

/// What probing a file found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The MIME type sniffed from the bytes (`image/jpeg`, `text/plain`,
    /// `application/octet-stream` when unknown).
    pub mime: String,
    /// What the file is, from the same sniffing.
    pub kind: MediaKind,
    /// What the file carries, and what is wrong with it (`metadata.problems`).
    pub metadata: MediaMetadata,
}

/// How to probe files.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The `ffprobe` program, found on `PATH` unless a path is given. Default: `ffprobe`.
    pub ffprobe: PathBuf,
    /// How long `ffprobe` may run on one file before it is killed. Default: 30 seconds.
    pub ffprobe_timeout: Duration,
    /// PDFs larger than this are not parsed: their page count stays unknown and a problem is
    /// noted. Default: 256 MiB.
    pub max_pdf_bytes: u64,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            ffprobe: PathBuf::from("ffprobe"),
            ffprobe_timeout: Duration::from_secs(30),
            max_pdf_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Why a file could not be probed. Problems with a file's content are not errors: they are
/// noted in [`MediaMetadata::problems`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing at `path`.
    #[error("cannot probe {}: no such file", path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A directory, FIFO, socket or device: only regular files are probed.
    #[error("cannot probe {}: {what}", path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
        /// What it is instead, in words (`is a directory`).
        what: &'static str,
    },
    /// Any other failure to read the file (permission denied, an IO error).
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// Probing's result: it fails only with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound { path, source },
            io::ErrorKind::IsADirectory => Error::NotAFile {
                path,
                what: "is a directory",
            },
            _ => Error::Io { path, source },
        }
    }
}

/// Probes a local file: sniffs its type from its first bytes, then reads the metadata its kind
/// carries (EXIF, the container as `ffprobe` sees it, PDF pages).
///
/// Returns an error only when the file cannot be read (missing, a directory, no permission...).
/// Problems with the content never fail: they are noted in `metadata.problems`.
///
/// This blocks: run it on a blocking pool. Audio and video run `ffprobe`, which takes about a
/// tenth of a second per file (mostly process start-up) and at most
/// [`ProbeOptions::ffprobe_timeout`]. PDFs are read into memory whole, up to
/// [`ProbeOptions::max_pdf_bytes`]. Images and everything else are read by their headers and
/// trailers only, however large.
pub fn probe_file(path: &Path, opts: &ProbeOptions) -> Result<Probe> {
    let mut file = open_regular(path)?;
    let head = read_head(&mut file).map_err(|e| Error::io(path, e))?;
    probe_read(path, &mut file, &head, opts)
}

/// What a file is, from its bytes already read whole (a small file staged in memory), as
/// [`probe_file`] finds it, without reading the file again. `path` names the file in messages
/// and by its extension; audio and video are probed from it (by ffprobe).
pub fn probe_bytes(path: &Path, bytes: &[u8], opts: &ProbeOptions) -> Result<Probe> {
    let head = &bytes[..bytes.len().min(SNIFF_LEN)];
    probe_read(path, &mut std::io::Cursor::new(bytes), head, opts)
}

/// Probes the content of `reader`, whose first bytes are `head`.
fn probe_read<R: Read + Seek>(
    path: &Path,
    reader: &mut R,
    head: &[u8],
    opts: &ProbeOptions,
) -> Result<Probe> {
    let (mime, kind) = sniff(head);
    let mut probe = Probe {
        mime,
        kind,
        metadata: MediaMetadata::default(),
    };
    if head.is_empty() {
        probe.metadata.problems.push("empty file".to_owned());
        return Ok(probe);
    }
    // A reader that panics on hostile bytes costs this file its metadata, not the batch its
    // thread: the file is kept, with the failure noted.
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        probe_content(path, reader, opts, &mut probe)
    }));
    match read {
        Ok(read) => read.map_err(|e| Error::io(path, e))?,
        Err(panic) => probe.metadata.problems.push(format!(
            "its {} metadata could not be read: the reader failed ({})",
            probe.kind.as_str(),
            panic_message(&panic)
        )),
    }
    if let Some(problem) = extension::mismatch(path, &probe.mime, probe.kind) {
        probe.metadata.problems.push(problem);
    }
    Ok(probe)
}

/// What a caught panic said, when it said it as text.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

/// Reads what the file's kind carries into `probe`. IO errors are returned; content problems
/// are noted.
fn probe_content<R: Read + Seek>(
    path: &Path,
    file: &mut R,
    opts: &ProbeOptions,
    probe: &mut Probe,
) -> io::Result<()> {
    match probe.kind {
        MediaKind::Image => picture::probe(file, &probe.mime, &mut probe.metadata),
        MediaKind::Audio | MediaKind::Video => {
            av::probe(path, opts, probe);
            Ok(())
        }
        MediaKind::Document if probe.mime == "application/pdf" => {
            pdf::probe(file, opts.max_pdf_bytes, &mut probe.metadata)
        }
        MediaKind::Document | MediaKind::Other => Ok(()),
    }
}

/// Opens `path` for reading, refusing anything but a regular file: reading a FIFO or a device
/// could block forever or never end.
fn open_regular(path: &Path) -> Result<File> {
    match open_file_only(path).map_err(|e| Error::io(path, e))? {
        Ok(file) => Ok(file),
        Err(what) => Err(Error::NotAFile {
            path: path.to_path_buf(),
            what,
        }),
    }
}

/// Opens `path` for reading without waiting (opening a FIFO for reading waits for a writer, so
/// it is opened non-blocking), and keeps it only if it is a regular file; else says what it is.
/// (For a regular file on an ordinary file system, reads are unchanged.)
pub(crate) fn open_file_only(path: &Path) -> io::Result<std::result::Result<File, &'static str>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    Ok(if meta.is_dir() {
        Err("is a directory")
    } else if !meta.is_file() {
        Err("not a regular file")
    } else {
        Ok(file)
    })
}

fn read_head(file: &mut File) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_LEN);
    file.by_ref()
        .take(SNIFF_LEN as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The file's name for problem messages: problems are stored with the asset, so they name the
/// file as its owner knows it, not the directory it was probed in.
fn file_label(path: &Path) -> String {
    path.file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod panic_tests {
    #[test]
    fn panic_messages_are_read_whatever_their_type() {
        let caught = std::panic::catch_unwind(|| panic!("bad header {}", 7)).unwrap_err();
        assert_eq!(super::panic_message(&*caught), "bad header 7");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(5u8)).unwrap_err();
        assert_eq!(super::panic_message(&*caught), "no message");
    }
}
