//! Text in images: OCR of photos, screenshots and scans, one insight per line with its box.
//!
//! PP-OCRv6 reads Latin and Chinese text well in photos and scans alike; it has no Cyrillic,
//! Greek, Arabic or Indic letters. Tesseract (the Debian packages) reads those scripts in
//! clean scans but loses much of a photographed page. So PP-OCRv6 reads first, and when
//! Tesseract is installed and PP-OCRv6's lines are unsure, Tesseract reads too and the
//! more confident reading is kept (see [`Ocr::analyze`]).

mod geometry;
mod pdf;
pub mod plates;
mod ppocr;
mod tesseract;

use std::path::{Path, PathBuf};

use aperture_catalog::Asset;
use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, Rect, value};

use crate::loaded::Loaded;
use crate::{Analyzer, Error, Input, Output, language, model_insight, models};

pub use ppocr::PpOcr;
pub use tesseract::{DEFAULT_TESSDATA, Tesseract};

/// The manifest name of the PP-OCR models.
pub const PPOCR_MODEL: &str = "ppocr-v6";
/// The manifest name of PP-OCRv6's tiny detector ([`Detector::Tiny`]).
pub const PPOCR_TINY_DETECTOR_MODEL: &str = "ppocr-v6-tiny";

/// Which PP-OCRv6 detector finds the lines; the recogniser is the same.
///
/// Measured on the sample photos and the plate set (one thread): the tiny one takes 38.6 ms
/// on a 512² photo against 91.6, and the whole OCR half the time. The OCR evaluation set
/// reads with the same character error rate; small text in photos is missed more often (the
/// country code of a number plate, a maker's name on a motorcycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detector {
    /// PP-OCRv6 small (`ppocr-v6`): the default.
    #[default]
    Small,
    /// PP-OCRv6 tiny (`ppocr-v6-tiny`, installed as well as `ppocr-v6`): for a fast first
    /// pass, or a re-index at scale.
    Tiny,
}

impl Detector {
    /// The name the config uses: `small` or `tiny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Detector::Small => "small",
            Detector::Tiny => "tiny",
        }
    }
}

impl std::str::FromStr for Detector {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(Detector::Small),
            "tiny" => Ok(Detector::Tiny),
            other => Err(format!(
                "unknown OCR detector {other:?}: expected \"small\" or \"tiny\""
            )),
        }
    }
}

/// PP-OCRv6 reads 1.2–1.9 characters per line height of a line's length in Chinese and about
/// 2 in Latin scripts (measured on our evaluation set); a line with far fewer is in a script
/// not in its alphabet, of which it read only digits, punctuation and look-alike letters.
const MIN_COVERAGE: f32 = 0.6;
/// Scanned pages read per document; the rest are left (and the job says so).
pub const MAX_PDF_PAGES: u32 = 100;
/// Tesseract's reading replaces PP-OCRv6's only when it is at least this sure of it: on a
/// photo without text it reads noise as `|`, `_` and stray letters.
const MIN_TESSERACT_CONFIDENCE: f32 = 0.6;

/// Which engine read a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PP-OCRv6, the first engine.
    PpOcr,
    /// Tesseract, the fallback for scripts PP-OCRv6 does not know.
    Tesseract,
}

impl Engine {
    /// The engine's name, recorded as the model of the lines it read.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::PpOcr => "pp-ocrv6",
            Engine::Tesseract => "tesseract",
        }
    }
}

/// One line of text found in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text read, in reading order within the line.
    pub text: String,
    /// 0–1.
    pub confidence: f32,
    /// Corners clockwise from the top left, in the image's pixels.
    pub quad: [(f32, f32); 4],
}

/// The analyzer: text lines of images, and of scanned PDF pages that have no text layer.
pub struct Ocr {
    ppocr: Loaded<PpOcr>,
    /// The detector's `det.onnx`: in the PP-OCR folder, or the tiny detector's.
    detector: PathBuf,
    library: PathBuf,
    tesseract: Option<Tesseract>,
    renderer: Option<pdf::Renderer>,
    fingerprint: String,
    /// Whether the labels model is installed: then plates are left out of pictures labelled
    /// as vehicles (and a picture waits for its labels); without it, out of every picture.
    labels: bool,
}

