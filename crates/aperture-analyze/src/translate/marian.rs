//! Marian neural translation models (OPUS-MT, `Helsinki-NLP/opus-mt-ru-en`) in candle, for
//! users who pull them from the Hugging Face hub (`aperture models pull
//! Helsinki-NLP/opus-mt-ru-en`): candle's `marian::MTModel`, greedy decoding with its
//! key-value cache, and the SentencePiece unigram tokenizer of the model's `source.spm` read
//! here (the hub's OPUS-MT repositories have no `tokenizer.json`) into a `tokenizers`
//! unigram model, its pieces mapped to ids by `vocab.json`.
//!
//! A model is found in the models folder's hub copies (`hf/ORG/opus-mt-XX-YY`); its languages
//! are the last two parts of its name. Text is translated a sentence at a time (lines, then
//! sentence ends), each cut at [`MAX_SOURCE_TOKENS`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::marian::{Config, MTModel};

use super::engine::{Error, Pair};

/// Source tokens translated at once (OPUS-MT models take 512 positions): a longer sentence
/// is translated in windows of this many.
pub const MAX_SOURCE_TOKENS: usize = 256;

/// The files of an OPUS-MT model that [`Marian`] reads: what `aperture models pull` fetches
/// for one.
pub const FILES: &[&str] = aperture_models::OPUS_MT_FILES;

/// One Marian model, loaded on first use.
pub struct Marian {
    id: String,
    from: String,
    to: String,
    folder: PathBuf,
    version: String,
    loaded: Mutex<Option<Loaded>>,
}

struct Loaded {
    model: MTModel,
    config: Config,
    tokenizer: tokenizers::Tokenizer,
    vocab: HashMap<String, u32>,
    pieces: Vec<String>,
    unk: u32,
}

