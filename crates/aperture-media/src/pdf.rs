//! PDFs: the page count, and whether the pages carry text (or need OCR).

use std::io::{self, Read, Seek, SeekFrom};
use std::panic::{self, AssertUnwindSafe};

use aperture_core::MediaMetadata;
use lopdf::content::{Content, Operation};
use lopdf::xref::XrefRecovery;
use lopdf::{Dictionary, Document, Object, ObjectId};

use crate::pdf_objects::{deref_dict, page_resources};

/// Text on the first pages is enough to know a document has a text layer; scanned books with a
/// typed title page are the rare exception this accepts.
const TEXT_SCAN_PAGES: usize = 50;
/// Form XObjects looked into per page: text drawn through forms is common, hundreds of forms
/// per page are not.
const MAX_FORMS_PER_PAGE: usize = 32;
/// How deep forms inside forms are followed.
const MAX_FORM_DEPTH: usize = 4;
/// A bound on one decompressed content stream (decompression bombs).
const MAX_CONTENT_BYTES: usize = 16 * 1024 * 1024;

/// What parsing found.
#[derive(Debug, PartialEq)]
struct PdfInfo {
    pages: u32,
    has_text_layer: bool,
    xref_rebuilt: bool,
}

/// Reads the page count and text layer of the PDF in `file` into `meta`, unless the file is
/// larger than `max_bytes`.
pub(crate) fn probe<R: Read + Seek>(
    file: &mut R,
    max_bytes: u64,
    meta: &mut MediaMetadata,
) -> io::Result<()> {
    let size = file.seek(SeekFrom::End(0))?;
    if size > max_bytes {
        meta.problems.push(format!(
            "pdf not parsed: {size} bytes is over the {max_bytes}-byte limit, page count unknown"
        ));
        return Ok(());
    }
    file.seek(SeekFrom::Start(0))?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(max_bytes).read_to_end(&mut bytes)?;
    match parse(&bytes) {
        Ok(info) => {
            meta.pages = Some(info.pages);
            meta.has_text_layer = Some(info.has_text_layer);
            if info.xref_rebuilt {
                meta.problems.push(
                    "damaged pdf: cross-reference table rebuilt by scanning the file".to_owned(),
                );
            }
        }
        Err(e) => meta.problems.push(format!("cannot parse pdf: {e}")),
    }
    Ok(())
}

/// Parses a PDF held in memory. A panic in the parser on hostile input is an error here, not a
/// crash of the ingest.
fn parse(bytes: &[u8]) -> Result<PdfInfo, String> {
    panic::catch_unwind(AssertUnwindSafe(|| parse_unguarded(bytes)))
        .unwrap_or_else(|_| Err("the pdf parser failed on this file".to_owned()))
}

fn parse_unguarded(bytes: &[u8]) -> Result<PdfInfo, String> {
    let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
    doc.catalog()
        .map_err(|e| format!("no document catalog: {e}"))?;
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err("no pages found".to_owned());
    }
    let has_text_layer = pages
        .values()
        .take(TEXT_SCAN_PAGES)
        .any(|&page| page_has_text(&doc, page));
    Ok(PdfInfo {
        pages: u32::try_from(pages.len()).unwrap_or(u32::MAX),
        has_text_layer,
        xref_rebuilt: matches!(doc.xref_recovery, Some(XrefRecovery::Reconstructed)),
    })
}

