//! CLIP image and text embeddings, for users who pull a CLIP model from the Hugging Face hub
//! (no registry package carries one): an image and a text about it land near each other, so
//! search can find photos by what they show without labels or OCR.
//!
//! The model folder is a hub repository of the `transformers` CLIP layout: `config.json`
//! (with `text_config` and `vision_config`), `model.safetensors`, `tokenizer.json`. Images are
//! scaled (shorter side to the model's size, bicubic), centre-cropped and normalised with
//! CLIP's channel means; texts are tokenised and cut at the model's context length.

use std::path::{Path, PathBuf};

use aperture_core::{AnalyzerSpec, InsightValue, MediaKind, Vector};
use candle_core::{Device, Tensor};
use candle_transformers::models::clip::text_model::{Activation, ClipTextConfig};
use candle_transformers::models::clip::vision_model::ClipVisionConfig;
use candle_transformers::models::clip::{ClipConfig, ClipModel};
use image::{DynamicImage, imageops::FilterType};
use serde::Deserialize;
use tokenizers::Tokenizer;

use crate::loaded::Loaded;
use crate::{Analyzer, Error, Input, Output, model_insight, models};

const MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// The parts of a `transformers` CLIP `config.json` the model needs.
#[derive(Debug, Deserialize)]
struct HfConfig {
    text_config: HfTextConfig,
    vision_config: HfVisionConfig,
    #[serde(default = "default_projection")]
    projection_dim: usize,
    #[serde(default = "default_logit_scale")]
    logit_scale_init_value: f32,
}

#[derive(Debug, Deserialize)]
struct HfTextConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    #[serde(default = "default_context")]
    max_position_embeddings: usize,
    #[serde(default = "default_activation")]
    hidden_act: String,
}

#[derive(Debug, Deserialize)]
struct HfVisionConfig {
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    image_size: usize,
    patch_size: usize,
    #[serde(default = "default_channels")]
    num_channels: usize,
    #[serde(default = "default_activation")]
    hidden_act: String,
}

fn default_projection() -> usize {
    512
}
fn default_logit_scale() -> f32 {
    2.6592
}
fn default_context() -> usize {
    77
}
fn default_channels() -> usize {
    3
}
fn default_activation() -> String {
    "quick_gelu".into()
}

impl HfConfig {
    /// candle's CLIP has OpenAI's activation only; a port with another would load and give
    /// wrong vectors, so it is refused.
    fn check(&self) -> Result<(), String> {
        for act in [&self.text_config.hidden_act, &self.vision_config.hidden_act] {
            if act != "quick_gelu" {
                return Err(format!(
                    "activation {act:?} is not supported (only OpenAI CLIP's quick_gelu)"
                ));
            }
        }
        Ok(())
    }

    fn to_candle(&self) -> ClipConfig {
        let (t, v) = (&self.text_config, &self.vision_config);
        ClipConfig {
            text_config: ClipTextConfig {
                vocab_size: t.vocab_size,
                embed_dim: t.hidden_size,
                activation: Activation::QuickGelu,
                intermediate_size: t.intermediate_size,
                max_position_embeddings: t.max_position_embeddings,
                pad_with: None,
                num_hidden_layers: t.num_hidden_layers,
                num_attention_heads: t.num_attention_heads,
                projection_dim: self.projection_dim,
            },
            vision_config: ClipVisionConfig {
                embed_dim: v.hidden_size,
                activation: Activation::QuickGelu,
                intermediate_size: v.intermediate_size,
                num_hidden_layers: v.num_hidden_layers,
                num_attention_heads: v.num_attention_heads,
                projection_dim: self.projection_dim,
                num_channels: v.num_channels,
                image_size: v.image_size,
                patch_size: v.patch_size,
            },
            logit_scale_init_value: self.logit_scale_init_value,
            image_size: v.image_size,
        }
    }
}

/// A loaded CLIP model: images and texts into one space of unit vectors.
pub struct ClipEncoder {
    model: ClipModel,
    tokenizer: Tokenizer,
    device: Device,
    image_size: usize,
    context: usize,
}

