//! The text of documents: the text layer of PDFs page by page, plain text, and HTML without its
//! markup. Every text carries the language [`crate::language`] finds in it.
//!
//! Scans have no text layer: they are declined here and left to OCR.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use aperture_catalog::Asset;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use aperture_media::pdf_objects::{deref_dict, page_resources};

use crate::{Analyzer, Error, Input, Output, language};

/// A bound on one page's decompressed content (decompression bombs), as the PDF probe in
/// aperture-media has.
const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;
/// A bound on the content read from one document, pages and forms together: text-heavy books
/// have tens of kilobytes a page, and a crafted file that draws the same large form on every
/// page stops here rather than keeping a worker busy for hours.
const MAX_DOCUMENT_CONTENT_BYTES: usize = 512 * 1024 * 1024;
/// Forms followed from one page, and how deep forms inside forms are followed: imposition
/// tools (pdfjam, pdfpages) draw every original page as a form inside a form or two.
const MAX_FORMS_PER_PAGE: usize = 64;
const MAX_FORM_DEPTH: usize = 6;
/// A gap in a `TJ` array wider than this, in thousandths of the font size, is a word space:
/// TeX writes word spaces as about -333 and kerning as a few tens.
const TJ_SPACE: f32 = 150.0;
/// HTML is read up to this many times the text limit: markup outweighs the text in it.
const HTML_BYTES_PER_TEXT_BYTE: usize = 4;
/// How much of a file of unknown type is looked at to decide whether it is text.
const SNIFF_BYTES: usize = 64 * 1024;

/// Extracts the text of PDFs (one insight per page with text), plain text and HTML (one
/// insight for the whole), each tagged with its language.
pub struct Text {
    /// Larger PDFs are refused: the parser holds the whole file and its objects in memory.
    pub max_pdf_bytes: u64,
    /// Pages after this many are not read.
    pub max_pages: u32,
    /// Text kept per asset, in bytes of UTF-8. The rest is dropped, and the insight says so.
    pub max_text_bytes: usize,
}

