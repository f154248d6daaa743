//! Image labels: the ImageNet-1k classes EfficientNet-Lite0 sees in a photo (top 5, with
//! their probabilities and names), and the photo's pooled feature vector for similar-image
//! search. Labels name things (objects, animals, scenes), never who a person is.

use std::path::{Path, PathBuf};

use aperture_core::{Insight, MediaKind, encode_vector};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use image::{DynamicImage, imageops::FilterType};

use crate::efficientnet::{CLASSES, EfficientNetLite0, INPUT_SIZE};
use crate::loaded::Loaded;
use crate::{Analyzer, Error, Input, Output, image_input, model_insight, models};

/// The manifest name of the model.
pub const EFFICIENTNET_MODEL: &str = "efficientnet-lite0";
/// The space of the image feature vectors; search compares vectors of one space only.
pub const EFFICIENTNET_SPACE: &str = "efficientnet-lite0";
/// Labels kept per image.
pub const TOP_K: usize = 5;

/// The network and its class names.
pub struct Classifier {
    net: EfficientNetLite0,
    classes: Vec<String>,
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
    /// Loads `model.safetensors` and `classes.json` from an installed model folder.
    pub fn load(folder: &Path) -> Result<Self, Error> {
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
        // SAFETY: memory-mapped read-only; model folders are replaced by rename, never
        // rewritten in place.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }
            .map_err(|e| failed("model.safetensors", &e))?;
        let net = EfficientNetLite0::load(vb).map_err(|e| failed("model.safetensors", &e))?;
        Ok(Self { net, classes })
    }

    pub fn class_name(&self, class: usize) -> &str {
        &self.classes[class]
    }

    /// Classifies images (any size; each is centre-cropped and scaled) in one batch.
    pub fn classify(&self, images: &[DynamicImage]) -> Result<Vec<Classified>, Error> {
        self.run(images).map_err(|e| Error::Transient {
            reason: format!("image classification failed: {e}"),
        })
    }

    fn run(&self, images: &[DynamicImage]) -> candle_core::Result<Vec<Classified>> {
        let pixels: Vec<f32> = images.iter().flat_map(preprocess).collect();
        let input = Tensor::from_vec(
            pixels,
            (images.len(), 3, INPUT_SIZE, INPUT_SIZE),
            &Device::Cpu,
        )?
        .to_device(self.net.device())?;
        let (features, logits) = self.net.forward(&input)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2::<f32>()?;
        let norms = features
            .sqr()?
            .sum_keepdim(1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        let features = features.broadcast_div(&norms)?.to_vec2::<f32>()?;
        Ok(probs
            .into_iter()
            .zip(features)
            .map(|(p, features)| {
                let mut top: Vec<(usize, f32)> = p.into_iter().enumerate().collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1));
                top.truncate(TOP_K);
                Classified { top, features }
            })
            .collect())
    }
}

/// The network's input for one image: the centre square (224/256 of the shorter side, as
/// ImageNet evaluation crops), scaled to 224 × 224 bicubic, RGB planes as `(x − 127) / 128`.
pub fn preprocess(image: &DynamicImage) -> Vec<f32> {
    let (w, h) = (image.width(), image.height());
    let side = ((f64::from(w.min(h)) * INPUT_SIZE as f64 / 256.0).round() as u32).max(1);
    let (left, top) = ((w - side).div_ceil(2), (h - side).div_ceil(2));
    let square = image.crop_imm(left, top, side, side);
    let rgb = square
        .resize_exact(INPUT_SIZE as u32, INPUT_SIZE as u32, FilterType::CatmullRom)
        .to_rgb8();
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) - 127.0) / 128.0;
        }
    }
    out
}

pub struct Labels {
    model: Loaded<Classifier>,
    fingerprint: String,
}

impl Labels {
    /// The analyzer over the installed model in the models folder `models_dir`.
    pub fn new(models_dir: &Path) -> Result<Self, models::Error> {
        Self::from_folder(models::require(models_dir, EFFICIENTNET_MODEL)?)
    }

    pub fn from_folder(folder: PathBuf) -> Result<Self, models::Error> {
        Ok(Self {
            fingerprint: models::fingerprint(&folder)?,
            model: Loaded::new(folder),
        })
    }
}

impl Analyzer for Labels {
    fn name(&self) -> &'static str {
        "labels"
    }

    fn version(&self) -> String {
        format!("1+{}", self.fingerprint)
    }

    fn priority(&self) -> i32 {
        5
    }

    fn kinds(&self) -> &'static [MediaKind] {
        &[MediaKind::Image]
    }

    fn analyze(&self, input: &Input<'_>) -> Result<Output, Error> {
        let image = image_input::decode(input.asset, input.path)?;
        let model = self.model.get(Classifier::load)?;
        let result = model
            .classify(std::slice::from_ref(&image))?
            .pop()
            .ok_or_else(|| Error::Transient {
                reason: "the classifier returned nothing".into(),
            })?;
        let mut insights: Vec<Insight> = result
            .top
            .iter()
            .enumerate()
            .map(|(rank, &(class, p))| Insight {
                confidence: Some(p),
                ..model_insight(
                    self,
                    input.asset,
                    (EFFICIENTNET_MODEL, &self.fingerprint),
                    "label",
                    serde_json::json!({
                        "name": model.class_name(class),
                        "class": class,
                        "rank": rank + 1,
                        "taxonomy": "imagenet-1k",
                    }),
                )
            })
            .collect();
        insights.push(model_insight(
            self,
            input.asset,
            (EFFICIENTNET_MODEL, &self.fingerprint),
            "image_features",
            serde_json::json!({
                "space": EFFICIENTNET_SPACE,
                "dims": result.features.len(),
                "vector": encode_vector(&result.features),
            }),
        ));
        Ok(Output {
            insights,
            derived: Vec::new(),
        })
    }
}