impl Marian {
    /// Every OPUS-MT model pulled into `models_dir` (`hf/ORG/opus-mt-XX-YY`, complete and
    /// verified) whose name gives its two languages.
    pub fn discover(models_dir: &Path) -> Vec<Marian> {
        let Ok(orgs) = std::fs::read_dir(models_dir.join("hf")) else {
            return Vec::new();
        };
        let mut found: Vec<Marian> = orgs
            .filter_map(|e| e.ok())
            .filter_map(|org| std::fs::read_dir(org.path()).ok().map(|d| (org, d)))
            .flat_map(|(org, models)| {
                let org = org.file_name().to_string_lossy().into_owned();
                models.filter_map(move |m| {
                    let name = m.ok()?.file_name().to_string_lossy().into_owned();
                    let id = format!("{org}/{name}");
                    let folder = aperture_models::require_hub(models_dir, &id).ok()?;
                    Marian::open(&folder, &id).ok()
                })
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// The model in `folder`, pulled as hub model `id`; nothing loads yet.
    pub fn open(folder: &Path, id: &str) -> Result<Marian, String> {
        let (from, to) = languages(id).ok_or_else(|| {
            format!("{id}: not an OPUS-MT name ending in its two languages (opus-mt-ru-en)")
        })?;
        if let Some(missing) = FILES.iter().find(|f| !folder.join(f).is_file()) {
            return Err(format!(
                "{id}: {missing} is missing from {}",
                folder.display()
            ));
        }
        // The files' fingerprint from the pull's record (a folder copied by hand has none).
        let version =
            aperture_models::fingerprint(folder).unwrap_or_else(|_| "unrecorded".to_owned());
        Ok(Marian {
            id: id.to_owned(),
            from,
            to,
            folder: folder.to_owned(),
            version,
            loaded: Mutex::new(None),
        })
    }

    fn failed(&self, reason: impl std::fmt::Display) -> Error {
        Error::Failed {
            engine: "marian",
            pair: self.id.clone(),
            reason: reason.to_string(),
        }
    }

    fn load(&self) -> Result<Loaded, Error> {
        let read = |name: &str| {
            std::fs::read(self.folder.join(name)).map_err(|e| self.failed(format!("{name}: {e}")))
        };
        let config = config(&read("config.json")?).map_err(|e| self.failed(e))?;
        let vocab: HashMap<String, u32> = serde_json::from_slice(&read("vocab.json")?)
            .map_err(|e| self.failed(format!("vocab.json: {e}")))?;
        // Ids index the model's output: one past its vocabulary is a damaged file.
        let size = config.decoder_vocab_size.unwrap_or(config.vocab_size);
        if let Some((piece, id)) = vocab.iter().find(|(_, id)| **id as usize >= size) {
            return Err(self.failed(format!(
                "vocab.json gives {piece:?} the id {id}, past the model's {size} outputs"
            )));
        }
        let mut pieces = vec![String::new(); size];
        for (piece, id) in &vocab {
            pieces[*id as usize] = piece.clone();
        }
        let unk = *vocab
            .get("<unk>")
            .ok_or_else(|| self.failed("vocab.json has no <unk>"))?;
        let tokenizer = unigram(&read("source.spm")?).map_err(|e| self.failed(e))?;
        let device = Device::Cpu;
        // SAFETY: the file is the verified model file in the models folder, which nothing
        // rewrites while it is mapped (installs replace folders by renaming).
        let vb = unsafe {
            VarBuilder::from_mmaped_safetensors(
                &[self.folder.join("model.safetensors")],
                DType::F32,
                &device,
            )
        }
        .map_err(|e| self.failed(e))?;
        let model = MTModel::new(&config, vb).map_err(|e| self.failed(e))?;
        Ok(Loaded {
            model,
            config,
            tokenizer,
            vocab,
            pieces,
            unk,
        })
    }

    /// One sentence through the model, greedily: its tokens in windows of
    /// [`MAX_SOURCE_TOKENS`], each decoded to at most twice its length (and never past the
    /// model's positions); an error past `deadline`.
    fn sentence(
        &self,
        loaded: &mut Loaded,
        text: &str,
        deadline: std::time::Instant,
    ) -> Result<String, Error> {
        let encoding = loaded
            .tokenizer
            .encode(text, false)
            .map_err(|e| self.failed(e))?;
        let ids: Vec<u32> = encoding
            .get_tokens()
            .iter()
            .map(|t| *loaded.vocab.get(t).unwrap_or(&loaded.unk))
            .collect();
        let mut words = Vec::new();
        for window in ids.chunks(MAX_SOURCE_TOKENS) {
            if std::time::Instant::now() > deadline {
                return Err(Error::Timeout {
                    engine: "marian",
                    pair: self.id.clone(),
                    secs: MARIAN_DEADLINE.as_secs(),
                });
            }
            let mut source = window.to_vec();
            source.push(loaded.config.eos_token_id);
            let out = decode(loaded, &source);
            loaded.model.reset_kv_cache();
            let out = out.map_err(|e| self.failed(e))?;
            let text: String = out
                .iter()
                .filter_map(|id| loaded.pieces.get(*id as usize))
                .filter(|p| !(p.starts_with('<') && p.ends_with('>')))
                .map(String::as_str)
                .collect();
            words.push(text.replace('\u{2581}', " ").trim().to_owned());
        }
        Ok(words.join(" "))
    }
}

/// Time one call of [`Marian`]'s `translate` may take, checked between windows of text.
pub const MARIAN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Greedy decoding of one window of source ids: the target ids, without the start token.
fn decode(loaded: &mut Loaded, source: &[u32]) -> candle_core::Result<Vec<u32>> {
    let device = Device::Cpu;
    let input = Tensor::new(source, &device)?.unsqueeze(0)?;
    let encoded = loaded.model.encoder().forward(&input, 0)?;
    let mut out = vec![loaded.config.decoder_start_token_id];
    // A translation rarely runs past twice its source; a model that does is stopped, and
    // never past the positions it has.
    let steps = (2 * source.len() + 10).min(loaded.config.max_position_embeddings - 1);
    for step in 0..steps {
        let context = if step == 0 {
            &out[..]
        } else {
            &out[out.len() - 1..]
        };
        let input = Tensor::new(context, &device)?.unsqueeze(0)?;
        let logits = loaded
            .model
            .decode(&input, &encoded, out.len() - context.len())?
            .squeeze(0)?;
        let last = logits.get(logits.dim(0)? - 1)?;
        let mut scores: Vec<f32> = last.to_vec1()?;
        if let Some(pad) = scores.get_mut(loaded.config.pad_token_id as usize) {
            *pad = f32::NEG_INFINITY;
        }
        let next = scores
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(loaded.config.eos_token_id, |(i, _)| i as u32);
        if next == loaded.config.eos_token_id {
            break;
        }
        out.push(next);
    }
    out.remove(0);
    Ok(out)
}

impl Pair for Marian {
    fn from(&self) -> &str {
        &self.from
    }
    fn to(&self) -> &str {
        &self.to
    }
    fn engine(&self) -> &'static str {
        "marian"
    }
    fn model(&self) -> String {
        self.id.clone()
    }
    fn version(&self) -> String {
        self.version.clone()
    }

    fn translate(&self, texts: &[&str]) -> Result<Vec<String>, Error> {
        let mut guard = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            *guard = Some(self.load()?);
        }
        let loaded = guard.as_mut().expect("loaded above");
        let deadline = std::time::Instant::now() + MARIAN_DEADLINE;
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let mut translated = String::new();
            for (sentence, after) in sentences(text) {
                if !sentence.trim().is_empty() {
                    translated.push_str(&self.sentence(loaded, sentence, deadline)?);
                }
                translated.push_str(after);
            }
            out.push(translated.trim_end().to_owned());
        }
        Ok(out)
    }
}