impl Ocr {
    /// PP-OCRv6 from the models folder, and Tesseract with the languages Debian installed
    /// in its usual folder, if it is there.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        Self::with_detector(models_dir, Detector::Small)
    }

    /// [`Ocr::new`] with `detector` finding the lines. The tiny one's files are part of the
    /// fingerprint, so that results of one are stale under the other.
    pub fn with_detector(models_dir: &Path, detector: Detector) -> Result<Self, models::Error> {
        let library = crate::onnx::runtime_library(models_dir)?;
        let folder = models::require(models_dir, PPOCR_MODEL)?;
        let mut fingerprint = models::fingerprint(&folder)?;
        let detector = match detector {
            Detector::Small => folder.join("det.onnx"),
            Detector::Tiny => {
                let tiny = models::require(models_dir, PPOCR_TINY_DETECTOR_MODEL)?;
                fingerprint = format!("{fingerprint}+tiny:{}", models::fingerprint(&tiny)?);
                tiny.join("det.onnx")
            }
        };
        Ok(Self {
            fingerprint,
            detector,
            ppocr: Loaded::new(folder),
            library,
            tesseract: Tesseract::find(Path::new(DEFAULT_TESSDATA)),
            renderer: pdf::Renderer::find(),
            labels: models::require(models_dir, crate::labels::EFFICIENTNET_MODEL).is_ok(),
        })
    }

    /// Where the labels analyzer does not run here (disabled in the config): plates are left
    /// out of every picture, none waits for labels.
    pub fn without_labels(mut self) -> Self {
        self.labels = false;
        self
    }

    /// Without Tesseract, or with another one.
    pub fn with_tesseract(mut self, tesseract: Option<Tesseract>) -> Self {
        self.tesseract = tesseract;
        self
    }

    /// The lines of an image and the engine that read them: PP-OCRv6, or Tesseract where
    /// PP-OCRv6 found lines but could read little of them (a script it does not know).
    pub fn read(&self, image: &image::DynamicImage) -> Result<(Vec<Line>, Engine), Error> {
        let lines = self.read_ppocr(image)?;
        let unsure = lines.iter().filter(|l| coverage(l) < MIN_COVERAGE).count();
        if let Some(tesseract) = &self.tesseract
            && !lines.is_empty()
            && unsure * 2 >= lines.len()
        {
            let second = match tesseract.read(image) {
                Ok(lines) => lines,
                Err(e) => {
                    // PP-OCRv6's reading stands.
                    tracing::warn!(error = %e, "tesseract failed; keeping PP-OCRv6's lines");
                    return Ok((lines, Engine::PpOcr));
                }
            };
            let sure = second.iter().map(|l| l.confidence).sum::<f32>()
                >= MIN_TESSERACT_CONFIDENCE * second.len() as f32;
            if sure && chars(&second) > chars(&lines) {
                return Ok((second, Engine::Tesseract));
            }
        }
        Ok((lines, Engine::PpOcr))
    }

    /// The lines PP-OCRv6 reads.
    pub fn read_ppocr(&self, image: &image::DynamicImage) -> Result<Vec<Line>, Error> {
        let engine = self
            .ppocr
            .get(|folder| PpOcr::load(&self.library, folder, &self.detector))?;
        engine.read(image)
    }

    fn line_insight(
        &self,
        asset: &Asset,
        line: &Line,
        engine: Engine,
        size: (u32, u32),
        language: Option<&str>,
        place: Place,
    ) -> Insight {
        let (w, h) = (size.0.max(1) as f32, size.1.max(1) as f32);
        let quad: [[f32; 2]; 4] = line
            .quad
            .map(|(x, y)| [(x / w).clamp(0.0, 1.0), (y / h).clamp(0.0, 1.0)]);
        let (x0, y0, x1, y1) = quad
            .iter()
            .fold((1f32, 1f32, 0f32, 0f32), |(a, b, c, d), p| {
                (a.min(p[0]), b.min(p[1]), c.max(p[0]), d.max(p[1]))
            });
        let model_version = match engine {
            Engine::PpOcr => self.fingerprint.clone(),
            Engine::Tesseract => self
                .tesseract
                .as_ref()
                .map_or_else(String::new, |t| t.languages().to_owned()),
        };
        Insight {
            confidence: Some(line.confidence),
            language: language.map(str::to_owned),
            place: crate::frames::within(
                place,
                Rect {
                    x: x0,
                    y: y0,
                    w: x1 - x0,
                    h: y1 - y0,
                },
            ),
            ..model_insight(
                self,
                asset,
                (engine.as_str(), &model_version),
                value::OcrLine {
                    text: line.text.clone(),
                    quad,
                    engine: engine.as_str().to_owned(),
                }
                .into(),
            )
        }
    }
}

