//! Writing ONNX models: a graph of nodes and float initializers serialised to the ONNX
//! protobuf, so that a network whose weights come in another format (EfficientNet-Lite0's
//! converted torch pickle) runs on ONNX Runtime, the fastest CPU runtime we have.
//!
//! Only what such graphs need is written: float tensors, nodes with int, ints and float
//! attributes, inputs and outputs with a symbolic batch dimension. Field numbers are those of
//! `onnx.proto` (IR version 8, opset 17).

/// IR version of ONNX 1.13, which opset 17 belongs to.
const IR_VERSION: u64 = 8;
const OPSET: u64 = 17;
const FLOAT: u64 = 1;
const INT64: u64 = 7;

/// A dimension of a graph input or output.
#[derive(Debug, Clone, Copy)]
pub enum Dim {
    Fixed(usize),
    /// Named, set when the graph runs (`N` for the batch, `T` for tokens).
    Named(&'static str),
}

/// An attribute value.
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
}

#[derive(Default)]
pub struct Graph {
    nodes: Vec<Vec<u8>>,
    initializers: Vec<Vec<u8>>,
    inputs: Vec<Vec<u8>>,
    outputs: Vec<Vec<u8>>,
    count: usize,
}

impl Graph {
    /// A float initializer; returns its name.
    pub fn constant(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let mut t = Vec::new();
        for &d in dims {
            varint_field(&mut t, 1, d as u64);
        }
        varint_field(&mut t, 2, FLOAT);
        bytes_field(&mut t, 8, name.as_bytes());
        varint(&mut t, (9 << 3) | 2);
        varint(&mut t, (data.len() * 4) as u64);
        t.reserve_exact(data.len() * 4);
        t.extend(data.iter().flat_map(|x| x.to_le_bytes()));
        self.initializers.push(t);
        name.to_owned()
    }

