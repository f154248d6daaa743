//! The text of plain-text and HTML files: telling text from binary, charsets (declared or
//! guessed), markup and entities, and tidy whitespace.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// Whether bytes of unknown type read as text: a byte-order mark, or no NUL, hardly any control
/// characters, and UTF-8 or mostly ASCII. (aperture-media's sniffer judges the same way; it
/// is not a dependency of this crate.)
pub fn looks_like_text(head: &[u8]) -> bool {
    if Encoding::for_bom(head).is_some() {
        return true;
    }
    let controls = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0C | 0x1A | 0x1B))
        .count();
    if head.contains(&0) || controls * 100 > head.len() {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) if e.error_len().is_none() => true,
        Err(_) => head.iter().filter(|b| b.is_ascii()).count() * 10 >= head.len() * 7,
    }
}

/// Decodes text by its byte-order mark, else by the encoding it declares, else as UTF-8 when
/// it is valid, else as Windows-1252: the superset of Latin-1 that browsers read for "latin1",
/// which gives every byte a character. `cut`: the bytes were cut off by a read limit, so a
/// broken last character is dropped rather than shown as U+FFFD.
pub fn decode(bytes: &[u8], cut: bool, declared: Option<&'static Encoding>) -> String {
    let (encoding, body) = match Encoding::for_bom(bytes) {
        Some((encoding, bom)) => (encoding, &bytes[bom..]),
        None => {
            let utf8 = match std::str::from_utf8(bytes) {
                Ok(_) => true,
                Err(e) => cut && e.error_len().is_none(),
            };
            let fallback = if utf8 { UTF_8 } else { WINDOWS_1252 };
            (declared.unwrap_or(fallback), bytes)
        }
    };
    let mut text = encoding.decode_without_bom_handling(body).0.into_owned();
    if cut && text.ends_with('\u{FFFD}') {
        text.pop();
    }
    text
}

/// Cuts `text` to at most `max` bytes, at a character boundary; whether it cut.
pub fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    text.truncate(text.floor_char_boundary(max));
    true
}

/// Unix line ends, no control characters but tab and newline (a form feed ends a line), no
/// white space at line ends, at most one empty line in a row, nothing blank around the text.
pub fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_lines = 0;
    let mut line = String::new();
    for raw in text.replace("\r\n", "\n").split(['\n', '\r', '\x0C']) {
        line.clear();
        line.extend(raw.chars().filter(|&c| c == '\t' || !c.is_control()));
        let line = line.trim_end();
        if line.is_empty() {
            blank_lines += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines > 0 { "\n\n" } else { "\n" });
        }
        blank_lines = 0;
        out.push_str(line);
    }
    out
}

/// The text of an HTML page as a reader sees it: no tags, comments, scripts or styles, the
/// common character references decoded, white space collapsed, and block elements (paragraphs,
/// headings, list items, table rows, line breaks) on lines of their own.
///
/// A small hand-written pass rather than an HTML parser (html5ever and what builds on it are
/// heavy): text for search and language detection forgives what it gets wrong on broken
/// markup.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(at) = rest.find(['<', '&']) {
        push_collapsed(&mut out, &rest[..at]);
        rest = &rest[at..];
        if rest.starts_with('&') {
            match reference(rest) {
                Some((c, len)) => {
                    push_collapsed(&mut out, c.encode_utf8(&mut [0; 4]));
                    rest = &rest[len..];
                }
                None => {
                    push_collapsed(&mut out, "&");
                    rest = &rest[1..];
                }
            }
        } else if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
        } else if rest.starts_with("<!") || rest.starts_with("<?") {
            rest = rest.find('>').map_or("", |end| &rest[end + 1..]);
        } else if let Some((name, closing, after)) = tag(rest) {
            rest = after;
            match name.as_str() {
                "script" | "style" | "template" if !closing => rest = skip_raw(rest, &name),
                "td" | "th" => push_collapsed(&mut out, " "),
                _ if is_block(&name) => {
                    if out.ends_with(' ') {
                        out.pop();
                    }
                    if !(out.is_empty() || out.ends_with('\n')) {
                        out.push('\n');
                    }
                }
                _ => {}
            }
        } else {
            push_collapsed(&mut out, "<");
            rest = &rest[1..];
        }
    }
    push_collapsed(&mut out, rest);
    tidy(&out)
}