impl Default for Text {
    fn default() -> Self {
        Self {
            max_pdf_bytes: 256 * 1024 * 1024,
            max_pages: 2_000,
            max_text_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Text found in one place of an asset.
struct Found {
    place: Place,
    text: String,
    /// Why the text is incomplete, when it is.
    truncated: Option<String>,
}

enum Format {
    Pdf,
    Html,
    Plain,
}

/// What the `text` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "text",
    version: "1",
    kinds: &[MediaKind::Document, MediaKind::Other],
    priority: 60,
    reads: &[],
    produces: &[InsightValue::TEXT],
};

impl Analyzer for Text {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn version(&self) -> String {
        format!("{}-{}", SPEC.version, language::DETECTOR)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let asset = input.asset;
        let found = match format(asset, input.path)? {
            Format::Pdf => self.pdf(input)?,
            Format::Html => vec![self.whole(input, true)?],
            Format::Plain => vec![self.whole(input, false)?],
        };
        Ok(Output {
            insights: found.into_iter().map(|f| self.insight(asset, f)).collect(),
            derived: Vec::new(),
        })
    }
}

impl Text {
    /// The text layer, page by page: pages without text are left out.
    fn pdf(&self, input: &Input<'_>) -> Result<Vec<Found>, Error> {
        let name = &input.asset.name;
        let size = std::fs::metadata(input.path)
            .map_err(|e| cannot_read(name, e))?
            .len();
        if size > self.max_pdf_bytes {
            return Err(Error::BadInput {
                reason: format!(
                    "cannot read pdf {name}: {} MiB is over the {} MiB limit",
                    size >> 20,
                    self.max_pdf_bytes >> 20
                ),
            });
        }
        let bytes = std::fs::read(input.path).map_err(|e| cannot_read(name, e))?;
        // lopdf can panic on hostile input: that is a damaged file, not a crashed worker.
        let pages = panic::catch_unwind(AssertUnwindSafe(|| self.pdf_pages(&bytes, name)))
            .unwrap_or_else(|_| Err("the pdf parser failed on this file".to_owned()))
            .map_err(|e| Error::BadInput {
                reason: format!("cannot read pdf {name}: {e}"),
            })?;
        if pages.is_empty() {
            return Err(Error::NotApplicable {
                reason: format!("no text layer in {name}: needs OCR"),
            });
        }
        Ok(pages)
    }

    fn pdf_pages(&self, bytes: &[u8], name: &str) -> Result<Vec<Found>, String> {
        let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
        let pages = doc.get_pages();
        if pages.is_empty() {
            return Err("no pages found".to_owned());
        }
        let mut found: Vec<Found> = Vec::new();
        let mut budget = self.max_text_bytes;
        let mut work_left = MAX_DOCUMENT_CONTENT_BYTES;
        let mut unreadable = 0usize;
        let text_note = || {
            format!(
                "only the first {} MiB of text are kept",
                self.max_text_bytes >> 20
            )
        };
        for (&page, &id) in pages.iter().take(self.max_pages as usize) {
            if work_left == 0 {
                if let Some(last) = found.last_mut() {
                    last.truncated = Some(format!(
                        "pages after {} are not read: over {} MiB of content",
                        last_page(last),
                        MAX_DOCUMENT_CONTENT_BYTES >> 20
                    ));
                }
                break;
            }
            // The limit bounds the memory one page can take; `truncate` below cuts exactly.
            let (raw, failed) = page_text(&doc, id, budget.saturating_add(1), &mut work_left);
            unreadable += usize::from(failed);
            let mut text = tidy(&raw);
            if text.is_empty() {
                continue;
            }
            let cut = truncate(&mut text, budget);
            if text.is_empty() {
                // The budget ran out exactly at the end of the page before.
                if let Some(last) = found.last_mut() {
                    last.truncated = Some(text_note());
                }
                break;
            }
            budget -= text.len();
            found.push(Found {
                place: Place::Page { page, rect: None },
                text,
                truncated: cut.then(text_note),
            });
            if cut {
                break;
            }
        }
        if unreadable > 0 {
            tracing::debug!(
                asset = name,
                pages = unreadable,
                "pdf pages partly unreadable"
            );
        }
        if pages.len() > self.max_pages as usize
            && let Some(last) = found.last_mut()
            && last.truncated.is_none()
        {
            last.truncated = Some(format!(
                "only the first {} of {} pages are read",
                self.max_pages,
                pages.len()
            ));
        }
        Ok(found)
    }

    /// Plain text or HTML, as one text.
    fn whole(&self, input: &Input<'_>, html: bool) -> Result<Found, Error> {
        let name = &input.asset.name;
        let limit = if html {
            self.max_text_bytes.saturating_mul(HTML_BYTES_PER_TEXT_BYTE)
        } else {
            self.max_text_bytes
        };
        let (bytes, more) = read_prefix(input.path, limit).map_err(|e| cannot_read(name, e))?;
        let mut text = if html {
            html_to_text(&decode(&bytes, more, declared_charset(&bytes)))
        } else {
            tidy(&decode(&bytes, more, None))
        };
        let cut = truncate(&mut text, self.max_text_bytes) || more;
        if text.is_empty() {
            return Err(Error::NotApplicable {
                reason: format!("no text in {name}"),
            });
        }
        Ok(Found {
            place: Place::Whole,
            text,
            truncated: cut
                .then(|| format!("only the first {} MiB are kept", self.max_text_bytes >> 20)),
        })
    }

    fn insight(&self, asset: &Asset, found: Found) -> Insight {
        let language = language::detect(&found.text).map(|(code, _)| code);
        let chars = found.text.chars().count();
        let value = value::Text {
            text: found.text,
            chars: chars as u64,
            truncated: found.truncated.is_some(),
            note: found.truncated,
        };
        Insight {
            asset: asset.id,
            analyzer: self.name().into(),
            analyzer_version: self.version(),
            model: None,
            model_version: None,
            value: value.into(),
            confidence: None,
            language,
            place: found.place,
            created_at: UnixMillis::now(),
        }
    }
}

fn last_page(found: &Found) -> u32 {
    match found.place {
        Place::Page { page, .. } => page,
        _ => 0,
    }
}

/// The text a page shows, in content order, and whether some of it could not be read.
/// `work_left`: the content bytes the document may still have read; this page's are taken
/// from it.
///
/// lopdf's own `extract_text` reads the page's content stream only; this also follows the
/// forms it draws (`Do`), which is where imposed and merged documents keep all their text. Line
/// breaks come from moves to a new line; spaces from moves along the line and from wide gaps in
/// `TJ` arrays. Glyph widths are not consulted, so a producer that places every glyph on its
/// own gets spaces between letters: rare, and still searchable by word prefix.
fn page_text(
    doc: &Document,
    page: ObjectId,
    limit: usize,
    work_left: &mut usize,
) -> (String, bool) {
    let mut walker = PageWalker {
        doc,
        out: String::new(),
        limit,
        work_left: *work_left,
        forms_left: MAX_FORMS_PER_PAGE,
        seen: HashSet::new(),
        failed: false,
    };
    match doc.get_page_content_with_limit(page, MAX_CONTENT_BYTES) {
        Ok(content) => walker.content(&content, &page_resources(doc, page), 0),
        Err(_) => walker.failed = true,
    }
    *work_left = walker.work_left;
    (walker.out, walker.failed)
}

struct PageWalker<'a> {
    doc: &'a Document,
    out: String,
    /// Stop once this many bytes are out.
    limit: usize,
    /// Content bytes the document may still have read.
    work_left: usize,
    forms_left: usize,
    /// Forms already read: a form drawn twice (a logo on every column) is read once, and a form
    /// that draws itself ends.
    seen: HashSet<ObjectId>,
    failed: bool,
}

impl<'a> PageWalker<'a> {
    /// Reads one content stream. `resources`: its resource dictionaries, nearest first.
    fn content(&mut self, content: &[u8], resources: &[&'a Dictionary], depth: usize) {
        let Some(left) = self.work_left.checked_sub(content.len()) else {
            self.work_left = 0;
            self.failed = true;
            return;
        };
        self.work_left = left;
        let mut fonts: HashMap<Vec<u8>, Option<lopdf::Encoding<'a>>> = HashMap::new();
        let mut font = None;
        let mut at = Position::default();
        for op in Content::decode_iter(content) {
            let Ok(op) = op else {
                self.failed = true;
                return;
            };
            if self.out.len() >= self.limit {
                return;
            }
            let operands = &op.operands;
            let number = |i: usize| operands.get(i).and_then(|o| o.as_float().ok());
            match op.operator.as_str() {
                "BT" => at.begin(),
                "Tf" => {
                    font = operands
                        .first()
                        .and_then(|o| o.as_name().ok())
                        .map(<[u8]>::to_vec);
                    if let Some(name) = &font {
                        fonts
                            .entry(name.clone())
                            .or_insert_with(|| self.font(resources, name));
                    }
                    at.size = number(1).unwrap_or(at.size);
                }
                "TL" => at.leading = number(0).unwrap_or(at.leading),
                "Td" | "TD" => {
                    let dy = number(1).unwrap_or(0.0);
                    if op.operator == "TD" {
                        at.leading = -dy;
                    }
                    self.separate(at.down(dy));
                }
                "Tm" => self.separate(at.set(number(5), number(3))),
                "T*" => self.separate(at.down(-at.leading)),
                "Tj" | "'" | "\"" | "TJ" => {
                    if op.operator != "Tj" && op.operator != "TJ" {
                        self.separate(at.down(-at.leading));
                    }
                    let encoding = font
                        .as_ref()
                        .and_then(|name| fonts.get(name))
                        .and_then(Option::as_ref);
                    let shown = if op.operator == "\"" {
                        operands.get(2)
                    } else {
                        operands.first()
                    };
                    if let Some(encoding) = encoding {
                        self.show(encoding, shown);
                    }
                }
                "Do" => {
                    if let Some(name) = operands.first().and_then(|o| o.as_name().ok()) {
                        self.form(resources, name, depth);
                        at.line_y = f32::NAN;
                    }
                }
                _ => {}
            }
        }
    }

    /// The encoding of the font `name`, from the nearest resources that define it.
    fn font(&self, resources: &[&'a Dictionary], name: &[u8]) -> Option<lopdf::Encoding<'a>> {
        let doc = self.doc;
        let font = resources.iter().find_map(|r| {
            let fonts = deref_dict(doc, r.get(b"Font").ok()?)?;
            deref_dict(doc, fonts.get(name).ok()?)
        })?;
        font.get_font_encoding_with_limit(doc, MAX_CONTENT_BYTES)
            .ok()
    }

    fn separate(&mut self, gap: Gap) {
        match gap {
            Gap::None => {}
            Gap::Space => self.space(),
            Gap::Line => self.newline(),
        }
    }

    fn show(&mut self, encoding: &lopdf::Encoding<'_>, shown: Option<&Object>) {
        match shown {
            Some(Object::String(bytes, _)) => {
                self.failed |= encoding.write_to_string(bytes, &mut self.out).is_err();
            }
            Some(Object::Array(items)) => {
                for item in items {
                    match item {
                        Object::String(..) => self.show(encoding, Some(item)),
                        _ if item.as_float().is_ok_and(|gap| gap < -TJ_SPACE) => self.space(),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }

    /// Reads the form XObject `name` drawn from a stream with `resources`.
    fn form(&mut self, resources: &[&'a Dictionary], name: &[u8], depth: usize) {
        if depth >= MAX_FORM_DEPTH || self.forms_left == 0 {
            return;
        }
        let doc = self.doc;
        let Some((id, form)) = resources.iter().find_map(|r| {
            let xobjects = deref_dict(doc, r.get(b"XObject").ok()?)?;
            let (id, object) = doc.dereference(xobjects.get(name).ok()?).ok()?;
            Some((id, object.as_stream().ok()?))
        }) else {
            return;
        };
        if form.dict.get(b"Subtype").and_then(Object::as_name).ok() != Some(b"Form".as_slice())
            || id.is_some_and(|id| !self.seen.insert(id))
        {
            return;
        }
        self.forms_left -= 1;
        let Ok(content) = form.decompressed_content_with_limit(MAX_CONTENT_BYTES) else {
            self.failed = true;
            return;
        };
        // A form without resources of its own uses those of the stream that draws it.
        let own = form
            .dict
            .get(b"Resources")
            .ok()
            .and_then(|r| deref_dict(doc, r));
        let resources = own.map_or_else(|| resources.to_vec(), |own| vec![own]);
        self.newline();
        self.content(&content, &resources, depth + 1);
        self.newline();
    }

    fn space(&mut self) {
        if !(self.out.is_empty() || self.out.ends_with(char::is_whitespace)) {
            self.out.push(' ');
        }
    }

    fn newline(&mut self) {
        if self.out.ends_with(' ') {
            self.out.pop();
        }
        if !(self.out.is_empty() || self.out.ends_with('\n')) {
            self.out.push('\n');
        }
    }
}

/// Where text is drawn, as far as telling lines apart goes.
struct Position {
    /// The y of the text line matrix in the stream's user space, and of the text last placed.
    y: f32,
    line_y: f32,
    /// The text matrix's vertical scale: moves and the font size are in text space.
    scale: f32,
    size: f32,
    leading: f32,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            y: 0.0,
            line_y: f32::NAN,
            scale: 1.0,
            size: 0.0,
            leading: 0.0,
        }
    }
}

/// What a move of the text position puts between the text before and after it.
enum Gap {
    None,
    Space,
    Line,
}

impl Position {
    /// `BT`: the text matrix starts over.
    fn begin(&mut self) {
        self.y = 0.0;
        self.scale = 1.0;
    }

    /// `Td`, `T*`: a move by `dy` in text space.
    fn down(&mut self, dy: f32) -> Gap {
        self.y += dy * self.scale;
        self.moved()
    }

    /// `Tm`: a new text matrix.
    fn set(&mut self, y: Option<f32>, scale: Option<f32>) -> Gap {
        self.y = y.unwrap_or(self.y);
        self.scale = scale.filter(|&d| d != 0.0).unwrap_or(1.0);
        self.moved()
    }

    /// A move along the line separates words; a move by more than half the font size starts a
    /// new line; a smaller one (a superscript, a Devanagari vowel sign placed apart) separates
    /// nothing.
    fn moved(&mut self) -> Gap {
        let dy = (self.y - self.line_y).abs();
        self.line_y = self.y;
        if dy == 0.0 {
            Gap::Space
        } else if dy <= 0.5 * (self.size * self.scale).abs() {
            Gap::None
        } else {
            // Also the first move, from NaN.
            Gap::Line
        }
    }
}

/// Which reader applies: by the sniffed type, or for a file of unknown type, by whether its
/// start reads as text.
fn format(asset: &Asset, path: &Path) -> Result<Format, Error> {
    let mime = asset.mime.split(';').next().unwrap_or_default().trim();
    match mime {
        "application/pdf" => return Ok(Format::Pdf),
        "text/html" | "application/xhtml+xml" => return Ok(Format::Html),
        _ if mime.starts_with("text/") => return Ok(Format::Plain),
        _ => {}
    }
    if asset.kind == MediaKind::Other {
        let (head, _) = read_prefix(path, SNIFF_BYTES).map_err(|e| cannot_read(&asset.name, e))?;
        if looks_like_text(&head) {
            return Ok(Format::Plain);
        }
    }
    Err(Error::NotApplicable {
        reason: format!("{} is {}: no text is read from it", asset.name, asset.mime),
    })
}

fn cannot_read(name: &str, e: io::Error) -> Error {
    Error::Transient {
        reason: format!("cannot read {name}: {e}"),
    }
}

/// Up to `max` bytes from the start of the file, and whether there was more.
fn read_prefix(path: &Path, max: usize) -> io::Result<(Vec<u8>, bool)> {
    let mut bytes = Vec::new();
    File::open(path)?
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)?;
    let more = bytes.len() > max;
    bytes.truncate(max);
    Ok((bytes, more))
}

/// Whether bytes of unknown type read as text: a byte-order mark, or no NUL, hardly any control
/// characters, and UTF-8 or mostly ASCII. (aperture-media's sniffer judges the same way; it
/// is not a dependency of this crate.)
fn looks_like_text(head: &[u8]) -> bool {
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
fn decode(bytes: &[u8], cut: bool, declared: Option<&'static Encoding>) -> String {
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
fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    text.truncate(text.floor_char_boundary(max));
    true
}

/// Unix line ends, no control characters but tab and newline (a form feed ends a line), no
/// white space at line ends, at most one empty line in a row, nothing blank around the text.
fn tidy(text: &str) -> String {
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
fn html_to_text(html: &str) -> String {
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
fn declared_charset(bytes: &[u8]) -> Option<&'static Encoding> {
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
