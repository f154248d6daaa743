//! Whisper in candle: the model converted from CTranslate2 ([`super::ct2`]), Whisper's mel
//! filters computed here, and greedy decoding of one window of speech (at most 30 s) with the
//! guards Whisper needs in practice: a window that is probably not speech, or whose text the
//! model is unsure of or repeats, falls back to sampling at higher temperatures and is dropped
//! when none of them does better, so silence and music give no invented text.

use std::io::Write as _;
use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_transformers::models::whisper::{self as w, audio};

use super::decoder::{Decoder, State};
use super::encoder::Encoder;
use tokenizers::Tokenizer;

use crate::Error;

/// A window is not speech when the model says so with this probability.
const NO_SPEECH: f64 = w::NO_SPEECH_THRESHOLD;
/// Text with a mean log-probability under this is decoded again, hotter.
const LOGPROB: f64 = w::LOGPROB_THRESHOLD;
/// Text that compresses better than this (zlib) is a loop, not speech.
const COMPRESSION: f64 = w::COMPRESSION_RATIO_THRESHOLD;

/// The languages multilingual Whisper knows, in the order of its language tokens (ISO 639-1,
/// and Whisper's own `haw` and `jw` where there is none).
pub const LANGUAGES: [&str; 99] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su",
];

/// A window's language is the detected one only when the model gives it at least this
/// probability; below, the caller's fallback (the file's language so far) is used.
pub const SURE_OF_LANGUAGE: f64 = 0.5;

/// What one window said.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    /// The text, trimmed.
    pub text: String,
    /// The language it was decoded as (ISO 639-1, or Whisper's code where there is none).
    pub language: String,
    /// How sure the model was of that language, when it detected it (a multilingual model
    /// not told the language).
    pub language_prob: Option<f64>,
    /// The mean log-probability of its tokens.
    pub avg_logprob: f64,
    /// How sure the model was that there was no speech.
    pub no_speech: f64,
}

/// A loaded Whisper: the model, its tokenizer and its special tokens. Each transcription
/// has its own decoding state (the weights are shared), so jobs on several workers run side
/// by side, as many at once as its gate lets in.
pub struct Whisper {
    encoder: Encoder,
    decoder: Decoder,
    tokenizer: Tokenizer,
    filters: Vec<f32>,
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
    sot: u32,
    eot: u32,
    no_timestamps: u32,
    no_speech: u32,
    /// The first timestamp token: this and above are never text.
    timestamp_begin: u32,
    /// A multilingual model's language tokens with their codes (`<|es|>`, `es`); empty for
    /// an English-only model.
    languages: Vec<(u32, String)>,
    transcribe: u32,
    config: w::Config,
    /// Transcriptions that run at once: each holds its window's attention.
    gate: crate::gate::Gate,
}

/// Which language a window is decoded as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language<'a> {
    /// This one, whatever the model thinks.
    Fixed(&'a str),
    /// The one the model detects; when it is unsure, the fallback if there is one.
    Detect {
        /// Used when the model gives no language a probability of at least one half.
        fallback: Option<&'a str>,
    },
}

/// Whisper's mel filters (librosa's, Slaney scale and norm), `n_mels × 201` for 16 kHz and a
/// 400-point FFT, row-major; rounded to f32 as librosa stores them, so they equal OpenAI's
/// `mel_filters.npz` bit for bit.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    // librosa's arithmetic, step for step (its order of operations decides the last bits).
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let min_log_mel = min_log_hz / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f >= min_log_hz {
            min_log_mel + (f / min_log_hz).ln() / logstep
        } else {
            f / f_sp
        }
    };
    let mel_to_hz = |m: f64| {
        if m >= min_log_mel {
            min_log_hz * (logstep * (m - min_log_mel)).exp()
        } else {
            f_sp * m
        }
    };
    let bins = w::N_FFT / 2 + 1;
    // np.linspace(0, top, n + 2): i × step, the last exactly `top`.
    let top = hz_to_mel(8000.0);
    let step = top / (n_mels + 1) as f64;
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| {
            mel_to_hz(if i == n_mels + 1 {
                top
            } else {
                i as f64 * step
            })
        })
        .collect();
    let mut out = vec![0f32; n_mels * bins];
    for i in 0..n_mels {
        let enorm = 2.0 / (edges[i + 2] - edges[i]);
        for k in 0..bins {
            let f = k as f64 * 40.0;
            let lower = -(edges[i] - f) / (edges[i + 1] - edges[i]);
            let upper = (edges[i + 2] - f) / (edges[i + 2] - edges[i + 1]);
            // np.maximum(0, np.minimum(lower, upper)), stored as f32, then scaled in f64.
            let low = if upper < lower { upper } else { lower };
            let tri = if low > 0.0 {
                low
            } else if low < 0.0 {
                0.0
            } else {
                low
            } as f32;
            out[i * bins + k] = (f64::from(tri) * enorm) as f32;
        }
    }
    out
}

