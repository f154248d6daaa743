//! Whisper's text decoder with a cache of every layer's self-attention keys and values: each
//! new token costs one position, where candle's decoder runs the whole prefix again at every
//! step (a 30-token line cost 465 positions instead of 30). The weights are the same tensors,
//! under candle's names (`model.decoder.*`).

use candle_core::{D, Device, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use candle_transformers::models::whisper::Config;

/// One attention: query, key (no bias), value and output projections.
#[derive(Debug, Clone)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
}

impl Attention {
    fn load(d: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            query: candle_nn::linear(d, d, vb.pp("q_proj"))?,
            key: candle_nn::linear_no_bias(d, d, vb.pp("k_proj"))?,
            value: candle_nn::linear(d, d, vb.pp("v_proj"))?,
            out: candle_nn::linear(d, d, vb.pp("out_proj"))?,
        })
    }
}

#[derive(Debug, Clone)]
struct Layer {
    attn: Attention,
    attn_ln: LayerNorm,
    cross: Attention,
    cross_ln: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    mlp_ln: LayerNorm,
}

/// Whisper's layer norm (the encoder's too).
pub(super) fn layer_norm(d: usize, vb: VarBuilder) -> Result<LayerNorm> {
    Ok(LayerNorm::new(
        vb.get(d, "weight")?,
        vb.get(d, "bias")?,
        1e-5,
    ))
}