/// `ru` and `en` of `Helsinki-NLP/opus-mt-ru-en` (or `opus-mt-tc-big-ru-en`): the last two
/// parts of the name, when they are two or three lower-case letters.
fn languages(id: &str) -> Option<(String, String)> {
    let name = id.rsplit('/').next()?;
    if !name.starts_with("opus-mt-") {
        return None;
    }
    let mut parts = name.rsplit('-');
    let (to, from) = (parts.next()?, parts.next()?);
    let code = |c: &str| (2..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_lowercase());
    (code(from) && code(to)).then(|| (from.to_owned(), to.to_owned()))
}

/// The model's `config.json` as candle's Marian reads it; keys older exports leave out take
/// their usual values.
fn config(bytes: &[u8]) -> Result<Config, String> {
    let mut json: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("config.json: {e}"))?;
    let object = json.as_object_mut().ok_or("config.json is not an object")?;
    for (key, value) in [
        ("use_cache", serde_json::json!(true)),
        ("is_encoder_decoder", serde_json::json!(true)),
        ("share_encoder_decoder_embeddings", serde_json::json!(true)),
        ("scale_embedding", serde_json::json!(true)),
    ] {
        object.entry(key).or_insert(value);
    }
    if !object.contains_key("forced_eos_token_id") {
        let eos = object.get("eos_token_id").cloned().unwrap_or_default();
        object.insert("forced_eos_token_id".into(), eos);
    }
    serde_json::from_value(json).map_err(|e| format!("config.json: {e}"))
}

/// A SentencePiece model file (`*.spm`, a protocol buffer) as a `tokenizers` unigram
/// tokenizer with SentencePiece's normalisation (NFKC) and word boundaries (`▁`).
fn unigram(spm: &[u8]) -> Result<tokenizers::Tokenizer, String> {
    let pieces = spm_pieces(spm)?;
    if pieces.is_empty() {
        return Err("source.spm holds no pieces".into());
    }
    let unk = pieces.iter().position(|(_, _, kind)| *kind == 2);
    let vocab: Vec<(String, f64)> = pieces
        .into_iter()
        .map(|(piece, score, _)| (piece, f64::from(score)))
        .collect();
    let model = tokenizers::models::unigram::Unigram::from(vocab, unk, false)
        .map_err(|e| format!("source.spm: {e}"))?;
    let mut tokenizer = tokenizers::Tokenizer::new(model);
    tokenizer.with_normalizer(Some(tokenizers::normalizers::unicode::NFKC));
    tokenizer.with_pre_tokenizer(Some(tokenizers::pre_tokenizers::metaspace::Metaspace::new(
        '\u{2581}',
        tokenizers::pre_tokenizers::metaspace::PrependScheme::Always,
        true,
    )));
    Ok(tokenizer)
}

