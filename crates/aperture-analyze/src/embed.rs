//! Sentence embeddings with a BERT model in candle: all-MiniLM-L6-v2 (384 dimensions) from
//! the offline pack, or any BERT sentence-transformer with the same files.
//!
//! The model folder holds `config.json`, `tokenizer.json` and `model.safetensors`. Texts are
//! tokenised (truncated to 256 tokens, as sentence-transformers does for this model), run
//! through the encoder in batches, mean-pooled over their real tokens and L2-normalised, so
//! that a dot product is the cosine similarity.

use std::path::Path;
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, Tokenizer, TruncationParams};

use crate::Error;

/// Tokens per text, as sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
pub const MAX_TOKENS: usize = 256;
/// Texts encoded in one forward pass, at most.
const BATCH: usize = 32;
/// Passes run side by side, each on its share of the cores ([`crate::onnx::Sessions`]):
/// two, whatever the cores, so that passes in flight stay within [`BATCH_AREA`].
const SIDE_BY_SIDE: usize = 2;
/// The size of the passes in flight, at most, as texts × padded length²: long texts' memory
/// grows with the square of their length (attention; below about 200 tokens the feed-forward
/// layers' linear term is larger, and short passes are small anyway). This allows two texts
/// of [`MAX_TOKENS`] at once: measured on 30 texts of 2,000 words (2 cores, debug build with
/// optimised dependencies), 8 passages a pass took 1.26 s a text and 530 MB, 4 took 0.97 s
/// and 400 MB, 2 take 0.82 s and 300 MB (1 took the same as 2). Sentences and captions (up
/// to 45 tokens) still go [`BATCH`] to a pass.
const BATCH_AREA: usize = 2 * MAX_TOKENS * MAX_TOKENS;
/// Bytes of one text given to the tokenizer: far more than [`MAX_TOKENS`] tokens ever span,
/// so a text of megabytes (a file that is one endless "word" of markup) costs no more than
/// its first tokens; the tokenizer would otherwise split all of it before truncating.
const MAX_TEXT_BYTES: usize = MAX_TOKENS * 32;

/// A sentence encoder (MiniLM and other BERT models): texts into unit vectors, mean-pooled.
pub struct TextEmbedder {
    engine: Engine,
    tokenizer: Tokenizer,
    dimensions: usize,
}

/// Where the encoder runs: ONNX Runtime on the CPU (about twice as fast as candle here,
/// measured by `benches/analyzers.rs`), or candle, which also drives GPUs.
enum Engine {
    /// [`SIDE_BY_SIDE`] sessions: the passes of a call run side by side.
    Onnx(crate::onnx::Sessions),
    Candle {
        model: Box<BertModel>,
        device: Device,
    },
}

impl TextEmbedder {
    /// Loads a model folder to run in candle, on the CPU (or, in builds with the `cuda`
    /// feature, the first GPU).
    pub fn load(dir: &Path) -> Result<Self, Error> {
        Self::load_with(dir, None)
    }

