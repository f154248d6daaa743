//! The text of documents: the text layer of PDFs page by page, plain text, and HTML without its
//! markup (extracted by `aperture_media::pdf_text` and `aperture_media::text`). Every text
//! carries the language [`crate::language`] finds in it.
//!
//! Scans have no text layer: they are declined here and left to OCR.

use std::fs::File;
use std::io::{self, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;

use aperture_catalog::Asset;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, UnixMillis, value};
use aperture_media::pdf_text::page_text;
use aperture_media::text::{
    declared_charset, decode, html_to_text, looks_like_text, tidy, truncate,
};
use lopdf::Document;

use crate::{Analyzer, Error, Input, Output, language};

/// A bound on the content read from one document, pages and forms together: text-heavy books
/// have tens of kilobytes a page, and a crafted file that draws the same large form on every
/// page stops here rather than keeping a worker busy for hours.
const MAX_DOCUMENT_CONTENT_BYTES: usize = 512 * 1024 * 1024;
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
            derived_files: Vec::new(),
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