impl ClipEncoder {
    /// Loads `config.json`, `tokenizer.json` and the weights of a hub CLIP folder, on the CPU
    /// (or, with the `cuda` feature, the first GPU). A folder it cannot read is
    /// [`Error::Transient`].
    pub fn load(folder: &Path) -> Result<Self, Error> {
        let failed = |what: &str, e: &dyn std::fmt::Display| Error::Transient {
            reason: format!("cannot load {what} from {}: {e}", folder.display()),
        };
        let config: HfConfig = std::fs::read(folder.join("config.json"))
            .map_err(|e| failed("config.json", &e))
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| failed("config.json", &e)))?;
        config.check().map_err(|e| failed("config.json", &e))?;
        let tokenizer = Tokenizer::from_file(folder.join("tokenizer.json"))
            .map_err(|e| failed("tokenizer.json", &e))?;
        let device = crate::embed::default_device();
        let vb = crate::embed::mmap_weights(&folder.join("model.safetensors"), &device)
            .map_err(|e| failed("model.safetensors", &e))?;
        let candle = config.to_candle();
        let model = ClipModel::new(vb, &candle).map_err(|e| failed("the CLIP weights", &e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            image_size: candle.image_size,
            context: candle.text_config.max_position_embeddings,
        })
    }

    /// One unit vector per image.
    pub fn embed_images(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>, Error> {
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let side = self.image_size;
            let pixels: Vec<f32> = images.iter().flat_map(|i| preprocess(i, side)).collect();
            let input = Tensor::from_vec(pixels, (images.len(), 3, side, side), &Device::Cpu)?
                .to_device(&self.device)?;
            unit_rows(&self.model.get_image_features(&input)?)
        };
        run().map_err(|e| Error::Transient {
            reason: format!("CLIP image embedding failed: {e}"),
        })
    }

    /// One unit vector per text, in the images' space. Texts are encoded one at a time:
    /// CLIP pools at its end-of-text token, which padding would move.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let encoding = self
                .tokenizer
                .encode(*text, true)
                .map_err(|e| Error::Transient {
                    reason: format!("cannot tokenise for CLIP: {e}"),
                })?;
            let mut ids = encoding.get_ids().to_vec();
            if ids.len() > self.context {
                // Keep the end-of-text token, which pooling reads.
                let last = *ids.last().expect("not empty");
                ids.truncate(self.context);
                ids[self.context - 1] = last;
            }
            let run = || -> candle_core::Result<Vec<f32>> {
                let input = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
                Ok(unit_rows(&self.model.get_text_features(&input)?)?.remove(0))
            };
            out.push(run().map_err(|e| Error::Transient {
                reason: format!("CLIP text embedding failed: {e}"),
            })?);
        }
        Ok(out)
    }
}

fn unit_rows(x: &Tensor) -> candle_core::Result<Vec<Vec<f32>>> {
    let norms = x.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&norms)?.to_vec2::<f32>()
}

/// Shorter side to `side` (bicubic), the centre square, RGB planes normalised with CLIP's
/// means and deviations.
fn preprocess(image: &DynamicImage, side: usize) -> Vec<f32> {
    let s = side as u32;
    let (w, h) = (image.width().max(1), image.height().max(1));
    let scale = s as f32 / w.min(h) as f32;
    let (nw, nh) = (
        ((w as f32 * scale).round() as u32).max(s),
        ((h as f32 * scale).round() as u32).max(s),
    );
    let scaled = image.resize_exact(nw, nh, FilterType::CatmullRom);
    let square = scaled.crop_imm((nw - s) / 2, (nh - s) / 2, s, s).to_rgb8();
    let plane = side * side;
    let mut out = vec![0f32; 3 * plane];
    for (i, p) in square.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(p[c]) / 255.0 - MEAN[c]) / STD[c];
        }
    }
    out
}

/// The analyzer: a CLIP image embedding per image.
pub struct Clip {
    model: Loaded<ClipEncoder>,
    /// The hub id: the embedding space is named after it.
    id: String,
    fingerprint: String,
}