    /// An int64 initializer; returns its name.
    pub fn constant_i64(&mut self, name: &str, dims: &[usize], data: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len());
        let mut t = Vec::new();
        for &d in dims {
            varint_field(&mut t, 1, d as u64);
        }
        varint_field(&mut t, 2, INT64);
        bytes_field(&mut t, 8, name.as_bytes());
        let raw: Vec<u8> = data.iter().flat_map(|x| x.to_le_bytes()).collect();
        bytes_field(&mut t, 9, &raw);
        self.initializers.push(t);
        name.to_owned()
    }

    /// A node; returns the name of its (first) output, made up from `op`.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let output = format!("{}_{}", op.to_ascii_lowercase(), self.count + 1);
        self.node_to(op, inputs, &[&output], attrs);
        output
    }

    /// A node with named outputs.
    pub fn node_to(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[(&str, Attr)]) {
        self.count += 1;
        let mut n = Vec::new();
        for i in inputs {
            bytes_field(&mut n, 1, i.as_bytes());
        }
        for o in outputs {
            bytes_field(&mut n, 2, o.as_bytes());
        }
        bytes_field(&mut n, 3, format!("n{}", self.count).as_bytes());
        bytes_field(&mut n, 4, op.as_bytes());
        for (name, value) in attrs {
            let mut a = Vec::new();
            bytes_field(&mut a, 1, name.as_bytes());
            match value {
                Attr::Float(f) => {
                    // field 2, fixed32
                    varint(&mut a, (2 << 3) | 5);
                    a.extend(f.to_le_bytes());
                    varint_field(&mut a, 20, 1);
                }
                Attr::Int(i) => {
                    varint_field(&mut a, 3, *i as u64);
                    varint_field(&mut a, 20, 2);
                }
                Attr::Ints(values) => {
                    for v in values {
                        varint_field(&mut a, 8, *v as u64);
                    }
                    varint_field(&mut a, 20, 7);
                }
            }
            bytes_field(&mut n, 5, &a);
        }
        self.nodes.push(n);
    }

    fn value_info(name: &str, elem_type: u64, dims: &[Dim]) -> Vec<u8> {
        let mut shape = Vec::new();
        for d in dims {
            let mut dim = Vec::new();
            match d {
                Dim::Fixed(n) => varint_field(&mut dim, 1, *n as u64),
                Dim::Named(s) => bytes_field(&mut dim, 2, s.as_bytes()),
            }
            bytes_field(&mut shape, 1, &dim);
        }
        let mut tensor = Vec::new();
        varint_field(&mut tensor, 1, elem_type);
        bytes_field(&mut tensor, 2, &shape);
        let mut ty = Vec::new();
        bytes_field(&mut ty, 1, &tensor);
        let mut v = Vec::new();
        bytes_field(&mut v, 1, name.as_bytes());
        bytes_field(&mut v, 2, &ty);
        v
    }

    /// Declares a float input of shape `[N, dims...]`.
    pub fn input(&mut self, name: &str, dims: &[usize]) {
        let dims: Vec<Dim> = std::iter::once(Dim::Named("N"))
            .chain(dims.iter().map(|&d| Dim::Fixed(d)))
            .collect();
        self.inputs.push(Self::value_info(name, FLOAT, &dims));
    }

    /// Declares an int64 input.
    pub fn input_i64(&mut self, name: &str, dims: &[Dim]) {
        self.inputs.push(Self::value_info(name, INT64, dims));
    }

    /// Declares a float output of shape `[N, dims...]`.
    pub fn output(&mut self, name: &str, dims: &[usize]) {
        let dims: Vec<Dim> = std::iter::once(Dim::Named("N"))
            .chain(dims.iter().map(|&d| Dim::Fixed(d)))
            .collect();
        self.outputs.push(Self::value_info(name, FLOAT, &dims));
    }

    /// Declares a float output of any shape.
    pub fn output_dims(&mut self, name: &str, dims: &[Dim]) {
        self.outputs.push(Self::value_info(name, FLOAT, dims));
    }

    /// The serialised `ModelProto`, written into one buffer of its exact size: the graph's
    /// initializers are given up as they are copied in, so a model's weights are held at most
    /// twice while it is written (a growing buffer held them up to four times).
    pub fn into_model(self, name: &str) -> Vec<u8> {
        let fields = |field: u64, parts: &[Vec<u8>]| -> usize {
            parts.iter().map(|p| bytes_field_len(field, p.len())).sum()
        };
        let graph_len = fields(1, &self.nodes)
            + bytes_field_len(2, name.len())
            + fields(5, &self.initializers)
            + fields(11, &self.inputs)
            + fields(12, &self.outputs);
        let mut opset = Vec::new();
        bytes_field(&mut opset, 1, b"");
        varint_field(&mut opset, 2, OPSET);
        let len = varint_len(1 << 3)
            + varint_len(IR_VERSION)
            + bytes_field_len(2, b"aperture".len())
            + bytes_field_len(7, graph_len)
            + bytes_field_len(8, opset.len());
        let mut m = Vec::with_capacity(len);
        varint_field(&mut m, 1, IR_VERSION);
        bytes_field(&mut m, 2, b"aperture");
        varint(&mut m, (7 << 3) | 2);
        varint(&mut m, graph_len as u64);
        for n in &self.nodes {
            bytes_field(&mut m, 1, n);
        }
        bytes_field(&mut m, 2, name.as_bytes());
        for t in self.initializers {
            bytes_field(&mut m, 5, &t);
        }
        for i in &self.inputs {
            bytes_field(&mut m, 11, i);
        }
        for o in &self.outputs {
            bytes_field(&mut m, 12, o);
        }
        bytes_field(&mut m, 8, &opset);
        debug_assert_eq!(m.len(), len, "the model's size was computed wrong");
        m
    }
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The bytes [`bytes_field`] writes for a field of `len` bytes.
fn bytes_field_len(field: u64, len: usize) -> usize {
    varint_len((field << 3) | 2) + varint_len(len as u64) + len
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_base_128() {
        let mut out = Vec::new();
        varint(&mut out, 1);
        varint(&mut out, 300);
        varint(&mut out, u64::MAX);
        assert_eq!(&out[..3], &[1, 0xac, 0x02]);
        assert_eq!(out.len(), 3 + 10);
        // A negative int attribute is its two's complement as a 10-byte varint, as protobuf
        // writes int64.
        let mut neg = Vec::new();
        varint(&mut neg, -1i64 as u64);
        assert_eq!(neg.len(), 10);
        for v in [0, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }
}