/// Appends text with each run of white space as one space, none at the start of a line.
fn push_collapsed(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_whitespace() {
            if !(out.is_empty() || out.ends_with([' ', '\n'])) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// A tag at the start of `s` (`<p class="x">`, `</div>`): its name in lower case, whether it
/// closes, and what follows it. `None` when the `<` starts no tag, as in `a < b`.
fn tag(s: &str) -> Option<(String, bool, &str)> {
    let body = s.strip_prefix('<')?;
    let (closing, body) = match body.strip_prefix('/') {
        Some(body) => (true, body),
        None => (false, body),
    };
    if !body.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let name_end = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    let name = body[..name_end].to_ascii_lowercase();
    // Attributes: a `>` inside a quoted value does not end the tag.
    let mut quote = None;
    let mut after_equals = false;
    for (i, c) in body[name_end..].char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '>' => return Some((name, closing, &body[name_end + i + 1..])),
            None if after_equals && (c == '"' || c == '\'') => quote = Some(c),
            None => {}
        }
        if !c.is_whitespace() {
            after_equals = quote.is_none() && c == '=';
        }
    }
    // Unterminated: the rest of the page is inside the tag.
    Some((name, closing, ""))
}

/// Skips the raw content of a `<script>` or `<style>` element, up to and including its end tag.
fn skip_raw<'a>(rest: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(i) = rest[from..].find("</") {
        let at = from + i;
        let after = rest.as_bytes()[at + 2..].get(..name.len());
        if after.is_some_and(|a| a.eq_ignore_ascii_case(name.as_bytes())) {
            return tag(&rest[at..]).map_or("", |(_, _, after)| after);
        }
        from = at + 2;
    }
    ""
}

fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "br"
            | "caption"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "option"
            | "p"
            | "pre"
            | "section"
            | "table"
            | "title"
            | "tr"
            | "ul"
    )
}

/// The names of U+00A0 to U+00FF, in order: HTML 4's Latin-1 entities.
const LATIN1_ENTITIES: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// The other entities that turn up in real pages.
const OTHER_ENTITIES: [(&str, char); 32] = [
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("OElig", 'Œ'),
    ("oelig", 'œ'),
    ("Scaron", 'Š'),
    ("scaron", 'š'),
    ("Yuml", 'Ÿ'),
    ("fnof", 'ƒ'),
    ("circ", 'ˆ'),
    ("tilde", '˜'),
    ("ensp", '\u{2002}'),
    ("emsp", '\u{2003}'),
    ("thinsp", '\u{2009}'),
    ("zwnj", '\u{200C}'),
    ("zwj", '\u{200D}'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("dagger", '†'),
    ("bull", '•'),
    ("hellip", '…'),
    ("permil", '‰'),
    ("euro", '€'),
    ("trade", '™'),
];

/// The character reference at the start of `s` (`&amp;`, `&eacute;`, `&#233;`, `&#xE9;`) and
/// its length. `None` when the `&` starts none this knows, as in `AT&T`: it stays as written.
fn reference(s: &str) -> Option<(char, usize)> {
    let body = s.strip_prefix('&')?;
    if let Some(number) = body.strip_prefix('#') {
        let (radix, digits) = match number.strip_prefix(['x', 'X']) {
            Some(hex) => (16, hex),
            None => (10, number),
        };
        let len = digits
            .find(|c: char| !c.is_digit(radix))
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        let code = u32::from_str_radix(&digits[..len], radix).unwrap_or(u32::MAX);
        let c = match code {
            // Windows-1252 code points written as numbers, which browsers read as such.
            0x80..=0x9F => WINDOWS_1252
                .decode_without_bom_handling(&[code as u8])
                .0
                .chars()
                .next(),
            0 => None,
            _ => char::from_u32(code),
        };
        let semicolon = usize::from(digits[len..].starts_with(';'));
        let used = 1 + (number.len() - digits.len()) + len + semicolon;
        return Some((c.unwrap_or('\u{FFFD}'), 1 + used));
    }
    // Entity names are short: a `;` further on belongs to something else.
    let end = body.bytes().take(32).position(|b| b == b';')?;
    let name = &body[..end];
    let c = LATIN1_ENTITIES
        .iter()
        .position(|&n| n == name)
        .and_then(|i| char::from_u32(0xA0 + i as u32))
        .or_else(|| {
            OTHER_ENTITIES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, c)| c)
        })?;
    Some((c, end + 2))
}

