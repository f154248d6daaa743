//! EfficientNet-Lite0 (ImageNet-1k) in candle, from the weights of the offline pack.
//!
//! Lite0 is EfficientNet-B0 made friendly to mobile inference: no squeeze-and-excite, ReLU6
//! instead of swish, a fixed stem and head. The weights were trained in TensorFlow, so
//! convolutions pad the TensorFlow way ("same": the odd pixel at the end), batch norm uses
//! eps 1e-3, and the input is `(x − 127) / 128`. Each batch norm is folded into the
//! convolution before it at load time.
//!
//! Depthwise convolutions run in a kernel of our own on the CPU: candle runs a grouped
//! convolution as one convolution per channel, hundreds of them per layer.

use candle_core::{CpuStorage, CustomOp2, D, DType, Device, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// Input side in pixels.
pub const INPUT_SIZE: usize = 224;
/// Length of the pooled feature vector.
pub const FEATURES: usize = 1280;
/// ImageNet-1k classes the network scores.
pub const CLASSES: usize = 1000;
const BN_EPS: f64 = 1e-3;

/// (expand ratio, kernel, stride, in channels, out channels) of the 16 blocks.
const BLOCKS: [(usize, usize, usize, usize, usize); 16] = [
    (1, 3, 1, 32, 16),
    (6, 3, 2, 16, 24),
    (6, 3, 1, 24, 24),
    (6, 5, 2, 24, 40),
    (6, 5, 1, 40, 40),
    (6, 3, 2, 40, 80),
    (6, 3, 1, 80, 80),
    (6, 3, 1, 80, 80),
    (6, 5, 1, 80, 112),
    (6, 5, 1, 112, 112),
    (6, 5, 1, 112, 112),
    (6, 5, 2, 112, 192),
    (6, 5, 1, 192, 192),
    (6, 5, 1, 192, 192),
    (6, 5, 1, 192, 192),
    (6, 3, 1, 192, 320),
];

/// A convolution with its batch norm folded in, and whether ReLU6 follows.
struct Conv {
    /// `[out, in]` for 1×1, `[c, k, k]` for depthwise, `[out, in, k, k]` for the stem.
    weight: Tensor,
    bias: Tensor,
    kind: Kind,
    relu6: bool,
}

#[derive(Clone, Copy)]
enum Kind {
    Pointwise,
    Depthwise { kernel: usize, stride: usize },
    Full { stride: usize },
}

impl Conv {
    fn load(
        vb: &VarBuilder,
        conv: &str,
        bn: &str,
        kind: Kind,
        relu6: bool,
    ) -> candle_core::Result<Self> {
        let weight = vb.get_unchecked_dtype(&format!("{conv}.weight"), DType::F32)?;
        let gamma = vb.get_unchecked_dtype(&format!("{bn}.weight"), DType::F32)?;
        let beta = vb.get_unchecked_dtype(&format!("{bn}.bias"), DType::F32)?;
        let mean = vb.get_unchecked_dtype(&format!("{bn}.running_mean"), DType::F32)?;
        let var = vb.get_unchecked_dtype(&format!("{bn}.running_var"), DType::F32)?;
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        let bias = (beta - (mean * &scale)?)?;
        let out = weight.dim(0)?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        let weight = match kind {
            Kind::Pointwise => weight.reshape((out, weight.dim(1)?))?,
            Kind::Depthwise { kernel, .. } => weight.reshape((out, kernel, kernel))?,
            Kind::Full { .. } => weight,
        };
        Ok(Self {
            weight: weight.contiguous()?,
            bias,
            kind,
            relu6,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let out = match self.kind {
            Kind::Pointwise => {
                let co = self.weight.dim(0)?;
                let y = self
                    .weight
                    .broadcast_matmul(&x.reshape((n, c, h * w))?)?
                    .broadcast_add(&self.bias.reshape((co, 1))?)?;
                y.reshape((n, co, h, w))?
            }
            Kind::Depthwise { kernel, stride } => {
                if x.device().is_cpu() {
                    let op = Depthwise { kernel, stride };
                    x.contiguous()?
                        .apply_op2_no_bwd(&self.weight, &op)?
                        .broadcast_add(&self.bias.reshape((c, 1, 1))?)?
                } else {
                    let weight = self.weight.reshape((c, 1, kernel, kernel))?;
                    pad_same(x, kernel, stride)?
                        .conv2d(&weight, 0, stride, 1, c)?
                        .broadcast_add(&self.bias.reshape((c, 1, 1))?)?
                }
            }
            Kind::Full { stride } => {
                let kernel = self.weight.dim(2)?;
                let co = self.weight.dim(0)?;
                pad_same(x, kernel, stride)?
                    .conv2d(&self.weight, 0, stride, 1, 1)?
                    .broadcast_add(&self.bias.reshape((co, 1, 1))?)?
            }
        };
        if self.relu6 { relu6(&out) } else { Ok(out) }
    }
}

fn relu6(x: &Tensor) -> candle_core::Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// TensorFlow "same" padding: output side `ceil(in / stride)`, the odd pixel at the end.
fn same_padding(size: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let out = size.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size);
    (total / 2, total - total / 2)
}

fn pad_same(x: &Tensor, kernel: usize, stride: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (top, bottom) = same_padding(h, kernel, stride);
    let (left, right) = same_padding(w, kernel, stride);
    x.pad_with_zeros(2, top, bottom)?
        .pad_with_zeros(3, left, right)
}

/// Depthwise convolution with "same" padding on the CPU: `x [n, c, h, w]` (contiguous) and
/// `weight [c, k, k]` give `[n, c, ceil(h/s), ceil(w/s)]`, without bias.
struct Depthwise {
    kernel: usize,
    stride: usize,
}

impl CustomOp2 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w)) = (s1, s2) else {
            candle_core::bail!("depthwise-conv: f32 only");
        };
        let (Some((x0, x1)), Some((w0, w1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("depthwise-conv: contiguous inputs only");
        };
        let (x, w) = (&x[x0..x1], &w[w0..w1]);
        let (n, c, h, wd) = l1.shape().dims4()?;
        let (k, s) = (self.kernel, self.stride);
        let (top, _) = same_padding(h, k, s);
        let (left, _) = same_padding(wd, k, s);
        let (ho, wo) = (h.div_ceil(s), wd.div_ceil(s));
        let mut out = vec![0f32; n * c * ho * wo];
        out.par_chunks_mut(ho * wo)
            .enumerate()
            .for_each(|(plane, out)| {
                let ch = plane % c;
                let input = &x[plane * h * wd..(plane + 1) * h * wd];
                let kernel = &w[ch * k * k..(ch + 1) * k * k];
                for ky in 0..k {
                    for kx in 0..k {
                        let weight = kernel[ky * k + kx];
                        // Output columns whose input column is inside the image.
                        let lo = left.saturating_sub(kx).div_ceil(s);
                        let hi = ((wd + left).saturating_sub(kx)).div_ceil(s).min(wo);
                        for oy in 0..ho {
                            let iy = (oy * s + ky) as isize - top as isize;
                            if iy < 0 || iy >= h as isize {
                                continue;
                            }
                            let row = &input[iy as usize * wd..(iy as usize + 1) * wd];
                            let out_row = &mut out[oy * wo..(oy + 1) * wo];
                            if s == 1 {
                                let start = lo + kx - left;
                                for (o, i) in out_row[lo..hi].iter_mut().zip(&row[start..]) {
                                    *o += weight * i;
                                }
                            } else {
                                for (ox, o) in out_row.iter_mut().enumerate().take(hi).skip(lo) {
                                    *o += weight * row[ox * s + kx - left];
                                }
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }
}

struct Block {
    expand: Option<Conv>,
    depthwise: Conv,
    project: Conv,
    skip: bool,
}

/// The network, with its batch norms folded into the convolutions.
pub struct EfficientNetLite0 {
    stem: Conv,
    blocks: Vec<Block>,
    head: Conv,
    fc_weight: Tensor,
    fc_bias: Tensor,
    device: Device,
}

impl EfficientNetLite0 {
    /// The network from a var builder over the converted weights (`model.safetensors`).
    pub fn load(vb: VarBuilder) -> candle_core::Result<Self> {
        let device = vb.device().clone();
        let stem = Conv::load(&vb, "_conv_stem", "_bn0", Kind::Full { stride: 2 }, true)?;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for (i, &(expand, kernel, stride, cin, cout)) in BLOCKS.iter().enumerate() {
            let p = format!("_blocks.{i}");
            blocks.push(Block {
                expand: (expand != 1)
                    .then(|| {
                        Conv::load(
                            &vb,
                            &format!("{p}._expand_conv"),
                            &format!("{p}._bn0"),
                            Kind::Pointwise,
                            true,
                        )
                    })
                    .transpose()?,
                depthwise: Conv::load(
                    &vb,
                    &format!("{p}._depthwise_conv"),
                    &format!("{p}._bn1"),
                    Kind::Depthwise { kernel, stride },
                    true,
                )?,
                project: Conv::load(
                    &vb,
                    &format!("{p}._project_conv"),
                    &format!("{p}._bn2"),
                    Kind::Pointwise,
                    false,
                )?,
                skip: stride == 1 && cin == cout,
            });
        }
        let head = Conv::load(&vb, "_conv_head", "_bn1", Kind::Pointwise, true)?;
        let fc_weight = vb
            .get_unchecked_dtype("_fc.weight", DType::F32)?
            .t()?
            .contiguous()?;
        let fc_bias = vb.get_unchecked_dtype("_fc.bias", DType::F32)?;
        Ok(Self {
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
            device,
        })
    }

    /// The device its weights are on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `[n, 3, 224, 224]` normalised images → (`[n, 1280]` pooled features, `[n, 1000]` logits).
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let mut x = self.stem.forward(x)?;
        for block in &self.blocks {
            let input = x.clone();
            if let Some(expand) = &block.expand {
                x = expand.forward(&x)?;
            }
            x = block.depthwise.forward(&x)?;
            x = block.project.forward(&x)?;
            if block.skip {
                x = (x + input)?;
            }
        }
        let x = self.head.forward(&x)?;
        let features = x.flatten_from(2)?.mean(D::Minus1)?;
        let logits = features
            .matmul(&self.fc_weight)?
            .broadcast_add(&self.fc_bias)?;
        Ok((features, logits))
    }
}

impl Module for EfficientNetLite0 {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        Ok(EfficientNetLite0::forward(self, x)?.1)
    }
}

/// The same network as an ONNX graph (opset 17), built from the converted weights with every
/// batch norm folded into its convolution, for ONNX Runtime: input `input` `[N, 3, 224, 224]`,
/// outputs `features` `[N, 1280]` (pooled, not normalised) and `logits` `[N, 1000]`.
pub fn onnx_model(weights: &std::path::Path) -> candle_core::Result<Vec<u8>> {
    use crate::onnx_graph::{Attr, Graph};

    let tensors = candle_core::safetensors::load(weights, &Device::Cpu)?;
    let get = |name: &str| -> candle_core::Result<Tensor> {
        tensors
            .get(name)
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name} in the weights")))
    };
    let mut g = Graph::default();
    g.input("input", &[3, INPUT_SIZE, INPUT_SIZE]);
    let zero = g.constant("zero", &[], &[0.0]);
    let six = g.constant("six", &[], &[6.0]);
    let mut size = INPUT_SIZE;
    // A convolution with its batch norm folded in, and ReLU6 after it when asked.
    let conv = |g: &mut Graph,
                x: &str,
                conv: &str,
                bn: &str,
                stride: usize,
                groups: usize,
                relu6: bool,
                size: usize|
     -> candle_core::Result<String> {
        let weight = get(&format!("{conv}.weight"))?;
        let (out, per_group, k, _) = weight.dims4()?;
        let gamma = get(&format!("{bn}.weight"))?;
        let var = get(&format!("{bn}.running_var"))?;
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        let bias = (get(&format!("{bn}.bias"))? - (get(&format!("{bn}.running_mean"))? * &scale)?)?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        let w = g.constant(
            &format!("{conv}.w"),
            &[out, per_group, k, k],
            &weight.flatten_all()?.to_vec1::<f32>()?,
        );
        let b = g.constant(&format!("{conv}.b"), &[out], &bias.to_vec1::<f32>()?);
        let (before, after) = same_padding(size, k, stride);
        let (b0, a0) = (before as i64, after as i64);
        let y = g.node(
            "Conv",
            &[x, &w, &b],
            &[
                ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
                ("strides", Attr::Ints(vec![stride as i64, stride as i64])),
                ("pads", Attr::Ints(vec![b0, b0, a0, a0])),
                ("group", Attr::Int(groups as i64)),
            ],
        );
        Ok(if relu6 {
            g.node("Clip", &[&y, &zero, &six], &[])
        } else {
            y
        })
    };
    let mut x = conv(&mut g, "input", "_conv_stem", "_bn0", 2, 1, true, size)?;
    size = size.div_ceil(2);
    for (i, &(expand, _, stride, cin, cout)) in BLOCKS.iter().enumerate() {
        let p = format!("_blocks.{i}");
        let input = x.clone();
        if expand != 1 {
            x = conv(
                &mut g,
                &x,
                &format!("{p}._expand_conv"),
                &format!("{p}._bn0"),
                1,
                1,
                true,
                size,
            )?;
        }
        let channels = cin * expand;
        x = conv(
            &mut g,
            &x,
            &format!("{p}._depthwise_conv"),
            &format!("{p}._bn1"),
            stride,
            channels,
            true,
            size,
        )?;
        size = size.div_ceil(stride);
        x = conv(
            &mut g,
            &x,
            &format!("{p}._project_conv"),
            &format!("{p}._bn2"),
            1,
            1,
            false,
            size,
        )?;
        if stride == 1 && cin == cout {
            x = g.node("Add", &[&x, &input], &[]);
        }
    }
    x = conv(&mut g, &x, "_conv_head", "_bn1", 1, 1, true, size)?;
    let pooled = g.node("GlobalAveragePool", &[&x], &[]);
    g.node_to(
        "Flatten",
        &[&pooled],
        &["features"],
        &[("axis", Attr::Int(1))],
    );
    let fc_w = get("_fc.weight")?;
    let fc_w = g.constant(
        "fc.w",
        &[CLASSES, FEATURES],
        &fc_w.flatten_all()?.to_vec1::<f32>()?,
    );
    let fc_b = g.constant("fc.b", &[CLASSES], &get("_fc.bias")?.to_vec1::<f32>()?);
    g.node_to(
        "Gemm",
        &["features", &fc_w, &fc_b],
        &["logits"],
        &[("transB", Attr::Int(1))],
    );
    g.output("features", &[FEATURES]);
    g.output("logits", &[CLASSES]);
    drop(tensors);
    Ok(g.into_model("efficientnet-lite0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_matches_tensorflow() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 3, 1), (1, 1));
    }

    /// The CPU kernel against candle's grouped convolution, for every shape the network uses.
    #[test]
    fn depthwise_kernel_matches_grouped_convolution() {
        let device = Device::Cpu;
        for (k, s, h, w) in [(3, 1, 9, 7), (3, 2, 10, 9), (5, 2, 11, 12), (5, 1, 7, 7)] {
            let c = 4;
            let x = Tensor::randn(0f32, 1f32, (2, c, h, w), &device).unwrap();
            let weight = Tensor::randn(0f32, 1f32, (c, k, k), &device).unwrap();
            let op = Depthwise {
                kernel: k,
                stride: s,
            };
            let ours = x.apply_op2_no_bwd(&weight, &op).unwrap();
            let theirs = pad_same(&x, k, s)
                .unwrap()
                .conv2d(&weight.reshape((c, 1, k, k)).unwrap(), 0, s, 1, c)
                .unwrap();
            let diff = crate::test_support::max_difference(&ours, &theirs);
            assert!(diff < 1e-4, "k {k} s {s}: {diff}");
        }
    }
}
