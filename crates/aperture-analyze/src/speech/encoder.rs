//! Whisper's audio encoder, as OpenAI's and candle's, with its attention taken one head at a
//! time: a 30 s window's attention is 1,500 × 1,500 per head, 72 MB for all eight heads of
//! whisper-base and as much again for its softmax, which candle's encoder holds at once.
//! Head by head it is 9 MB, for the same arithmetic. Loading it alone also spares loading a
//! decoder that would be thrown away (candle loads both).

use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::whisper::Config;

use super::decoder::{layer_norm, split_heads};

fn conv1d(inputs: usize, outputs: usize, stride: usize, vb: VarBuilder) -> Result<Conv1d> {
    let config = Conv1dConfig {
        padding: 1,
        stride,
        ..Conv1dConfig::default()
    };
    Ok(Conv1d::new(
        vb.get((outputs, inputs, 3), "weight")?,
        Some(vb.get(outputs, "bias")?),
        config,
    ))
}

struct Block {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    attn_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    mlp_ln: LayerNorm,
    heads: usize,
}

impl Block {
    fn load(d: usize, heads: usize, vb: VarBuilder) -> Result<Self> {
        let attn = vb.pp("self_attn");
        Ok(Self {
            query: candle_nn::linear(d, d, attn.pp("q_proj"))?,
            key: candle_nn::linear_no_bias(d, d, attn.pp("k_proj"))?,
            value: candle_nn::linear(d, d, attn.pp("v_proj"))?,
            out: candle_nn::linear(d, d, attn.pp("out_proj"))?,
            attn_ln: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            fc1: candle_nn::linear(d, 4 * d, vb.pp("fc1"))?,
            fc2: candle_nn::linear(4 * d, d, vb.pp("fc2"))?,
            mlp_ln: layer_norm(d, vb.pp("final_layer_norm"))?,
            heads,
        })
    }

    /// `(1, n, d)` → `(1, heads, n, d / heads)`, scaled as Whisper scales queries and keys.
    fn split(&self, x: &Tensor, scale: f64) -> Result<Tensor> {
        split_heads(&(x * scale)?, self.heads)
    }

    fn attention(&self, x: &Tensor) -> Result<Tensor> {
        let d = x.dim(D::Minus1)?;
        let scale = ((d / self.heads) as f64).powf(-0.25);
        let q = self.split(&self.query.forward(x)?, scale)?;
        let k = self.split(&self.key.forward(x)?, scale)?;
        let v = split_heads(&self.value.forward(x)?, self.heads)?;
        let mut outputs = Vec::with_capacity(self.heads);
        for h in 0..self.heads {
            let (q, k, v) = (q.narrow(1, h, 1)?, k.narrow(1, h, 1)?, v.narrow(1, h, 1)?);
            let weights = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
            outputs.push(weights.matmul(&v)?);
        }
        // (1, heads, n, d / heads) → (1, n, d)
        let joined = Tensor::cat(&outputs, 1)?.transpose(1, 2)?.flatten_from(2)?;
        self.out.forward(&joined)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = (x + self.attention(&self.attn_ln.forward(x)?)?)?;
        let mlp = self
            .fc2
            .forward(&self.fc1.forward(&self.mlp_ln.forward(&x)?)?.gelu()?)?;
        x + mlp
    }
}

/// The encoder: mel frames `(1, mels, 3000)` to audio features `(1, 1500, d)`.
pub struct Encoder {
    conv1: Conv1d,
    conv2: Conv1d,
    positions: Tensor,
    blocks: Vec<Block>,
    ln_post: LayerNorm,
}

/// Whisper's fixed positions: sines then cosines of geometric timescales.
fn sinusoids(length: usize, channels: usize, device: &Device) -> Result<Tensor> {
    let increment = 10_000f32.ln() / (channels / 2 - 1) as f32;
    let inverse: Vec<f32> = (0..channels / 2)
        .map(|i| (i as f32 * -increment).exp())
        .collect();
    let inverse = Tensor::new(inverse.as_slice(), device)?.unsqueeze(0)?;
    let times = Tensor::arange(0u32, length as u32, device)?
        .to_dtype(candle_core::DType::F32)?
        .unsqueeze(1)?;
    let shape = (length, channels / 2);
    let scaled = (times.broadcast_as(shape)? * inverse.broadcast_as(shape)?)?;
    Tensor::cat(&[scaled.sin()?, scaled.cos()?], 1)
}

impl Encoder {
    /// The encoder from `vb` (at `model.encoder`).
    pub fn load(vb: VarBuilder, config: &Config) -> Result<Self> {
        let d = config.d_model;
        Ok(Self {
            conv1: conv1d(config.num_mel_bins, d, 1, vb.pp("conv1"))?,
            conv2: conv1d(d, d, 2, vb.pp("conv2"))?,
            positions: sinusoids(config.max_source_positions, d, vb.device())?,
            blocks: (0..config.encoder_layers)
                .map(|i| {
                    Block::load(
                        d,
                        config.encoder_attention_heads,
                        vb.pp(format!("layers.{i}")),
                    )
                })
                .collect::<Result<_>>()?,
            ln_post: layer_norm(d, vb.pp("layer_norm"))?,
        })
    }

    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(mel)?.gelu()?;
        let x = self.conv2.forward(&x)?.gelu()?.transpose(1, 2)?;
        let n = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, n)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.ln_post.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;
    use candle_nn::VarMap;

    /// The same random weights through candle's encoder and this one: the same features.
    #[test]
    fn it_computes_what_candles_encoder_computes() {
        let config = Config {
            num_mel_bins: 8,
            max_source_positions: 24,
            d_model: 32,
            encoder_attention_heads: 4,
            encoder_layers: 2,
            vocab_size: 16,
            max_target_positions: 8,
            decoder_attention_heads: 4,
            decoder_layers: 1,
            suppress_tokens: Vec::new(),
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let theirs =
            candle_transformers::models::whisper::model::Whisper::load(&vb, config.clone())
                .unwrap();
        let ours = Encoder::load(vb.pp("model.encoder"), &config).unwrap();
        // Biases start at zero in a var map: give every weight values of its own.
        for (i, var) in varmap.all_vars().iter().enumerate() {
            let noise = Tensor::randn(0f32, 0.3, var.shape(), &Device::Cpu).unwrap();
            var.set(&(noise + (i as f64) * 1e-3).unwrap()).unwrap();
        }
        let mel = Tensor::randn(0f32, 1.0, (1, 8, 48), &Device::Cpu).unwrap();
        let expected = theirs.encoder.clone().forward(&mel, true).unwrap();
        let got = ours.forward(&mel).unwrap();
        let most = crate::test_support::max_difference(&got, &expected);
        assert!(most < 1e-4, "features differ by {most}");
    }
}
