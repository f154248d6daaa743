//! The embedding plumbing on a tiny BERT with random weights that the test builds: loading,
//! tokenising, batching, pooling and normalising. (Quality is measured on the real
//! all-MiniLM-L6-v2 from the offline pack.)

use std::path::Path;

use aperture_analyze::embed::{TextEmbedder, cosine};
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;

const WORDS: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "cat", "sat", "on", "the", "mat", "dog", "ran", "in",
    "park", "red", "car", "##s", "blue", "sky",
];

fn tiny_model(dir: &Path) -> usize {
    let config = serde_json::json!({
        "vocab_size": WORDS.len(),
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 32,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
        "model_type": "bert"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let parsed: Config = serde_json::from_value(config).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &parsed).unwrap();
    varmap.save(dir.join("model.safetensors")).unwrap();

    let vocab = dir.join("vocab.txt");
    std::fs::write(&vocab, WORDS.join("\n")).unwrap();
    let wordpiece = WordPiece::from_file(vocab.to_str().unwrap())
        .unk_token("[UNK]".into())
        .build()
        .unwrap();
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer.with_normalizer(Some(BertNormalizer::default()));
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), 3),
        ("[CLS]".into(), 2),
    )));
    tokenizer.save(dir.join("tokenizer.json"), false).unwrap();
    16
}

#[test]
fn embeddings_are_unit_vectors_independent_of_batch_and_padding() {
    let dir = tempfile::tempdir().unwrap();
    let dims = tiny_model(dir.path());
    let embedder = TextEmbedder::load(dir.path()).unwrap();
    assert_eq!(embedder.dimensions(), dims);

    let texts = [
        "a cat sat on the mat",
        "the dog ran in the park",
        "red cars",
        "a cat sat on the mat",
    ];
    let vectors = embedder.embed(&texts).unwrap();
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        assert_eq!(v.len(), dims);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    // Same text, same vector; a text alone equals the text padded in a batch.
    assert!((cosine(&vectors[0], &vectors[3]) - 1.0).abs() < 1e-5);
    let alone = embedder.embed(&["red cars"]).unwrap();
    assert!(
        (cosine(&alone[0], &vectors[2]) - 1.0).abs() < 1e-4,
        "padding leaked into the mean"
    );
    assert!(cosine(&vectors[0], &vectors[1]) < 0.9999);

    // Long input is truncated, not refused; empty input still gives a vector.
    let long = "the cat sat ".repeat(500);
    let out = embedder.embed(&[long.as_str(), ""]).unwrap();
    assert_eq!(out.len(), 2);
    // More texts than one batch.
    let many: Vec<&str> = std::iter::repeat_n("blue sky", 70).collect();
    assert_eq!(embedder.embed(&many).unwrap().len(), 70);
}

#[test]
fn a_missing_model_folder_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = TextEmbedder::load(&dir.path().join("minilm"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("config.json"), "{err}");
}
