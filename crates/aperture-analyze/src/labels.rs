//! Image labels: the ImageNet-1k classes EfficientNet-Lite0 sees in a photo (top 5, with
//! their probabilities and names), and the photo's pooled feature vector for similar-image
//! search. Labels name things (objects, animals, scenes), never who a person is.

use std::path::{Path, PathBuf};

use aperture_core::{AnalyzerSpec, Insight, InsightValue, MediaKind, Vector, value};
use candle_core::{Device, Tensor};
use image::DynamicImage;

use crate::efficientnet::{CLASSES, EfficientNetLite0, FEATURES, INPUT_SIZE};
use crate::loaded::Loaded;
use crate::resize::{self, Filter};
use crate::{Analyzer, Error, Input, Output, model_insight, models};

/// The manifest name of the model.
pub const EFFICIENTNET_MODEL: &str = "efficientnet-lite0";
/// The space of the image feature vectors; search compares vectors of one space only.
pub const EFFICIENTNET_SPACE: &str = "efficientnet-lite0";
/// Labels kept per image.
pub const TOP_K: usize = 5;

/// The network and its class names.
pub struct Classifier {
    engine: Engine,
    classes: Vec<String>,
}

/// Where the network runs: ONNX Runtime on the CPU (about three times faster than candle
/// here, measured by `benches/analyzers.rs`), or candle, which also drives GPUs.
enum Engine {
    Onnx(crate::onnx::Sessions),
    Candle(EfficientNetLite0),
}

/// What the classifier makes of one image.
#[derive(Debug, Clone)]
pub struct Classified {
    /// (class index, probability), most likely first.
    pub top: Vec<(usize, f32)>,
    /// The pooled features, unit length.
    pub features: Vec<f32>,
}

impl Classifier {
    /// Loads `model.safetensors` and `classes.json` from an installed model folder, to run in
    /// candle (on the GPU in `cuda` builds).
    pub fn load(folder: &Path) -> Result<Self, Error> {
        Self::load_with(folder, None)
    }

    /// As [`Classifier::load`], on ONNX Runtime from `library` when one is given and no GPU
    /// is in use: the graph is built in memory from the same weights.
    pub fn load_with(folder: &Path, library: Option<&Path>) -> Result<Self, Error> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::Transient {
            reason: format!("cannot load {what} from {}: {e}", folder.display()),
        };
        let classes: Vec<String> = std::fs::read(folder.join("classes.json"))
            .map_err(|e| failed("classes.json", &e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| failed("classes.json", &e)))?;
        if classes.len() != CLASSES {
            return Err(failed(
                "classes.json",
                &format!("{} classes", classes.len()),
            ));
        }
        let device = crate::embed::default_device();
        let weights = folder.join("model.safetensors");
        let engine = match crate::embed::onnx_engine(
            library,
            &device,
            &weights,
            crate::efficientnet::onnx_model,
            crate::onnx::image_sessions_from_memory,
        ) {
            Some(session) => Engine::Onnx(session?),
            None => {
                let vb = crate::embed::mmap_weights(&weights, &device)
                    .map_err(|e| failed("model.safetensors", &e))?;
                Engine::Candle(
                    EfficientNetLite0::load(vb).map_err(|e| failed("model.safetensors", &e))?,
                )
            }
        };
        Ok(Self { engine, classes })
    }

    /// The ImageNet name of a class; panics when `class` is not below [`CLASSES`].
    pub fn class_name(&self, class: usize) -> &str {
        &self.classes[class]
    }

    /// Classifies images (any size; each is centre-cropped and scaled) in one batch.
    pub fn classify(&self, images: &[DynamicImage]) -> Result<Vec<Classified>, Error> {
        let pixels: Vec<f32> = images.iter().flat_map(preprocess).collect();
        let (features, logits) = match &self.engine {
            Engine::Onnx(session) => run_onnx(session, images.len(), &pixels),
            Engine::Candle(net) => run_candle(net, images.len(), pixels),
        }
        .map_err(|reason| Error::Transient {
            reason: format!("image classification failed: {reason}"),
        })?;
        Ok(logits
            .chunks(CLASSES)
            .zip(features.chunks(FEATURES))
            .map(|(logits, features)| Classified {
                top: top_k(&softmax(logits), TOP_K),
                features: unit(features),
            })
            .collect())
    }
}