    /// As [`TextEmbedder::load`], on ONNX Runtime from `library` when one is given and no
    /// GPU is in use: the graph is built in memory from the same weights.
    pub fn load_with(dir: &Path, library: Option<&Path>) -> Result<Self, Error> {
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
        // Padded per pass, to the longest text of the pass.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS.min(config.max_position_embeddings),
                ..TruncationParams::default()
            }))
            .map_err(|e| missing("tokenizer.json", &e))?;
        let weights = dir.join("model.safetensors");
        let engine = match onnx_engine(
            library,
            &device,
            &weights,
            |w| crate::bert_onnx::onnx_model(w, &config),
            |library, graph, weights| {
                crate::onnx::sessions_from_memory(
                    library,
                    graph,
                    SIDE_BY_SIDE,
                    (crate::onnx::default_threads() / SIDE_BY_SIDE).max(1),
                    weights,
                )
            },
        ) {
            Some(session) => Engine::Onnx(session?),
            None => {
                let vb = mmap_weights(&weights, &device)
                    .map_err(|e| missing("model.safetensors", &e))?;
                let model =
                    BertModel::load(vb, &config).map_err(|e| missing("the BERT weights", &e))?;
                Engine::Candle {
                    model: Box::new(model),
                    device,
                }
            }
        };
        Ok(Self {
            engine,
            tokenizer,
            dimensions: config.hidden_size,
        })
    }

    /// The length of its vectors.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One unit-length vector per text, in the order given. Texts are batched by length,
    /// so that a batch pads its short texts to a similar length rather than to the longest.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Error> {
        let texts: Vec<&str> = texts
            .iter()
            .map(|t| &t[..t.floor_char_boundary(MAX_TEXT_BYTES)])
            .collect();
        let mut encodings =
            self.tokenizer
                .encode_batch(texts, true)
                .map_err(|e| Error::Transient {
                    reason: format!("cannot tokenise the text: {e}"),
                })?;
        // What truncation cut off is kept beside each encoding; it is not embedded.
        for encoding in &mut encodings {
            drop(encoding.take_overflowing());
        }
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        // Passes run side by side share the memory of one.
        let side_by_side = match &self.engine {
            Engine::Onnx(sessions) => sessions.count(),
            Engine::Candle { .. } => 1,
        };
        let area = BATCH_AREA / side_by_side;
        let mut chunks = Vec::new();
        let mut rest = order.as_slice();
        while !rest.is_empty() {
            // The longest text comes first and sets the padded length.
            let tokens = encodings[rest[0]].len().max(1);
            let (chunk, after) =
                rest.split_at((area / (tokens * tokens)).clamp(1, BATCH).min(rest.len()));
            chunks.push(chunk);
            rest = after;
        }
        let run = |chunk: &[usize]| {
            let mut batch: Vec<tokenizers::Encoding> =
                chunk.iter().map(|&i| encodings[i].clone()).collect();
            tokenizers::utils::padding::pad_encodings(&mut batch, &PaddingParams::default())
                .map_err(anyhow_like::msg)
                .and_then(|()| self.embed_batch(&batch))
                .map_err(|e| Error::Transient {
                    reason: format!("text embedding failed: {e}"),
                })
        };
        let vectors = side_by_side_each(&chunks, side_by_side, |c| run(c))?;
        let mut out = vec![Vec::new(); encodings.len()];
        for (chunk, vectors) in chunks.iter().zip(vectors) {
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Vectors of one pass of encodings padded to one length.
    fn embed_batch(
        &self,
        encodings: &[tokenizers::Encoding],
    ) -> anyhow_like::Result<Vec<Vec<f32>>> {
        match &self.engine {
            Engine::Onnx(sessions) => self.embed_onnx(sessions, encodings),
            Engine::Candle { model, device } => Self::embed_candle(model, device, encodings),
        }
    }

    fn embed_onnx(
        &self,
        sessions: &crate::onnx::Sessions,
        encodings: &[tokenizers::Encoding],
    ) -> anyhow_like::Result<Vec<Vec<f32>>> {
        let n = encodings.len();
        let t = encodings.first().map_or(0, |e| e.len());
        debug_assert!(
            encodings.iter().all(|e| e.len() == t),
            "a pass's encodings are padded to one length"
        );
        let column = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<i64> {
            encodings
                .iter()
                .flat_map(|e| f(e).iter().map(|&v| i64::from(v)))
                .collect()
        };
        let (ids, mask, types) = (
            column(&|e| e.get_ids()),
            column(&|e| e.get_attention_mask()),
            column(&|e| e.get_type_ids()),
        );
        let hidden = sessions.with(|session| -> anyhow_like::Result<Vec<f32>> {
            let outputs = session.run(ort::inputs![
                "input_ids" => ort::value::TensorRef::from_array_view(([n, t], ids.as_slice()))?,
                "attention_mask" => ort::value::TensorRef::from_array_view(([n, t], mask.as_slice()))?,
                "token_type_ids" => ort::value::TensorRef::from_array_view(([n, t], types.as_slice()))?,
            ])?;
            Ok(outputs["hidden"].try_extract_tensor::<f32>()?.1.to_vec())
        })?;
        let h = self.dimensions;
        Ok((0..n)
            .map(|i| {
                // Mean over the real tokens only: padding must not pull the average.
                let mut sum = vec![0f32; h];
                let mut count = 0f32;
                for j in 0..t {
                    if mask[i * t + j] == 0 {
                        continue;
                    }
                    count += 1.0;
                    let row = &hidden[(i * t + j) * h..(i * t + j + 1) * h];
                    for (s, x) in sum.iter_mut().zip(row) {
                        *s += x;
                    }
                }
                let mean: Vec<f32> = sum.iter().map(|s| s / count.max(1e-9)).collect();
                let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                mean.iter().map(|x| x / norm).collect()
            })
            .collect())
    }

    fn embed_candle(
        model: &BertModel,
        device: &Device,
        encodings: &[tokenizers::Encoding],
    ) -> anyhow_like::Result<Vec<Vec<f32>>> {
        let rows = |f: &dyn Fn(&tokenizers::Encoding) -> Vec<u32>| -> candle_core::Result<Tensor> {
            let rows: Vec<Tensor> = encodings
                .iter()
                .map(|e| Tensor::new(f(e).as_slice(), device))
                .collect::<candle_core::Result<_>>()?;
            Tensor::stack(&rows, 0)
        };
        let ids = rows(&|e| e.get_ids().to_vec())?;
        let types = rows(&|e| e.get_type_ids().to_vec())?;
        let mask = rows(&|e| e.get_attention_mask().to_vec())?;
        let hidden = model.forward(&ids, &types, Some(&mask))?;
        // Mean over the real tokens only: padding must not pull the average.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
    }
}

