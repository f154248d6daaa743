//! A BERT encoder (the sentence-transformers kind: all-MiniLM-L6-v2) as an ONNX graph, built
//! from its safetensors and `config.json`, so that text embeddings run on ONNX Runtime:
//! inputs `input_ids`, `attention_mask`, `token_type_ids` (`[N, T]`, int64), output
//! `hidden` (`[N, T, hidden]`); pooling happens in [`crate::embed`].

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::bert::Config;

use crate::onnx_graph::{Attr, Dim, Graph};

/// The graph for the model whose weights are in `weights`.
pub fn onnx_model(weights: &Path, config: &Config) -> candle_core::Result<Vec<u8>> {
    let tensors = candle_core::safetensors::load(weights, &Device::Cpu)?;
    // Weights are saved with or without the `bert.` prefix.
    let get = |name: &str| -> candle_core::Result<&Tensor> {
        tensors
            .get(name)
            .or_else(|| tensors.get(&format!("bert.{name}")))
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name} in the weights")))
    };
    let floats = |t: &Tensor| -> candle_core::Result<Vec<f32>> { t.flatten_all()?.to_vec1() };
    let (hidden, heads) = (config.hidden_size, config.num_attention_heads);
    let head_dim = hidden / heads;
    let eps = config.layer_norm_eps as f32;

    let mut g = Graph::default();
    let tokens = [Dim::Named("N"), Dim::Named("T")];
    for name in ["input_ids", "attention_mask", "token_type_ids"] {
        g.input_i64(name, &tokens);
    }
    let constant = |g: &mut Graph, name: &str, t: &Tensor| -> candle_core::Result<String> {
        Ok(g.constant(name, t.dims(), &floats(t)?))
    };
    // x @ Wᵀ + b, with W stored transposed once here.
    let linear = |g: &mut Graph, x: &str, name: &str| -> candle_core::Result<String> {
        let w = get(&format!("{name}.weight"))?.t()?.contiguous()?;
        let w = constant(g, &format!("{name}.wt"), &w)?;
        let b = constant(g, &format!("{name}.b"), get(&format!("{name}.bias"))?)?;
        let y = g.node("MatMul", &[x, &w], &[]);
        Ok(g.node("Add", &[&y, &b], &[]))
    };
    let layer_norm = |g: &mut Graph, x: &str, name: &str| -> candle_core::Result<String> {
        let w = constant(g, &format!("{name}.w"), get(&format!("{name}.weight"))?)?;
        let b = constant(g, &format!("{name}.b"), get(&format!("{name}.bias"))?)?;
        Ok(g.node(
            "LayerNormalization",
            &[x, &w, &b],
            &[("axis", Attr::Int(-1)), ("epsilon", Attr::Float(eps))],
        ))
    };

    // Embeddings: words + positions + token types, normalised.
    let words = constant(&mut g, "word", get("embeddings.word_embeddings.weight")?)?;
    let positions = constant(
        &mut g,
        "position",
        get("embeddings.position_embeddings.weight")?,
    )?;
    let types = constant(
        &mut g,
        "type",
        get("embeddings.token_type_embeddings.weight")?,
    )?;
    let shape = g.node("Shape", &["input_ids"], &[]);
    let one = g.constant_i64("one", &[], &[1]);
    let zero = g.constant_i64("zero", &[], &[0]);
    let length = g.node("Gather", &[&shape, &one], &[("axis", Attr::Int(0))]);
    let position_ids = g.node("Range", &[&zero, &length, &one], &[]);
    let w = g.node("Gather", &[&words, "input_ids"], &[]);
    let p = g.node("Gather", &[&positions, &position_ids], &[]);
    let t = g.node("Gather", &[&types, "token_type_ids"], &[]);
    let sum = g.node("Add", &[&w, &p], &[]);
    let sum = g.node("Add", &[&sum, &t], &[]);
    let mut x = layer_norm(&mut g, &sum, "embeddings.LayerNorm")?;

    // The mask as an additive bias on attention scores: 0 for tokens, -10000 for padding.
    let mask = g.node("Cast", &["attention_mask"], &[("to", Attr::Int(1))]);
    let ones = g.constant("one_f", &[], &[1.0]);
    let inverted = g.node("Sub", &[&ones, &mask], &[]);
    let big = g.constant("minus_big", &[], &[-10_000.0]);
    let bias = g.node("Mul", &[&inverted, &big], &[]);
    let bias_shape = g.constant_i64("bias_shape", &[4], &[0, 1, 1, -1]);
    let bias = g.node("Reshape", &[&bias, &bias_shape], &[]);
    let split = g.constant_i64("split_heads", &[4], &[0, 0, heads as i64, head_dim as i64]);
    let merge = g.constant_i64("merge_heads", &[3], &[0, 0, hidden as i64]);
    let scale = g.constant("scale", &[], &[1.0 / (head_dim as f32).sqrt()]);
    let half = g.constant("half", &[], &[0.5]);
    let root2 = g.constant("sqrt2", &[], &[std::f32::consts::SQRT_2]);

    for i in 0..config.num_hidden_layers {
        let p = format!("encoder.layer.{i}");
        let heads_of = |g: &mut Graph, y: &str, perm: Vec<i64>| {
            let y = g.node("Reshape", &[y, &split], &[]);
            g.node("Transpose", &[&y], &[("perm", Attr::Ints(perm))])
        };
        let q = linear(&mut g, &x, &format!("{p}.attention.self.query"))?;
        let k = linear(&mut g, &x, &format!("{p}.attention.self.key"))?;
        let v = linear(&mut g, &x, &format!("{p}.attention.self.value"))?;
        let q = heads_of(&mut g, &q, vec![0, 2, 1, 3]);
        let k = heads_of(&mut g, &k, vec![0, 2, 3, 1]);
        let v = heads_of(&mut g, &v, vec![0, 2, 1, 3]);
        let scores = g.node("MatMul", &[&q, &k], &[]);
        let scores = g.node("Mul", &[&scores, &scale], &[]);
        let scores = g.node("Add", &[&scores, &bias], &[]);
        let probs = g.node("Softmax", &[&scores], &[("axis", Attr::Int(-1))]);
        let context = g.node("MatMul", &[&probs, &v], &[]);
        let context = g.node(
            "Transpose",
            &[&context],
            &[("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let context = g.node("Reshape", &[&context, &merge], &[]);
        let attended = linear(&mut g, &context, &format!("{p}.attention.output.dense"))?;
        let attended = g.node("Add", &[&attended, &x], &[]);
        let attended = layer_norm(
            &mut g,
            &attended,
            &format!("{p}.attention.output.LayerNorm"),
        )?;
        // GELU, exactly: x · ½ · (1 + erf(x / √2)).
        let up = linear(&mut g, &attended, &format!("{p}.intermediate.dense"))?;
        let scaled = g.node("Div", &[&up, &root2], &[]);
        let erf = g.node("Erf", &[&scaled], &[]);
        let erf = g.node("Add", &[&erf, &ones], &[]);
        let gelu = g.node("Mul", &[&up, &erf], &[]);
        let gelu = g.node("Mul", &[&gelu, &half], &[]);
        let down = linear(&mut g, &gelu, &format!("{p}.output.dense"))?;
        let down = g.node("Add", &[&down, &attended], &[]);
        x = layer_norm(&mut g, &down, &format!("{p}.output.LayerNorm"))?;
    }
    g.node_to("Identity", &[&x], &["hidden"], &[]);
    g.output_dims(
        "hidden",
        &[Dim::Named("N"), Dim::Named("T"), Dim::Fixed(hidden)],
    );
    drop(tensors);
    Ok(g.into_model("bert"))
}