/// The pieces of a SentencePiece `ModelProto`: (piece, score, type) of each
/// `SentencePiece` in field 1; every other field is skipped by its wire type.
fn spm_pieces(bytes: &[u8]) -> Result<Vec<(String, f32, u64)>, String> {
    let mut out = Vec::new();
    let mut reader = Proto(bytes);
    while let Some((field, value)) = reader.next()? {
        if let (1, Value::Bytes(message)) = (field, value) {
            let (mut piece, mut score, mut kind) = (String::new(), 0.0, 1);
            let mut inner = Proto(message);
            while let Some((field, value)) = inner.next()? {
                match (field, value) {
                    (1, Value::Bytes(b)) => piece = String::from_utf8_lossy(b).into_owned(),
                    (2, Value::Fixed32(v)) => score = f32::from_bits(v),
                    (3, Value::Varint(v)) => kind = v,
                    _ => {}
                }
            }
            out.push((piece, score, kind));
        }
    }
    Ok(out)
}

/// A protocol buffer field's value, by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// Reads the fields of one protocol buffer message.
struct Proto<'a>(&'a [u8]);

impl<'a> Proto<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.0.split_first().ok_or("a truncated varint")?;
            self.0 = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a varint longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "a field of {n} bytes where {} remain",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn next(&mut self) -> Result<Option<(u64, Value<'a>)>, String> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        Ok(Some((key >> 3, value)))
    }
}

/// `text` as sentences, each with what follows it (the space or line break to keep): cut at
/// line breaks and after `.`, `!`, `?` followed by a space.
fn sentences(text: &str) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let end_here = match bytes[i] {
            b'\n' => Some(i),
            b'.' | b'!' | b'?' if bytes.get(i + 1) == Some(&b' ') => Some(i + 1),
            _ => None,
        };
        if let Some(end) = end_here {
            let mut after = end;
            while after < bytes.len() && (bytes[after] == b' ' || bytes[after] == b'\n') {
                after += 1;
            }
            out.push((&text[start..end], &text[end..after]));
            start = after;
            i = after;
        } else {
            i += 1;
        }
    }
    if start < text.len() {
        out.push((&text[start..], ""));
    }
    out
}