impl Clip {
    /// The model `id` pulled from the hub into the models folder.
    pub fn from_hub(models_dir: &Path, id: &str) -> Result<Self, models::Error> {
        Self::from_folder(models::require_hub(models_dir, id)?, id)
    }

    /// The analyzer over a CLIP model already in `folder`, its space named after `id`.
    pub fn from_folder(folder: PathBuf, id: &str) -> Result<Self, models::Error> {
        Ok(Self {
            fingerprint: models::fingerprint(&folder)?,
            model: Loaded::new(folder),
            id: id.to_owned(),
        })
    }

    /// The space its vectors live in: `clip:<hub id>`.
    pub fn space(&self) -> String {
        format!("clip:{}", self.id)
    }

    /// The loaded model, for embedding queries.
    pub fn encoder(&self) -> Result<std::sync::Arc<ClipEncoder>, Error> {
        self.model.get(ClipEncoder::load)
    }
}

/// What the `clip` analyzer is, before anything loads.
pub const SPEC: AnalyzerSpec = AnalyzerSpec {
    name: "clip",
    version: "1",
    kinds: &[MediaKind::Image, MediaKind::Video],
    priority: 4,
    reads: &["video"],
    produces: &[InsightValue::CLIP_EMBEDDING],
};

impl Analyzer for Clip {
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
        let encoder = self.encoder()?;
        let mut insights = Vec::new();
        crate::frames::for_each_picture(input, |place, image| {
            let vector = encoder
                .embed_images(std::slice::from_ref(&image))?
                .remove(0);
            insights.push(aperture_core::Insight {
                place,
                ..model_insight(
                    self,
                    input.asset,
                    (&self.id, &self.fingerprint),
                    InsightValue::ClipEmbedding(Vector {
                        space: self.space(),
                        data: vector,
                    }),
                )
            });
            Ok(())
        })?;
        Ok(Output {
            insights,
            derived: Vec::new(),
            derived_files: Vec::new(),
        })
    }
}

/// A CLIP with random weights and a word-level tokenizer, in the hub layout, for tests of
/// the plumbing (no quality: the weights are noise).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::path::Path;

    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::clip::ClipModel;

    /// Words the tokenizer knows; the end-of-text token has the highest id, as in CLIP.
    const WORDS: &[&str] = &[
        "<unk>",
        "a",
        "photo",
        "of",
        "cat",
        "dog",
        "red",
        "car",
        "<|startoftext|>",
        "<|endoftext|>",
    ];

    /// Writes config.json, model.safetensors and tokenizer.json into `dir`; returns the
    /// projection size.
    pub fn write_tiny_clip(dir: &Path) -> usize {
        let config = serde_json::json!({
            "projection_dim": 8,
            "text_config": {
                "vocab_size": WORDS.len(), "hidden_size": 16, "intermediate_size": 32,
                "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 16
            },
            "vision_config": {
                "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 2, "image_size": 32, "patch_size": 8
            }
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let parsed: super::HfConfig = serde_json::from_value(config).unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        ClipModel::new(vb, &parsed.to_candle()).unwrap();
        varmap.save(dir.join("model.safetensors")).unwrap();
        let vocab: serde_json::Map<String, serde_json::Value> = WORDS
            .iter()
            .enumerate()
            .map(|(i, w)| ((*w).to_owned(), serde_json::json!(i)))
            .collect();
        let (bos, eos) = (WORDS.len() - 2, WORDS.len() - 1);
        let tokenizer = serde_json::json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": [],
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [
                    {"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}
                ],
                "pair": [
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"Sequence": {"id": "B", "type_id": 1}}
                ],
                "special_tokens": {
                    "<|startoftext|>": {"id": "<|startoftext|>", "ids": [bos], "tokens": ["<|startoftext|>"]},
                    "<|endoftext|>": {"id": "<|endoftext|>", "ids": [eos], "tokens": ["<|endoftext|>"]}
                }
            },
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
        8
    }
}
