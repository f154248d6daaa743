//! Pages of scanned PDFs as images, rendered by poppler's `pdftoppm` (Debian
//! `poppler-utils`) in a subprocess with a time limit: a hostile PDF can make a renderer spin,
//! and it must not take a worker with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use image::DynamicImage;

use crate::Error;

/// The longest side of a rendering, whatever size the page claims: an A4 page comes out at
/// about 240 dpi (plenty for body text, and the most PP-OCR reads), and a poster-sized or
/// hostile page is scaled down rather than rendered at 30,000 pixels a side.
const SIDE: u32 = 2000;
/// One page that takes longer than this to render is given up.
const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Renderer {
    program: PathBuf,
}

impl Renderer {
    /// `pdftoppm` on PATH, if it is there.
    pub fn find() -> Option<Self> {
        super::tesseract::which("pdftoppm").map(|program| Self { program })
    }

    /// Page `page` (1-based) of the PDF at `path`, for the file `name` in errors.
    pub fn page(&self, path: &Path, page: u32, name: &str) -> Result<DynamicImage, Error> {
        let dir = tempfile::Builder::new()
            .prefix("aperture-page-")
            .tempdir()
            .map_err(|e| Error::Transient {
                reason: format!("cannot make a temporary folder: {e}"),
            })?;
        let prefix = dir.path().join("page");
        let number = page.to_string();
        let mut child = Command::new(&self.program)
            .args(["-f", &number, "-l", &number])
            .args(["-scale-to", &SIDE.to_string()])
            .args(["-png", "-singlefile"])
            .arg(path)
            .arg(&prefix)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Transient {
                reason: format!("cannot run {}: {e}", self.program.display()),
            })?;
        let stderr = super::drain_stderr(&mut child);
        let status = match super::wait_at_most(&mut child, TIMEOUT) {
            Ok(Some(status)) => status,
            Ok(None) => {
                return Err(Error::BadInput {
                    reason: format!(
                        "cannot render page {page} of {name}: gave up after {} s",
                        TIMEOUT.as_secs()
                    ),
                });
            }
            Err(e) => {
                return Err(Error::Transient {
                    reason: format!("pdftoppm: {e}"),
                });
            }
        };
        let png = prefix.with_extension("png");
        let err = stderr.join().unwrap_or_default();
        if !status.success() || !png.is_file() {
            return Err(Error::BadInput {
                reason: format!(
                    "cannot render page {page} of {name}: {}",
                    err.lines().next().unwrap_or("pdftoppm failed")
                ),
            });
        }
        image::open(&png).map_err(|e| Error::BadInput {
            reason: format!("cannot read the rendering of page {page} of {name}: {e}"),
        })
    }
}