/// A tiny Marian with random weights in the hub layout, for tests of the plumbing (its
/// translations are nonsense, the same every run).
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use std::path::Path;

    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    use candle_transformers::models::marian::{Config, MTModel};

    /// The pieces of the tiny model's vocabulary: specials, then words and letters.
    const PIECES: &[&str] = &[
        "</s>",
        "<unk>",
        "<pad>",
        "▁привет",
        "▁мир",
        "▁hello",
        "▁world",
        "▁",
        "а",
        "б",
        "в",
        "h",
        "e",
        "l",
        "o",
    ];

    /// Writes the five files of an OPUS-MT model into `folder`: a two-layer model of width
    /// 16 with random weights, its SentencePiece model and vocabulary.
    pub fn tiny_marian(folder: &Path) {
        std::fs::create_dir_all(folder).unwrap();
        let config = serde_json::json!({
            "vocab_size": PIECES.len(),
            "decoder_vocab_size": PIECES.len(),
            "max_position_embeddings": 64,
            "encoder_layers": 1,
            "encoder_ffn_dim": 32,
            "encoder_attention_heads": 2,
            "decoder_layers": 1,
            "decoder_ffn_dim": 32,
            "decoder_attention_heads": 2,
            "use_cache": true,
            "is_encoder_decoder": true,
            "activation_function": "swish",
            "d_model": 16,
            "decoder_start_token_id": 2,
            "scale_embedding": true,
            "pad_token_id": 2,
            "eos_token_id": 0,
            "forced_eos_token_id": 0,
            "share_encoder_decoder_embeddings": true
        });
        std::fs::write(folder.join("config.json"), config.to_string()).unwrap();
        let cfg: Config = serde_json::from_value(config).unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        MTModel::new(&cfg, vb).unwrap();
        // Neither the end (id 0), the unknown piece (id 1) nor a bare word boundary (id 7) is
        // ever likeliest: a translation runs to its length cap, so every run makes letters,
        // whatever the random weights.
        {
            let data = varmap.data().lock().unwrap();
            let mut bias = vec![0f32; PIECES.len()];
            for id in [0, 1, 7] {
                bias[id] = -1e4;
            }
            data.get("final_logits_bias")
                .unwrap()
                .set(&candle_core::Tensor::from_vec(bias, (1, PIECES.len()), &Device::Cpu).unwrap())
                .unwrap();
        }
        varmap.save(folder.join("model.safetensors")).unwrap();
        let vocab: serde_json::Map<String, serde_json::Value> = PIECES
            .iter()
            .enumerate()
            .map(|(i, p)| ((*p).to_owned(), i.into()))
            .collect();
        std::fs::write(
            folder.join("vocab.json"),
            serde_json::Value::Object(vocab).to_string(),
        )
        .unwrap();
        let spm = spm(PIECES);
        std::fs::write(folder.join("source.spm"), &spm).unwrap();
        std::fs::write(folder.join("target.spm"), &spm).unwrap();
    }

    /// A SentencePiece `ModelProto` holding `pieces` (`<unk>` typed unknown, `</s>` and
    /// `<pad>` control, the rest normal, longer pieces scored higher).
    pub fn spm(pieces: &[&str]) -> Vec<u8> {
        fn varint(out: &mut Vec<u8>, mut v: u64) {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
        let mut out = Vec::new();
        for piece in pieces {
            let mut inner = vec![0x0a];
            varint(&mut inner, piece.len() as u64);
            inner.extend_from_slice(piece.as_bytes());
            inner.push(0x15);
            inner.extend_from_slice(&(-10.0 + piece.chars().count() as f32).to_le_bytes());
            let kind = match *piece {
                "<unk>" => 2,
                "</s>" | "<pad>" => 3,
                _ => 1,
            };
            inner.push(0x18);
            varint(&mut inner, kind);
            out.push(0x0a);
            varint(&mut out, inner.len() as u64);
            out.extend_from_slice(&inner);
        }
        // A field the reader skips: a trainer spec (field 2) of one varint.
        out.extend_from_slice(&[0x12, 0x02, 0x08, 0x01]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_languages() {
        assert_eq!(
            languages("Helsinki-NLP/opus-mt-ru-en"),
            Some(("ru".into(), "en".into()))
        );
        assert_eq!(
            languages("Helsinki-NLP/opus-mt-tc-big-fr-en"),
            Some(("fr".into(), "en".into()))
        );
        assert_eq!(languages("Helsinki-NLP/opus-mt-en-ROMANCE"), None);
        assert_eq!(languages("openai/clip-vit-base-patch32"), None);
    }

    #[test]
    fn sentencepiece_models_are_read_and_split_words() {
        let spm = testing::spm(&["<unk>", "▁hello", "▁world", "▁", "h", "e", "l", "o"]);
        let pieces = spm_pieces(&spm).unwrap();
        assert_eq!(pieces.len(), 8);
        assert_eq!(pieces[0], ("<unk>".into(), -5.0, 2));
        let tokenizer = unigram(&spm).unwrap();
        let tokens = tokenizer.encode("hello world", false).unwrap();
        assert_eq!(tokens.get_tokens(), ["▁hello", "▁world"]);
        assert!(spm_pieces(&spm[..spm.len() - 7]).is_err(), "truncated");
    }

    #[test]
    fn text_is_cut_into_sentences_keeping_what_separates_them() {
        assert_eq!(
            sentences("One. Two!\nThree"),
            [("One.", " "), ("Two!", "\n"), ("Three", "")]
        );
        assert_eq!(sentences("3.5 kg"), [("3.5 kg", "")]);
    }

    #[test]
    fn a_tiny_random_marian_translates_through_the_whole_path() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("opus-mt-ru-en");
        testing::tiny_marian(&folder);
        let marian = Marian::open(&folder, "Helsinki-NLP/opus-mt-ru-en").unwrap();
        assert_eq!((marian.from(), marian.to()), ("ru", "en"));
        let texts = ["привет мир", "привет. мир\nпривет"];
        let first = marian.translate(&texts).unwrap();
        let again = marian.translate(&texts).unwrap();
        assert_eq!(first, again, "greedy decoding is the same every time");
        // The second text: three sentences, each translated, with their separators kept.
        assert_eq!(first[1].matches('\n').count(), 1, "{first:?}");
        for out in &first {
            assert!(!out.is_empty(), "{first:?}");
            assert!(!out.contains('<') && !out.contains('\u{2581}'), "{out:?}");
        }
    }
}