/// Whether the page shows text: it declares fonts, and its content, or a form it draws, has a
/// text-showing operator with a non-empty string. Forms inside forms are followed a few levels
/// deep: imposition tools such as pdfjam wrap every original page in two or three of them.
fn page_has_text(doc: &Document, page: ObjectId) -> bool {
    let page_has_fonts = doc
        .get_page_fonts(page)
        .is_ok_and(|fonts| !fonts.is_empty());
    if page_has_fonts {
        let content = doc.get_page_content_with_limit(page, MAX_CONTENT_BYTES);
        if content.is_ok_and(|content| shows_text(&content)) {
            return true;
        }
    }
    let mut queue: Vec<(&Dictionary, usize, bool)> = page_resources(doc, page)
        .into_iter()
        .map(|r| (r, 0, page_has_fonts))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut budget = MAX_FORMS_PER_PAGE;
    while let Some((resources, depth, inherited_fonts)) = queue.pop() {
        for (id, form) in forms_in(doc, resources) {
            if budget == 0 {
                return false;
            }
            budget -= 1;
            if id.is_some_and(|id| !seen.insert(id)) {
                continue; // a form drawn twice, or a cycle
            }
            let form_resources = form
                .dict
                .get(b"Resources")
                .ok()
                .and_then(|r| deref_dict(doc, r));
            let has_fonts = inherited_fonts
                || form_resources
                    .and_then(|r| r.get(b"Font").ok())
                    .and_then(|f| deref_dict(doc, f))
                    .is_some_and(|fonts| !fonts.is_empty());
            if has_fonts
                && form
                    .decompressed_content_with_limit(MAX_CONTENT_BYTES)
                    .is_ok_and(|content| shows_text(&content))
            {
                return true;
            }
            if let Some(inner) = form_resources
                && depth + 1 < MAX_FORM_DEPTH
            {
                queue.push((inner, depth + 1, has_fonts));
            }
        }
    }
    false
}

/// The form XObjects named in a resource dictionary, with their object ids when referenced.
fn forms_in<'a>(
    doc: &'a Document,
    resources: &'a Dictionary,
) -> Vec<(Option<ObjectId>, &'a lopdf::Stream)> {
    let Some(xobjects) = resources
        .get(b"XObject")
        .ok()
        .and_then(|x| deref_dict(doc, x))
    else {
        return Vec::new();
    };
    xobjects
        .iter()
        .filter_map(|(_, x)| {
            let (id, object) = doc.dereference(x).ok()?;
            let stream = object.as_stream().ok()?;
            let is_form =
                stream.dict.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Form");
            is_form.then_some((id, stream))
        })
        .collect()
}

/// Whether a content stream shows any text. Stops at the first text operator, or at the first
/// thing it cannot parse.
fn shows_text(content: &[u8]) -> bool {
    Content::decode_iter(content)
        .map_while(Result::ok)
        .any(|op| shows_text_op(&op))
}

/// `Tj`, `'`, `"` show a string, `TJ` an array of strings and spacings.
fn shows_text_op(op: &Operation) -> bool {
    let non_empty = |o: &Object| matches!(o, Object::String(s, _) if !s.is_empty());
    match op.operator.as_str() {
        "Tj" | "'" | "\"" => op.operands.last().is_some_and(non_empty),
        "TJ" => op
            .operands
            .first()
            .and_then(|o| o.as_array().ok())
            .is_some_and(|items| items.iter().any(non_empty)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_operators() {
        assert!(shows_text(b"BT /F1 24 Tf 100 700 Td (Hello) Tj ET"));
        assert!(shows_text(b"BT /F1 12 Tf [(A) -120 (B)] TJ ET"));
        assert!(shows_text(b"BT /F1 12 Tf 1 2 (quoted) \" ET"));
        assert!(shows_text(b"BT /F1 12 Tf <48656c6c6f> Tj ET"));
        assert!(!shows_text(b"BT /F1 12 Tf () Tj ET"));
        assert!(!shows_text(b"0 0 1 rg 10 10 100 100 re f"));
        // A string that merely spells an operator's name shows nothing.
        assert!(!shows_text(b"BT (Tj) 0 Tw ET"));
        assert!(!shows_text(b""));
    }

    #[test]
    fn garbage_is_an_error() {
        let err = parse(b"%PDF-1.4\n\x00\x01garbage garbage garbage").unwrap_err();
        assert!(!err.is_empty());
    }
}
