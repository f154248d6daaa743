//! Deciding a file's type from its first bytes.

use aperture_core::MediaKind;
use infer::MatcherType;

/// How many bytes of a file's start [`sniff`] looks at; callers pass up to this many.
pub const SNIFF_LEN: usize = 64 * 1024;

/// Sniffs the MIME type and kind from the first bytes of a file (callers pass up to
/// [`SNIFF_LEN`] bytes). Never fails: unknown binary data is `application/octet-stream`, kind
/// [`MediaKind::Other`]; no bytes at all is `application/x-empty`.
pub fn sniff(head: &[u8]) -> (String, MediaKind) {
    if head.is_empty() {
        return ("application/x-empty".to_owned(), MediaKind::Other);
    }
    match infer::get(head) {
        // infer's text matchers are loose (`<b ` is HTML to them); text is ours to judge.
        Some(found) if found.matcher_type() != MatcherType::Text => {
            let mime = found.mime_type();
            (mime.to_owned(), kind_of(found.matcher_type(), mime))
        }
        found => sniff_text(head, found.map(|t| t.mime_type())),
    }
}

/// Classifies bytes infer found no binary format in: HTML, other text, or unknown binary.
/// `infer_text` is what infer's text matchers said, if anything.
fn sniff_text(head: &[u8], infer_text: Option<&str>) -> (String, MediaKind) {
    if !looks_like_text(head) {
        return ("application/octet-stream".to_owned(), MediaKind::Other);
    }
    let mime = if is_html(head) {
        "text/html"
    } else {
        // infer's XML and script matchers are strict; its HTML matcher is what we overrule.
        infer_text
            .filter(|mime| matches!(*mime, "text/xml" | "text/x-shellscript"))
            .unwrap_or("text/plain")
    };
    (mime.to_owned(), MediaKind::Document)
}

fn kind_of(matcher: MatcherType, mime: &str) -> MediaKind {
    match (matcher, mime) {
        (_, "image/vnd.djvu") => MediaKind::Document,
        (_, "image/vnd.dwg") => MediaKind::Other,
        (MatcherType::Image, _) => MediaKind::Image,
        (MatcherType::Video, _) => MediaKind::Video,
        (MatcherType::Audio, _) => MediaKind::Audio,
        (MatcherType::Book | MatcherType::Doc | MatcherType::Text, _) => MediaKind::Document,
        (_, "application/pdf" | "application/rtf" | "application/postscript") => {
            MediaKind::Document
        }
        (_, "application/epub+zip") => MediaKind::Document,
        _ => MediaKind::Other,
    }
}

/// Whether the bytes read as text: UTF-16 with a byte-order mark, or UTF-8 (a character cut
/// off by the end of the head is fine) or an 8-bit legacy encoding, mostly ASCII, with no NUL
/// and hardly any control characters. Binary data has plenty of both.
fn looks_like_text(head: &[u8]) -> bool {
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return true;
    }
    if head.contains(&0) || !few_controls(head) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // `error_len() == None`: the input ended inside a character, as a cut head may.
        Err(e) if e.error_len().is_none() => true,
        Err(_) => head.iter().filter(|b| b.is_ascii()).count() * 10 >= head.len() * 7,
    }
}

/// At most one control character in a hundred bytes, not counting the ones text uses.
fn few_controls(head: &[u8]) -> bool {
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A | 0x1B))
        .count();
    controls * 100 <= head.len()
}

/// `<!doctype html` or `<html` first, after an optional byte-order mark and white space.
fn is_html(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(text.len());
    let text = &text[start..];
    [b"<!doctype html".as_slice(), b"<html".as_slice()]
        .iter()
        .any(|prefix| {
            text.get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(head: &[u8], mime: &str, kind: MediaKind) {
        assert_eq!(sniff(head), (mime.to_owned(), kind), "head {head:02x?}");
    }

    #[test]
    fn images() {
        check(
            b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
            "image/jpeg",
            MediaKind::Image,
        );
        check(
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02",
            "image/png",
            MediaKind::Image,
        );
        check(
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00",
            "image/gif",
            MediaKind::Image,
        );
        check(
            b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00",
            "image/webp",
            MediaKind::Image,
        );
        check(
            b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
            "image/heif",
            MediaKind::Image,
        );
    }

    #[test]
    fn audio_and_video() {
        check(
            b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
            "video/mp4",
            MediaKind::Video,
        );
        check(
            b"ID3\x04\x00\x00\x00\x00\x00\x23TSSE\x00\x00\x00\x0f",
            "audio/mpeg",
            MediaKind::Audio,
        );
        check(
            b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00",
            "audio/x-wav",
            MediaKind::Audio,
        );
    }

    #[test]
    fn documents() {
        check(
            b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj",
            "application/pdf",
            MediaKind::Document,
        );
        check(
            b"{\\rtf1\\ansi hello}",
            "application/rtf",
            MediaKind::Document,
        );
    }

    #[test]
    fn zip_is_other() {
        check(
            b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!\x00notes/a.txt",
            "application/zip",
            MediaKind::Other,
        );
    }

    #[test]
    fn plain_text() {
        check(b"hello world\n", "text/plain", MediaKind::Document);
        check(
            "café au lait\n".as_bytes(),
            "text/plain",
            MediaKind::Document,
        );
        // A character cut in half by the end of the head is still text.
        let cut = &"naïve".as_bytes()[..3];
        check(cut, "text/plain", MediaKind::Document);
        // Markdown starting with a comment is not HTML, whatever infer thinks.
        check(
            b"<!-- note -->\n# Title\n",
            "text/plain",
            MediaKind::Document,
        );
        check(b"<b> bold</b>", "text/plain", MediaKind::Document);
        // Latin-1.
        check(b"caf\xE9 cr\xE8me\n", "text/plain", MediaKind::Document);
        check(b"\xFF\xFEh\x00i\x00", "text/plain", MediaKind::Document);
    }

    #[test]
    fn html() {
        check(
            b"<!DOCTYPE html>\n<html><body>hi</body></html>",
            "text/html",
            MediaKind::Document,
        );
        check(
            b"\xEF\xBB\xBF  \n<HTML lang=en>",
            "text/html",
            MediaKind::Document,
        );
        check(b"<!doctype html>", "text/html", MediaKind::Document);
    }

    #[test]
    fn empty() {
        check(b"", "application/x-empty", MediaKind::Other);
    }

    #[test]
    fn random_bytes_are_binary() {
        // xorshift: deterministic noise.
        let mut x: u32 = 0x9E37_79B9;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x.to_le_bytes()[0]
            })
            .collect();
        check(&noise, "application/octet-stream", MediaKind::Other);
        check(
            b"\x01\x02\x03\x00\xFF\xFE",
            "application/octet-stream",
            MediaKind::Other,
        );
        check(
            b"\x01\x02\x03\x04",
            "application/octet-stream",
            MediaKind::Other,
        );
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_get_a_type(head in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let (mime, kind) = sniff(&head);
            proptest::prop_assert!(mime.contains('/'));
            if kind == MediaKind::Document && mime.starts_with("text/") {
                proptest::prop_assert!(!head.contains(&0) || head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]));
            }
        }
    }
}
