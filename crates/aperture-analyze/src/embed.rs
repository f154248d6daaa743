//! Sentence embeddings with a BERT model in candle: all-MiniLM-L6-v2 (384 dimensions) from
//! the offline pack, or any BERT sentence-transformer with the same files.
//!
//! The model folder holds `config.json`, `tokenizer.json` and `model.safetensors`. Texts are
//! tokenised (truncated to 256 tokens, as sentence-transformers does for this model), run
//! through the encoder in batches, mean-pooled over their real tokens and L2-normalised, so
//! that a dot product is the cosine similarity.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::Error;

/// Tokens per text, as sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
pub const MAX_TOKENS: usize = 256;
/// Texts encoded in one forward pass.
const BATCH: usize = 32;

pub struct TextEmbedder {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dimensions: usize,
}

impl TextEmbedder {
    /// Loads a model folder on the CPU (or, in builds with the `cuda` feature, the first GPU).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let device = default_device();
        let missing = |what: &str, e: &dyn std::fmt::Display| Error::Transient {
            reason: format!("cannot load {what} from {}: {e}", dir.display()),
        };
        let config_text = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| missing("config.json", &e))?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| missing("config.json", &e))?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| missing("tokenizer.json", &e))?;
        tokenizer.with_padding(Some(PaddingParams::default()));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| missing("tokenizer.json", &e))?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the weights file is memory-mapped read-only; the model folder is ours and
        // is replaced by rename, never rewritten in place, while a process uses it.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }
            .map_err(|e| missing("model.safetensors", &e))?;
        let model = BertModel::load(vb, &config).map_err(|e| missing("the BERT weights", &e))?;
        Ok(Self {
            model,
            tokenizer,
            device,
            dimensions: config.hidden_size,
        })
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One unit-length vector per text, in the order given. Texts are batched by length,
    /// so that a batch pads its short texts to a similar length rather than to the longest.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&str> = chunk.iter().map(|&i| texts[i]).collect();
            let vectors = self.embed_batch(&batch).map_err(|e| Error::Transient {
                reason: format!("text embedding failed: {e}"),
            })?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> anyhow_like::Result<Vec<Vec<f32>>> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(anyhow_like::msg)?;
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> candle_core::Result<Tensor> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), &self.device))
                .collect::<candle_core::Result<_>>()?;
            Tensor::stack(&rows, 0)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let types = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;
        let hidden = self.model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only: padding must not pull the average.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// The first GPU in builds with the `cuda` feature when there is one, else the CPU.
pub(crate) fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(device) = Device::new_cuda(0) {
        return device;
    }
    Device::Cpu
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A small error type for the candle/tokenizers plumbing inside this module.
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    pub fn msg(e: impl std::fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
        e.to_string().into()
    }
}