fn model_error(e: impl std::fmt::Display) -> Error {
    Error::Transient {
        reason: format!("whisper: {e}"),
    }
}

impl Whisper {
    /// Loads `model.safetensors` (converted at install), `tokenizer.json` and the
    /// CTranslate2 `config.json` (the tokens to suppress) from `folder`.
    pub fn load(folder: &Path) -> Result<Self, Error> {
        let tensors = crate::weights::Weights::open(&folder.join("model.safetensors"))
            .map_err(model_error)?;
        // Every shape read here has two dimensions or more (a hand-made folder may lie).
        let dims = |name: &str| -> Result<Vec<usize>, Error> {
            match tensors.dims(name) {
                Some(d) if d.len() >= 2 => Ok(d.to_vec()),
                Some(d) => Err(model_error(format!("{name} has the shape {d:?}"))),
                None => Err(model_error(format!("{name} is missing"))),
            }
        };
        let embed = dims("model.decoder.embed_tokens.weight")?;
        if embed[1] == 0 || embed[1] % 64 != 0 {
            return Err(model_error(format!(
                "a width of {} is no Whisper's (a multiple of 64)",
                embed[1]
            )));
        }
        let layers = |side: &str| {
            (0..)
                .take_while(|n| tensors.contains(&format!("model.{side}.layers.{n}.fc1.weight")))
                .count()
        };
        // Whisper's heads are 64 wide, whatever its size.
        let config = w::Config {
            num_mel_bins: dims("model.encoder.conv1.weight")?[1],
            max_source_positions: 1500,
            d_model: embed[1],
            encoder_attention_heads: embed[1] / 64,
            encoder_layers: layers("encoder"),
            vocab_size: embed[0],
            max_target_positions: dims("model.decoder.embed_positions.weight")?[0],
            decoder_attention_heads: embed[1] / 64,
            decoder_layers: layers("decoder"),
            suppress_tokens: Vec::new(),
        };
        let vb = tensors.into_var_builder(DType::F32, &Device::Cpu);
        let encoder = Encoder::load(vb.pp("model.encoder"), &config).map_err(model_error)?;
        let decoder = Decoder::load(vb.pp("model.decoder"), &config).map_err(model_error)?;
        let tokenizer = Tokenizer::from_file(folder.join("tokenizer.json")).map_err(model_error)?;
        let token = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| model_error(format!("the tokenizer has no {t}")))
        };
        let config_path = folder.join("config.json");
        let ct2: serde_json::Value = std::fs::read(&config_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| model_error(format!("{}: {e}", config_path.display())))?;
        let ids = |key: &str| -> Vec<u32> {
            ct2[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_u64())
                        .map(|v| v as u32)
                        .collect()
                })
                .unwrap_or_default()
        };
        let no_timestamps = token(w::NO_TIMESTAMPS_TOKEN)?;
        // The control tokens never come out as text, whatever the config lists.
        let mut suppress = ids("suppress_ids");
        suppress.extend(
            [
                w::SOT_TOKEN,
                w::TRANSCRIBE_TOKEN,
                w::TRANSLATE_TOKEN,
                "<|startoflm|>",
                "<|startofprev|>",
            ]
            .iter()
            .chain(&w::NO_SPEECH_TOKENS)
            .filter_map(|t| tokenizer.token_to_id(t)),
        );
        // Multilingual Whisper has one more token than English-only (51,865 against 51,864).
        let languages = if config.vocab_size >= 51_865 {
            ids("lang_ids")
                .into_iter()
                .filter_map(|id| {
                    let token = tokenizer.id_to_token(id)?;
                    let code = token.strip_prefix("<|")?.strip_suffix("|>")?.to_owned();
                    Some((id, code))
                })
                .collect()
        } else {
            Vec::new()
        };
        if config.vocab_size >= 51_865 && languages.is_empty() {
            return Err(model_error(format!(
                "{} names no language tokens (lang_ids)",
                config_path.display()
            )));
        }
        Ok(Self {
            gate: crate::gate::Gate::per_cores(),
            encoder,
            decoder,
            filters: mel_filters(config.num_mel_bins),
            languages,
            transcribe: token(w::TRANSCRIBE_TOKEN)?,
            suppress,
            suppress_begin: ids("suppress_ids_begin"),
            sot: token(w::SOT_TOKEN)?,
            eot: token(w::EOT_TOKEN)?,
            no_speech: w::NO_SPEECH_TOKENS
                .iter()
                .find_map(|t| tokenizer.token_to_id(t))
                .ok_or_else(|| model_error("the tokenizer has no no-speech token"))?,
            timestamp_begin: no_timestamps + 1,
            no_timestamps,
            tokenizer,
            config,
        })
    }

    /// Whether the model knows more languages than English (and can tell which is spoken).
    pub fn multilingual(&self) -> bool {
        !self.languages.is_empty()
    }

    /// What is said in `samples` (16 kHz mono, at most 30 s) and in which language; `None`
    /// when it is not speech (or nothing the model is sure of).
    pub fn transcribe(
        &self,
        samples: &[f32],
        language: Language<'_>,
    ) -> Result<Option<Said>, Error> {
        let samples = &samples[..samples.len().min(w::N_SAMPLES)];
        let _pass = self.gate.enter();
        let mel = audio::pcm_to_mel(&self.config, samples, &self.filters);
        let frames = mel.len() / self.config.num_mel_bins;
        let mel = Tensor::from_vec(mel, (1, self.config.num_mel_bins, frames), &Device::Cpu)
            .and_then(|m| m.narrow(2, 0, w::N_FRAMES.min(frames)))
            .map_err(model_error)?;
        let features = self.encoder.forward(&mel).map_err(model_error)?;
        let state = self.decoder.start(&features).map_err(model_error)?;
        let (language, language_prob) = self.language(&state, language)?;
        let prompt: Vec<u32> = match language.and_then(|l| self.languages.get(l)) {
            Some((token, _)) => vec![self.sot, *token, self.transcribe, self.no_timestamps],
            None => vec![self.sot, self.no_timestamps],
        };
        let code = language
            .and_then(|l| self.languages.get(l))
            .map_or("en", |(_, code)| code.as_str());
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for temperature in w::TEMPERATURES {
            let mut said = self.decode(state.restart(), &prompt, temperature, &mut rng)?;
            said.language = code.to_owned();
            said.language_prob = language_prob;
            let looping = compression_ratio(&said.text) > COMPRESSION;
            let unsure = said.avg_logprob < LOGPROB;
            // Stricter than OpenAI's rule (no speech *and* unsure): on silence tiny.en says
            // "you" with confidence while it gives no-speech 0.95. The model saying "no
            // speech" is enough.
            if said.no_speech > NO_SPEECH {
                return Ok(None);
            }
            if !looping && !unsure {
                return Ok((!said.text.is_empty()).then_some(said));
            }
        }
        Ok(None)
    }

    /// The index in `languages` of the window's language, and the model's probability for it
    /// when it was detected; `None` for an English-only model.
    fn language(
        &self,
        state: &State,
        language: Language<'_>,
    ) -> Result<(Option<usize>, Option<f64>), Error> {
        if self.languages.is_empty() {
            return Ok((None, None));
        }
        let index = |code: &str| self.languages.iter().position(|(_, c)| c == code);
        let fallback = match language {
            Language::Fixed(code) => {
                return index(code)
                    .map(|i| (Some(i), None))
                    .ok_or_else(|| Error::BadInput {
                        reason: format!("[speech] language {code:?} is not one this Whisper knows"),
                    });
            }
            Language::Detect { fallback } => fallback.and_then(index),
        };
        // The decoder's first guess after start-of-transcript, among the language tokens.
        let logits = self
            .decoder
            .step(&mut state.restart(), &[self.sot])
            .and_then(|ys| self.decoder.logits(&ys.i((.., 0))?))
            .map_err(model_error)?;
        let scores: Vec<f32> = self
            .languages
            .iter()
            .map(|(t, _)| {
                logits
                    .get(*t as usize)
                    .copied()
                    .unwrap_or(f32::NEG_INFINITY)
            })
            .collect();
        let probs: Vec<f32> = log_softmax(&scores).iter().map(|l| l.exp()).collect();
        let chosen = choose_language(&probs, fallback);
        Ok((Some(chosen), Some(f64::from(probs[chosen]))))
    }

    fn decode(
        &self,
        mut state: State,
        prompt: &[u32],
        temperature: f64,
        rng: &mut u64,
    ) -> Result<Said, Error> {
        let mut tokens = prompt.to_vec();
        let prompt = tokens.len();
        let (mut sum_logprob, mut no_speech) = (0.0, 0.0);
        let vocab = self.config.vocab_size;
        let mut mask = vec![0f32; vocab];
        for &t in self.suppress.iter().chain([&self.no_timestamps]) {
            if (t as usize) < vocab {
                mask[t as usize] = f32::NEG_INFINITY;
            }
        }
        for m in mask.iter_mut().skip(self.timestamp_begin as usize) {
            *m = f32::NEG_INFINITY;
        }
        // Half the decoder's positions, as OpenAI's sample_len; the prompt's count too.
        let max = (self.decoder.max_positions() / 2).saturating_sub(prompt);
        let mut ys = self
            .decoder
            .step(&mut state, &tokens)
            .map_err(model_error)?;
        for i in 0..max {
            if i == 0 {
                // How sure the model is, right after start-of-transcript, that nothing is said.
                let first = self
                    .decoder
                    .logits(&ys.i((.., 0)).map_err(model_error)?)
                    .map_err(model_error)?;
                no_speech = f64::from(log_softmax(&first)[self.no_speech as usize].exp());
            }
            let last = ys.dim(1).map_err(model_error)? - 1;
            let mut logits = self
                .decoder
                .logits(&ys.i((.., last)).map_err(model_error)?)
                .map_err(model_error)?;
            for (l, m) in logits.iter_mut().zip(&mask) {
                *l += m;
            }
            if i == 0 {
                for &t in &self.suppress_begin {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = f32::NEG_INFINITY;
                    }
                }
            }
            let logprobs = log_softmax(&logits);
            let next = if temperature > 0.0 {
                sample(&logits, temperature, rng)
            } else {
                argmax(&logits)
            };
            sum_logprob += f64::from(logprobs[next]);
            let next = next as u32;
            tokens.push(next);
            if next == self.eot {
                break;
            }
            ys = self
                .decoder
                .step(&mut state, &[next])
                .map_err(model_error)?;
        }
        let said: Vec<u32> = tokens[prompt..]
            .iter()
            .copied()
            .filter(|t| *t < self.eot)
            .collect();
        let text = self
            .tokenizer
            .decode(&said, true)
            .map_err(model_error)?
            .trim()
            .to_owned();
        let count = (tokens.len() - prompt).max(1);
        Ok(Said {
            text,
            language: String::new(),
            language_prob: None,
            avg_logprob: sum_logprob / count as f64,
            no_speech,
        })
    }
}