/// What the `ocr` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "ocr",
    // 2: plate-like text on pictures of vehicles is left out (`plates`).
    // 3: and parts of plates (`WA 783` of `P WA 783`), and plates split over lines on a row.
    version: "3",
    kinds: &[MediaKind::Image, MediaKind::Document, MediaKind::Video],
    priority: 3,
    reads: &["text", "video", "labels"],
    produces: &[InsightValue::OCR_LINE],
};

impl Analyzer for Ocr {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn reads_pictures(&self) -> bool {
        true
    }

    /// The PP-OCR files and the Tesseract languages: installing another language pack
    /// makes earlier results stale.
    fn version(&self) -> String {
        match &self.tesseract {
            Some(t) => format!(
                "{}+{}+tesseract:{}",
                SPEC.version,
                self.fingerprint,
                t.languages()
            ),
            None => format!("{}+{}", SPEC.version, self.fingerprint),
        }
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        if input.asset.kind == MediaKind::Document {
            return self.scanned_pages(input);
        }
        // Plates: a picture's labels must be known first, to tell a vehicle's.
        let labels: Vec<Insight> = input
            .insights
            .iter()
            .filter(|i| i.analyzer == crate::labels::SPEC.name)
            .cloned()
            .collect();
        let pictures = matches!(input.asset.kind, MediaKind::Image | MediaKind::Video);
        if pictures && input.suppress_plates && self.labels && labels.is_empty() {
            // A picture that cannot be read says so now, rather than wait for labels that
            // will never come.
            if input.asset.kind == MediaKind::Image {
                crate::image_input::decode(input.asset, input.path)?;
            }
            // Nothing for now, which also clears what an earlier version read (plates
            // included): the labels' results queue this job again.
            return Ok(Output::default());
        }
        let mut insights = Vec::new();
        crate::frames::for_each_picture(input, |place, image| {
            insights.extend(self.lines_of(input.asset, &image, place)?);
            Ok(())
        })?;
        if input.suppress_plates {
            // Lines that are a plate alone, or with their neighbours on a row.
            let lines: Vec<(&str, &Place)> = insights
                .iter()
                .map(|i| match &i.value {
                    InsightValue::OcrLine(line) => (line.text.as_str(), &i.place),
                    _ => ("", &i.place),
                })
                .collect();
            let mut is_plate: Vec<bool> = lines
                .iter()
                .map(|(text, _)| plates::plate_family(text).is_some())
                .collect();
            for at in plates::split_plates(&lines) {
                is_plate[at] = true;
            }
            debug_assert_eq!(is_plate.len(), insights.len());
            let mut verdicts = is_plate.into_iter();
            insights.retain(|i| {
                // Out of step (never): a line is taken for a plate rather than kept.
                let plate = verdicts.next().unwrap_or(true);
                !(plate && (!self.labels || plates::shows_vehicle(&labels, &i.place)))
            });
        }
        Ok(Output {
            insights: crate::frames::merge_runs(insights),
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}

impl Ocr {
    /// The insights of one picture at `place`: an image, a page of a document, a shot.
    fn lines_of(
        &self,
        asset: &Asset,
        image: &image::DynamicImage,
        place: Place,
    ) -> Result<Vec<Insight>, Error> {
        let (lines, engine) = self.read(image)?;
        let all: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        let language = language::detect(&all.join("\n")).map(|(tag, _)| tag);
        let size = (image.width(), image.height());
        Ok(lines
            .iter()
            .map(|l| self.line_insight(asset, l, engine, size, language.as_deref(), place))
            .collect())
    }

    /// The pages of a PDF without a text layer, rendered and read.
    fn scanned_pages(&self, input: &Input<'_>) -> Result<Output, Error> {
        let asset = input.asset;
        if asset.mime != "application/pdf" {
            return Err(Error::NotApplicable {
                reason: format!("{} is {}, not a PDF or an image", asset.name, asset.mime),
            });
        }
        let with_text: std::collections::HashSet<u32> = input
            .insights
            .iter()
            .filter(|i| i.kind() == InsightValue::TEXT)
            .filter_map(|i| match i.place {
                Place::Page { page, .. } => Some(page),
                _ => None,
            })
            .collect();
        if with_text.is_empty() && asset.metadata.has_text_layer == Some(true) {
            // The text job has not run yet; when it stores the text layer, this job is
            // queued again and reads only the pages without one.
            return Err(Error::NotApplicable {
                reason: format!("{} has a text layer, not read yet", asset.name),
            });
        }
        let Some(pages) = asset.metadata.pages else {
            return Err(Error::BadInput {
                reason: format!(
                    "{}: the PDF did not parse, so its pages are unknown",
                    asset.name
                ),
            });
        };
        let scanned: Vec<u32> = (1..=pages).filter(|p| !with_text.contains(p)).collect();
        if scanned.is_empty() {
            return Err(Error::NotApplicable {
                reason: format!("every page of {} has a text layer", asset.name),
            });
        }
        let Some(renderer) = &self.renderer else {
            return Err(Error::NotApplicable {
                reason: format!(
                    "{} has scanned pages, and reading them needs pdftoppm \
                     (apt-get install poppler-utils)",
                    asset.name
                ),
            });
        };
        if scanned.len() > MAX_PDF_PAGES as usize {
            tracing::warn!(
                asset = %asset.name,
                pages = scanned.len(),
                "reading only the first {MAX_PDF_PAGES} scanned pages"
            );
        }
        // A page that will not render or read is left out; the document fails only when
        // no page could be read.
        let (mut insights, mut failures) = (Vec::new(), Vec::new());
        let wanted = scanned.len().min(MAX_PDF_PAGES as usize);
        for &page in scanned.iter().take(wanted) {
            match renderer
                .page(input.path, page, &asset.name)
                .and_then(|image| self.lines_of(asset, &image, Place::Page { page, rect: None }))
            {
                Ok(lines) => insights.extend(lines),
                Err(e) => failures.push(e),
            }
        }
        if failures.len() == wanted {
            return Err(failures.swap_remove(0));
        }
        for e in &failures {
            tracing::warn!(asset = %asset.name, error = %e, "a scanned page was left out");
        }
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}

/// Reads a child's stderr in a thread as it comes, so that a chatty child never blocks on a
/// full pipe; the join gives its first lines (at most 4 KiB).
fn drain_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut kept = Vec::new();
        if let Some(mut stderr) = stderr {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let room = 4096usize.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Waits for `child` to exit, for at most `timeout`; a child still running then is killed and
/// reaped, and `Ok(None)` says so.
fn wait_at_most(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::io::Result<Option<std::process::ExitStatus>> {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Characters read, spaces aside.
fn chars(lines: &[Line]) -> usize {
    lines
        .iter()
        .map(|l| l.text.chars().filter(|c| !c.is_whitespace()).count())
        .sum()
}

/// Characters read per line height of the line's length.
fn coverage(line: &Line) -> f32 {
    let dist = |a: (f32, f32), b: (f32, f32)| ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt();
    let room = dist(line.quad[0], line.quad[1]) / dist(line.quad[0], line.quad[3]).max(1.0);
    chars(std::slice::from_ref(line)) as f32 / room.max(1.0)
}
