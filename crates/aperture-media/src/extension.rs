//! Checking a file's extension against what its bytes are.
//!
//! Only extensions we know map to an expectation, and only a clear contradiction is reported:
//! synonyms (`.jpeg`/`.jpg`, `.htm`/`.html`), audio in a video container (`.mp4` holding only
//! sound) and any text in a text file pass.

use std::path::Path;

use aperture_core::MediaKind;

/// What content an extension promises.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// One of these exact MIME types.
    Mime(&'static [&'static str]),
    /// Any image.
    Image,
    /// Audio or video: containers hold either, and `.mp4`/`.m4a`/`.mov` are one family.
    AudioVideo,
    /// Any text (`text/*`).
    Text,
    /// An office document, or the ZIP / OLE container it is stored in when its type is not
    /// recognised (encrypted OOXML files are OLE containers).
    Office,
}

fn expected(extension: &str) -> Option<Expect> {
    let expect = match extension {
        "jpg" | "jpeg" | "jpe" | "jfif" => Expect::Mime(&["image/jpeg"]),
        "png" | "apng" => Expect::Mime(&["image/png"]),
        "gif" => Expect::Mime(&["image/gif"]),
        "webp" => Expect::Mime(&["image/webp"]),
        "tif" | "tiff" => Expect::Mime(&["image/tiff"]),
        "bmp" => Expect::Mime(&["image/bmp"]),
        "pdf" => Expect::Mime(&["application/pdf"]),
        "rtf" => Expect::Mime(&["application/rtf"]),
        // Raw formats only where sniffing recognises them (TIFF-based or CR2).
        "heic" | "heif" | "avif" | "cr2" | "nef" | "dng" | "arw" => Expect::Image,
        "mp4" | "m4v" | "mov" | "qt" | "mkv" | "webm" | "avi" | "wmv" | "flv" | "mpg" | "mpeg"
        | "mp3" | "m4a" | "aac" | "wav" | "flac" | "ogg" | "oga" | "ogv" | "opus" | "aif"
        | "aiff" | "wma" => Expect::AudioVideo,
        "txt" | "text" | "md" | "markdown" | "csv" | "tsv" | "log" | "json" | "xml" | "html"
        | "htm" | "xhtml" => Expect::Text,
        "docx" | "xlsx" | "pptx" | "odt" | "ods" | "odp" | "epub" | "doc" | "xls" | "ppt" => {
            Expect::Office
        }
        _ => return None,
    };
    Some(expect)
}

fn matches(expect: Expect, mime: &str, kind: MediaKind) -> bool {
    match expect {
        Expect::Mime(mimes) => mimes.contains(&mime),
        Expect::Image => kind == MediaKind::Image,
        Expect::AudioVideo => matches!(kind, MediaKind::Audio | MediaKind::Video),
        Expect::Text => mime.starts_with("text/"),
        Expect::Office => {
            kind == MediaKind::Document
                || matches!(mime, "application/zip" | "application/x-ole-storage")
        }
    }
}

/// The problem to note when `path`'s extension contradicts the sniffed type, e.g.
/// `extension .jpg does not match content (application/pdf)`.
pub(crate) fn mismatch(path: &Path, mime: &str, kind: MediaKind) -> Option<String> {
    let extension = path.extension()?.to_str()?;
    let expect = expected(&extension.to_ascii_lowercase())?;
    (!matches(expect, mime, kind))
        .then(|| format!("extension .{extension} does not match content ({mime})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, mime: &str, kind: MediaKind) -> Option<String> {
        mismatch(Path::new(name), mime, kind)
    }

    #[test]
    fn synonyms_pass() {
        assert_eq!(check("a.JPEG", "image/jpeg", MediaKind::Image), None);
        assert_eq!(check("a.jpe", "image/jpeg", MediaKind::Image), None);
        assert_eq!(check("a.tif", "image/tiff", MediaKind::Image), None);
        assert_eq!(check("a.htm", "text/html", MediaKind::Document), None);
        assert_eq!(check("a.md", "text/plain", MediaKind::Document), None);
        assert_eq!(check("a.csv", "text/plain", MediaKind::Document), None);
        assert_eq!(check("a.m4a", "video/mp4", MediaKind::Video), None);
        assert_eq!(check("a.mp4", "audio/mp4", MediaKind::Audio), None);
        assert_eq!(check("a.mkv", "video/webm", MediaKind::Video), None);
        assert_eq!(check("a.docx", "application/zip", MediaKind::Other), None);
    }

    #[test]
    fn contradictions_are_reported() {
        assert_eq!(
            check("scan.jpg", "application/pdf", MediaKind::Document).as_deref(),
            Some("extension .jpg does not match content (application/pdf)")
        );
        assert_eq!(
            check("doc.PDF", "image/png", MediaKind::Image).as_deref(),
            Some("extension .PDF does not match content (image/png)")
        );
        assert!(check("clip.mp4", "text/plain", MediaKind::Document).is_some());
        assert!(check("a.png", "image/jpeg", MediaKind::Image).is_some());
        assert!(check("a.txt", "application/octet-stream", MediaKind::Other).is_some());
    }

    #[test]
    fn unknown_or_missing_extensions_pass() {
        assert_eq!(
            check("archive.tar.zst", "application/pdf", MediaKind::Document),
            None
        );
        assert_eq!(check("README", "image/png", MediaKind::Image), None);
        assert_eq!(check(".jpg", "application/pdf", MediaKind::Document), None);
    }
}