/// The encoding an HTML page declares in its first kilobyte (`<meta charset="…">`, or
/// `charset=…` in a `content` attribute). A page that says UTF-16 without a byte-order mark is
/// read as UTF-8, as browsers do.
pub fn declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let at = head
        .windows(7)
        .position(|w| w.eq_ignore_ascii_case(b"charset"))?;
    let rest = head[at + 7..].trim_ascii_start().strip_prefix(b"=")?;
    let rest = rest.trim_ascii_start();
    let rest = rest.strip_prefix(&[b'"'][..]).unwrap_or(rest);
    let rest = rest.strip_prefix(&[b'\''][..]).unwrap_or(rest);
    let len = rest
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')))
        .unwrap_or(rest.len());
    Encoding::for_label(&rest[..len]).map(Encoding::output_encoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_its_markup_and_keeps_its_text() {
        let html = r#"<!DOCTYPE html><html><head><title>Caf&eacute; &amp; bar</title>
            <style>p { color: red }</style><script>if (a < b && c) { alert("</p>"); }</script>
            </head><body><!-- a <b>comment</b> --><h1>Menu</h1>
            <p class="x" data-y='a > b'>Tea&nbsp;&ndash;&#160;2&#8364; &#x263A; AT&T &bogus;</p>
            <table><tr><td>one</td><td>two</td></tr></table>
            <p>a &lt; b<br>next line, <b>bold</b>ly</p><SCRIPT type="x">gone()</SCRIPT ></body></html>"#;
        assert_eq!(
            html_to_text(html),
            "Café & bar\nMenu\nTea – 2€ ☺ AT&T &bogus;\none two\na < b\nnext line, boldly"
        );
    }

    #[test]
    fn broken_html_ends_gracefully() {
        assert_eq!(html_to_text("text <p unterminated"), "text");
        assert_eq!(html_to_text("<script>never ends"), "");
        assert_eq!(html_to_text("<!-- never ends"), "");
        assert_eq!(html_to_text("1 < 2 &"), "1 < 2 &");
        assert_eq!(
            html_to_text("&#0; &#x110000; &#99999999999;"),
            "\u{FFFD} \u{FFFD} \u{FFFD}"
        );
        assert_eq!(html_to_text("&#150;&#65"), "–A");
    }

    #[test]
    fn encodings() {
        assert_eq!(decode("naïve".as_bytes(), false, None), "naïve");
        // Latin-1 bytes are not UTF-8: read as Windows-1252.
        assert_eq!(
            decode(b"caf\xE9 cr\xE8me \x93q\x94", false, None),
            "café crème “q”"
        );
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("привет".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16, false, None), "привет");
        // A character cut in half by the read limit is dropped.
        let cut = &"añ".as_bytes()[..2];
        assert_eq!(decode(cut, true, None), "a");
        assert_eq!(decode(cut, false, None), "aÃ");
        assert_eq!(
            declared_charset(
                b"<meta http-equiv=content-type content='text/html; charset=ISO-8859-1'>"
            ),
            Some(WINDOWS_1252)
        );
        assert_eq!(declared_charset(b"<meta charset=\"utf-16\">"), Some(UTF_8));
        assert_eq!(declared_charset(b"<html>"), None);
    }

    #[test]
    fn tidy_text() {
        assert_eq!(
            tidy("\r\n  a  \r\nb\x00c\x0C\n\n\n\nd\t \n"),
            "  a\nbc\n\nd"
        );
        assert_eq!(tidy("a \x00\n\x07\n"), "a");
        let mut s = "añb".to_owned();
        assert!(truncate(&mut s, 2));
        assert_eq!(s, "a");
        assert!(!truncate(&mut s, 2));
    }

    #[test]
    fn text_is_told_from_binary() {
        assert!(looks_like_text(b"plain words\n"));
        assert!(looks_like_text(b""));
        assert!(looks_like_text(b"caf\xE9"));
        assert!(!looks_like_text(b"PK\x03\x04\x00\x00binary"));
        assert!(!looks_like_text(&[0x01, 0x02, 0x03, 0xFF, 0xFE, 0x80]));
    }
}