/// A var builder over a safetensors file of a model folder, memory-mapped.
pub(crate) fn mmap_weights(
    weights: &Path,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    // SAFETY: the file is memory-mapped read-only; model folders are replaced by rename,
    // never rewritten in place, while a process uses them.
    unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, device) }
}

/// `run` on every item, `workers` threads taking the next item in turn (one thread when
/// there is one worker or one item); results in the items' order. A failure stops the others
/// from taking more, and is returned.
fn side_by_side_each<I: Sync, T: Send>(
    items: &[I],
    workers: usize,
    run: impl Fn(&I) -> Result<T, Error> + Sync,
) -> Result<Vec<T>, Error> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items.iter().map(run).collect();
    }
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let done = Mutex::new((0..items.len()).map(|_| None).collect::<Vec<_>>());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let result = run(item);
                    failed.fetch_or(result.is_err(), Ordering::Relaxed);
                    done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                }
            });
        }
    });
    // Items left unrun follow a failed one, whose error is returned.
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let ran = done.len();
    let out: Vec<T> = done.into_iter().flatten().collect::<Result<_, _>>()?;
    if out.len() != ran {
        return Err(Error::Transient {
            reason: "text embedding failed: a pass did not run".into(),
        });
    }
    Ok(out)
}

/// What `open` makes (a session, or a pool of them) of the graph `build` makes from
/// `weights`, when the network should run on ONNX Runtime: the library is installed and no
/// GPU is in use. `None`: run it in candle.
pub(crate) fn onnx_engine<T>(
    library: Option<&Path>,
    device: &Device,
    weights: &Path,
    build: impl FnOnce(&Path) -> candle_core::Result<Vec<u8>>,
    open: impl FnOnce(&Path, &[u8], &Path) -> Result<T, Error>,
) -> Option<Result<T, Error>> {
    let library = library.filter(|_| device.is_cpu())?;
    Some(
        build(weights)
            .map_err(|e| Error::Transient {
                reason: format!(
                    "cannot build the ONNX graph from {}: {e}",
                    weights.display()
                ),
            })
            .and_then(|graph| open(library, &graph, weights)),
    )
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
pub use aperture_core::dot as cosine;

/// A small error type for the candle/tokenizers plumbing inside this module.
mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

    pub fn msg(e: impl std::fmt::Display) -> Box<dyn std::error::Error + Send + Sync> {
        e.to_string().into()
    }
}
