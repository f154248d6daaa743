//! The text a PDF page shows: its content stream and the forms it draws, walked with bounds
//! on the work one page or document may take (hostile files).

use std::collections::{HashMap, HashSet};

use lopdf::content::Content;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::pdf_objects::{deref_dict, page_resources};

/// A bound on one page's decompressed content (decompression bombs), as the PDF probe has.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;
/// Forms followed from one page, and how deep forms inside forms are followed: imposition
/// tools (pdfjam, pdfpages) draw every original page as a form inside a form or two.
const MAX_FORMS_PER_PAGE: usize = 64;
const MAX_FORM_DEPTH: usize = 6;
/// A gap in a `TJ` array wider than this, in thousandths of the font size, is a word space:
/// TeX writes word spaces as about -333 and kerning as a few tens.
const TJ_SPACE: f32 = 150.0;

/// The text a page shows, in content order, and whether some of it could not be read.
/// `work_left`: the content bytes the document may still have read; this page's are taken
/// from it.
///
/// lopdf's own `extract_text` reads the page's content stream only; this also follows the
/// forms it draws (`Do`), which is where imposed and merged documents keep all their text. Line
/// breaks come from moves to a new line; spaces from moves along the line and from wide gaps in
/// `TJ` arrays. Glyph widths are not consulted, so a producer that places every glyph on its
/// own gets spaces between letters: rare, and still searchable by word prefix.
pub fn page_text(
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