/// `(b, n, d)` → `(b, heads, n, d / heads)` (the encoder's too).
pub(super) fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, n, d) = x.dims3()?;
    x.reshape((b, n, heads, d / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// The decoder's weights; what one transcription has seen lives in a [`State`].
#[derive(Debug, Clone)]
pub struct Decoder {
    embed: Embedding,
    positions: Tensor,
    layers: Vec<Layer>,
    ln: LayerNorm,
    heads: usize,
}

/// One window's decoding: the cross-attention keys and values of its audio features (made
/// once) and the self-attention keys and values of the tokens so far.
#[derive(Debug, Clone)]
pub struct State {
    cross: Vec<(Tensor, Tensor)>,
    past: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl State {
    /// The same audio, no tokens yet (a fresh start at another temperature).
    pub fn restart(&self) -> State {
        State {
            cross: self.cross.clone(),
            past: vec![None; self.past.len()],
            len: 0,
        }
    }
}

impl Decoder {
    /// The decoder under `vb` (`model.decoder`).
    pub fn load(vb: VarBuilder, cfg: &Config) -> Result<Self> {
        let d = cfg.d_model;
        let layers = (0..cfg.decoder_layers)
            .map(|i| {
                let vb = vb.pp(format!("layers.{i}"));
                Ok(Layer {
                    attn: Attention::load(d, vb.pp("self_attn"))?,
                    attn_ln: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
                    cross: Attention::load(d, vb.pp("encoder_attn"))?,
                    cross_ln: layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
                    fc1: candle_nn::linear(d, 4 * d, vb.pp("fc1"))?,
                    fc2: candle_nn::linear(4 * d, d, vb.pp("fc2"))?,
                    mlp_ln: layer_norm(d, vb.pp("final_layer_norm"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed: candle_nn::embedding(cfg.vocab_size, d, vb.pp("embed_tokens"))?,
            positions: vb.get((cfg.max_target_positions, d), "embed_positions.weight")?,
            layers,
            ln: layer_norm(d, vb.pp("layer_norm"))?,
            heads: cfg.decoder_attention_heads,
        })
    }

    /// `(1, n, d)` → `(1, heads, n, d / heads)`.
    fn heads(&self, x: &Tensor) -> Result<Tensor> {
        split_heads(x, self.heads)
    }

    /// A fresh decoding of the audio `features` (`(1, frames, d)`, the encoder's output).
    pub fn start(&self, features: &Tensor) -> Result<State> {
        let cross = self
            .layers
            .iter()
            .map(|l| {
                Ok((
                    self.heads(&l.cross.key.forward(features)?)?,
                    self.heads(&l.cross.value.forward(features)?)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(State {
            past: vec![None; self.layers.len()],
            cross,
            len: 0,
        })
    }

    /// Attention of `q` (`(1, heads, n, dh)`) over `k`, `v` (`(1, heads, m, dh)`), scaled as
    /// Whisper does; `causal`: the n queries are the last n of the m positions.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Result<Tensor> {
        let dh = q.dim(D::Minus1)?;
        let scale = (dh as f64).powf(-0.5);
        let mut w = (q.matmul(&k.t()?)? * scale)?;
        let (n, m) = (q.dim(2)?, k.dim(2)?);
        if causal && n > 1 {
            let mask: Vec<f32> = (0..n)
                .flat_map(|i| {
                    (0..m).map(move |j| {
                        if j > m - n + i {
                            f32::NEG_INFINITY
                        } else {
                            0.0
                        }
                    })
                })
                .collect();
            w = w.broadcast_add(&Tensor::from_vec(mask, (n, m), q.device())?)?;
        }
        let wv = candle_nn::ops::softmax_last_dim(&w)?.matmul(v)?;
        let (b, h, n, dh) = wv.dims4()?;
        wv.transpose(1, 2)?.reshape((b, n, h * dh))
    }

    /// Runs the new `tokens` after those `state` has seen; their hidden states, `(1, n, d)`.
    pub fn step(&self, state: &mut State, tokens: &[u32]) -> Result<Tensor> {
        let n = tokens.len();
        let ids = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let mut x = self
            .embed
            .forward(&ids)?
            .broadcast_add(&self.positions.narrow(0, state.len, n)?)?;
        for (i, layer) in self.layers.iter().enumerate() {
            let h = layer.attn_ln.forward(&x)?;
            let q = self.heads(&layer.attn.query.forward(&h)?)?;
            let mut k = self.heads(&layer.attn.key.forward(&h)?)?;
            let mut v = self.heads(&layer.attn.value.forward(&h)?)?;
            if let Some((pk, pv)) = &state.past[i] {
                k = Tensor::cat(&[pk, &k], 2)?;
                v = Tensor::cat(&[pv, &v], 2)?;
            }
            let a = self.attend(&q, &k, &v, true)?;
            state.past[i] = Some((k, v));
            x = (x + layer.attn.out.forward(&a)?)?;

            let h = layer.cross_ln.forward(&x)?;
            let q = self.heads(&layer.cross.query.forward(&h)?)?;
            let (ck, cv) = &state.cross[i];
            let a = self.attend(&q, ck, cv, false)?;
            x = (&x + layer.cross.out.forward(&a)?)?;

            let h = layer.mlp_ln.forward(&x)?;
            x = (&x + layer.fc2.forward(&layer.fc1.forward(&h)?.gelu()?)?)?;
        }
        state.len += n;
        self.ln.forward(&x)
    }

    /// The next-token scores after the hidden state `hidden` (`(1, d)`): `(vocab,)`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Vec<f32>> {
        hidden
            .matmul(&self.embed.embeddings().t()?)?
            .squeeze(0)?
            .to_vec1()
    }

    /// Positions a decoding may hold.
    pub fn max_positions(&self) -> usize {
        self.positions.dim(0).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::DType;
    use candle_nn::VarMap;
    use candle_transformers::models::whisper::model::Whisper as Reference;

    use super::*;

    fn largest_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    /// With the cache, token by token, the decoder says what candle's decoder says running the
    /// whole sequence at once: a tiny Whisper of random weights.
    #[test]
    fn the_cache_changes_nothing() {
        let device = Device::Cpu;
        let config = Config {
            num_mel_bins: 8,
            max_source_positions: 6,
            d_model: 32,
            encoder_attention_heads: 2,
            encoder_layers: 1,
            vocab_size: 50,
            max_target_positions: 16,
            decoder_attention_heads: 2,
            decoder_layers: 2,
            suppress_tokens: Vec::new(),
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let mut reference = Reference::load(&vb, config.clone()).unwrap();
        let ours = Decoder::load(vb.pp("model.decoder"), &config).unwrap();
        // Both hold the same variables: drawn now, both see the draw.
        for var in varmap.all_vars() {
            var.set(&Tensor::randn(0f32, 0.5, var.shape(), &device).unwrap())
                .unwrap();
        }
        let features = Tensor::randn(0f32, 1.0, (1, 6, 32), &device).unwrap();
        let tokens = [3u32, 7, 1, 42, 9, 0, 13];

        // A prompt of three, then one token at a time.
        let mut state = ours.start(&features).unwrap();
        let mut hidden = vec![ours.step(&mut state, &tokens[..3]).unwrap()];
        for t in &tokens[3..] {
            hidden.push(ours.step(&mut state, &[*t]).unwrap());
        }
        let cached = Tensor::cat(&hidden, 1).unwrap();
        let input = Tensor::new(&tokens, &device).unwrap().unsqueeze(0).unwrap();
        let whole = reference.decoder.forward(&input, &features, true).unwrap();
        assert_eq!(cached.dims(), whole.dims());
        let diff = largest_difference(&cached, &whole);
        assert!(diff < 1e-4, "{diff}");

        // And the next-token scores of the last position agree too.
        let last = whole.narrow(1, tokens.len() - 1, 1).unwrap();
        let theirs: Vec<f32> = reference
            .decoder
            .final_linear(&last)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mine = ours.logits(&last.squeeze(1).unwrap()).unwrap();
        assert_eq!(mine.len(), 50);
        assert!(mine.iter().zip(&theirs).all(|(a, b)| (a - b).abs() < 1e-4));
        // A different history gives different states: the test can fail.
        let mut other = ours.start(&features).unwrap();
        let shuffled = ours.step(&mut other, &[7, 3, 1]).unwrap();
        let first = ours
            .step(&mut ours.start(&features).unwrap(), &[3, 7, 1])
            .unwrap();
        let moved = largest_difference(&shuffled, &first);
        assert!(moved > 1e-3, "{moved}");
    }
}