/// The language of a window from the model's probabilities: its best guess, unless it is unsure
/// (under [`SURE_OF_LANGUAGE`]) and the file's main language so far (`fallback`) is a close
/// second (at least a quarter of the best): a short "okay" in a Spanish interview stays
/// Spanish, but a Spanish sentence after English speech is not taken for English.
fn choose_language(probs: &[f32], fallback: Option<usize>) -> usize {
    let best = argmax(probs);
    match fallback {
        Some(i)
            if f64::from(probs[best]) < SURE_OF_LANGUAGE
                && probs.get(i).is_some_and(|p| 4.0 * p >= probs[best]) =>
        {
            i
        }
        _ => best,
    }
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

fn log_softmax(v: &[f32]) -> Vec<f32> {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = v.iter().map(|x| (x - max).exp()).sum();
    let log = sum.ln() + max;
    v.iter().map(|x| x - log).collect()
}

/// A token drawn at `temperature` with a small deterministic generator: the same audio gives
/// the same text.
fn sample(logits: &[f32], temperature: f64, state: &mut u64) -> usize {
    let scaled: Vec<f32> = logits.iter().map(|l| l / temperature as f32).collect();
    let probs: Vec<f32> = log_softmax(&scaled).iter().map(|l| l.exp()).collect();
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    let mut target = (*state >> 11) as f64 / (1u64 << 53) as f64;
    for (i, p) in probs.iter().enumerate() {
        target -= f64::from(*p);
        if target <= 0.0 {
            return i;
        }
    }
    argmax(logits)
}

/// How much better than 1 the text compresses (zlib): Whisper stuck in a loop repeats itself.
fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    // zlib, as OpenAI and faster-whisper measure it (flate2 on zlib-rs: miniz_oxide
    // compresses short repetitive text much worse than zlib, which the threshold assumes).
    let mut gz = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = gz
        .write_all(text.as_bytes())
        .and_then(|()| gz.finish())
        .map_or(text.len(), |b| b.len());
    text.len() as f64 / compressed.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mel_filters_are_whispers() {
        let f = mel_filters(80);
        assert_eq!(f.len(), 80 * 201);
        // Bins 0 and 200 are empty in every filter; the weights sum to 1.99902 (OpenAI's).
        assert!((0..80).all(|i| f[i * 201] == 0.0 && f[i * 201 + 200] == 0.0));
        let sum: f64 = f.iter().map(|x| f64::from(*x)).sum();
        assert!((sum - 1.99902).abs() < 1e-4, "{sum}");
        // Bit for bit the filters OpenAI ships (`mel_filters.npz`, `mel_80`, as little-endian
        // f32), whose sha256 this is.
        use sha2::Digest as _;
        let bytes: Vec<u8> = f.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(
            sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "4f2701b1d287d74a0dc9871026e9519d98cb76426615f2539b0d151a0ae4ec2e"
        );
        // Each filter is one triangle: rising, then falling.
        let peak = (0..201)
            .max_by(|&a, &b| f[201 * 10 + a].total_cmp(&f[201 * 10 + b]))
            .unwrap();
        assert!((peak..200).all(|k| f[2010 + k] >= f[2010 + k + 1]));
    }

    #[test]
    fn an_unsure_guess_takes_the_files_language_only_when_close() {
        // Sure: the guess, whatever the file so far.
        assert_eq!(choose_language(&[0.9, 0.05, 0.05], Some(1)), 0);
        // Unsure, and the file's language close behind: the file's.
        assert_eq!(choose_language(&[0.4, 0.3, 0.3], Some(2)), 2);
        // Unsure, but the file's language far behind: the guess.
        assert_eq!(choose_language(&[0.43, 0.05, 0.47], Some(1)), 2);
        assert_eq!(choose_language(&[0.45, 0.05, 0.5], None), 2);
    }

    #[test]
    fn loops_compress_and_speech_does_not() {
        let speech = "And so my fellow Americans, ask not what your country can do for you.";
        assert!(compression_ratio(speech) < COMPRESSION);
        assert!(compression_ratio(&"Thank you. ".repeat(30)) > COMPRESSION);
        // Whisper base on monkeys screaming: 54 bytes that zlib makes 16 (3.4).
        assert!(compression_ratio("BABY BABY BABY BABY BABY BABY BABY BABY BABY BABY BABY") > 3.0);
    }
}