/// (features, logits), each flattened over the batch.
fn run_onnx(
    sessions: &crate::onnx::Sessions,
    n: usize,
    pixels: &[f32],
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let run = |session: &mut ort::session::Session| -> ort::Result<(Vec<f32>, Vec<f32>)> {
        let shape = [n, 3, INPUT_SIZE, INPUT_SIZE];
        let input = ort::value::TensorRef::from_array_view((shape, pixels))?;
        let outputs = session.run(ort::inputs!["input" => input])?;
        let features = outputs["features"].try_extract_tensor::<f32>()?.1.to_vec();
        let logits = outputs["logits"].try_extract_tensor::<f32>()?.1.to_vec();
        Ok((features, logits))
    };
    sessions.with(run).map_err(|e| e.to_string())
}

fn run_candle(
    net: &EfficientNetLite0,
    n: usize,
    pixels: Vec<f32>,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let run = || -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
        let input = Tensor::from_vec(pixels, (n, 3, INPUT_SIZE, INPUT_SIZE), &Device::Cpu)?
            .to_device(net.device())?;
        let (features, logits) = net.forward(&input)?;
        Ok((
            features.flatten_all()?.to_vec1::<f32>()?,
            logits.flatten_all()?.to_vec1::<f32>()?,
        ))
    };
    run().map_err(|e| e.to_string())
}

fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::MIN, f32::max);
    let exp: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// The `k` most likely classes, most likely first.
fn top_k(probs: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut top: Vec<(usize, f32)> = probs.iter().copied().enumerate().collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(k);
    top
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

/// The network's input for one image: the centre square (224/256 of the shorter side, as
/// ImageNet evaluation crops), scaled to 224 × 224 bicubic, RGB planes as `(x − 127) / 128`.
pub fn preprocess(image: &DynamicImage) -> Vec<f32> {
    let (w, h) = (image.width(), image.height());
    let side = ((f64::from(w.min(h)) * INPUT_SIZE as f64 / 256.0).round() as u32).max(1);
    let (left, top) = ((w - side).div_ceil(2), (h - side).div_ceil(2));
    let size = INPUT_SIZE as u32;
    let scaled = resize::resize(
        &resize::rgb(image),
        Some((left, top, side, side)),
        size,
        size,
        Filter::Bicubic,
    );
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in scaled.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) - 127.0) / 128.0;
        }
    }
    out
}

/// The analyzer: ImageNet labels and image features of every image, by EfficientNet-Lite0.
pub struct Labels {
    model: Loaded<Classifier>,
    /// ONNX Runtime, when installed: the network runs there.
    library: Option<PathBuf>,
    fingerprint: String,
}

impl Labels {
    /// The analyzer over the installed model in the models folder `models_dir`, on ONNX
    /// Runtime when that is installed too, else in candle.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        let folder = models::require(models_dir, EFFICIENTNET_MODEL)?;
        Ok(Self {
            fingerprint: models::fingerprint(&folder)?,
            model: Loaded::new(folder),
            library: crate::onnx::runtime_library(models_dir).ok(),
        })
    }
}

/// What the `labels` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "labels",
    version: "1",
    kinds: &[MediaKind::Image, MediaKind::Video],
    priority: 5,
    reads: &["video"],
    produces: &[InsightValue::LABEL, InsightValue::IMAGE_FEATURES],
};

impl Analyzer for Labels {
    fn spec(&self) -> &'static AnalyzerSpec {
        &SPEC
    }

    fn reads_pictures(&self) -> bool {
        true
    }

    fn version(&self) -> String {
        format!("{}+{}", SPEC.version, self.fingerprint)
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let library = self.library.as_deref();
        let model = self
            .model
            .get(|folder| Classifier::load_with(folder, library))?;
        let (mut labels, mut features) = (Vec::new(), Vec::new());
        crate::frames::for_each_picture(input, |place, image| {
            let result = model
                .classify(std::slice::from_ref(&image))?
                .pop()
                .ok_or_else(|| Error::Transient {
                    reason: "the classifier returned nothing".into(),
                })?;
            labels.extend(result.top.iter().enumerate().map(|(rank, &(class, p))| {
                Insight {
                    confidence: Some(p),
                    place,
                    ..model_insight(
                        self,
                        input.asset,
                        (EFFICIENTNET_MODEL, &self.fingerprint),
                        value::Label {
                            name: model.class_name(class).to_owned(),
                            class: class as u32,
                            rank: rank as u32 + 1,
                            taxonomy: "imagenet-1k".into(),
                        }
                        .into(),
                    )
                }
            }));
            features.push(Insight {
                place,
                ..model_insight(
                    self,
                    input.asset,
                    (EFFICIENTNET_MODEL, &self.fingerprint),
                    InsightValue::ImageFeatures(Vector {
                        space: EFFICIENTNET_SPACE.into(),
                        data: result.features,
                    }),
                )
            });
            Ok(())
        })?;
        let mut insights = crate::frames::merge_runs(labels);
        insights.extend(features);
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}
