//! Reading a legacy (pre-zip, PyTorch < 1.6) `torch.save` file of a state dict, to convert it
//! once into safetensors. candle reads the zip format only.
//!
//! The file is five pickles and the raw storages:
//! 1. the magic number `0x1950a86a20f9469cfc6c`, 2. the protocol version 1001, 3. a dict of
//!    system facts (byte order, type sizes), 4. the state dict, whose tensors are
//!    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` and whose storages
//!    are persistent ids `('storage', torch.FloatStorage, key, location, numel, view)`,
//! 5. the list of storage keys, in the order their data follows;
//!
//! then, per key, the element count as a little-endian `u64` and the elements (little-endian).
//! Only what a state dict of float tensors needs is read; anything else is a clear error.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use candle_core::pickle::{Object, Stack};
use candle_core::{DType, Device, Tensor};

/// The first pickle, byte for byte: protocol 2, LONG1 of 10 bytes, the magic number, STOP.
const MAGIC_PICKLE: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];
const PROTOCOL_VERSION: i64 = 1001;

/// A tensor as the state dict describes it, before its storage is read.
struct Entry {
    name: String,
    storage: String,
    dtype: DType,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Every tensor of the state dict in `path`, by name, on the CPU.
pub fn read(path: &Path) -> Result<Vec<(String, Tensor)>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut r = BufReader::new(file);
    let mut magic = [0u8; MAGIC_PICKLE.len()];
    r.read_exact(&mut magic)
        .map_err(|e| format!("cannot read the header: {e}"))?;
    if magic != MAGIC_PICKLE {
        return Err("not a legacy torch.save file (wrong magic number)".into());
    }
    match unpickle(&mut r)? {
        Object::Int(v) if i64::from(v) == PROTOCOL_VERSION => {}
        Object::Long(v) if v == PROTOCOL_VERSION => {}
        other => return Err(format!("unsupported protocol version {other:?}")),
    }
    let sys_info = unpickle(&mut r)?;
    check_little_endian(&sys_info)?;
    let entries = state_dict(unpickle(&mut r)?)?;
    let keys: Vec<String> = match unpickle(&mut r)? {
        Object::List(keys) => keys
            .into_iter()
            .map(|k| k.unicode().map_err(|o| format!("bad storage key {o:?}")))
            .collect::<Result<_, _>>()?,
        other => return Err(format!("expected the storage key list, found {other:?}")),
    };

    let mut storages: HashMap<String, Tensor> = HashMap::new();
    for key in keys {
        let dtype = entries
            .iter()
            .find(|e| e.storage == key)
            .map(|e| e.dtype)
            .ok_or_else(|| format!("storage {key} is used by no tensor"))?;
        let mut count = [0u8; 8];
        r.read_exact(&mut count)
            .map_err(|e| format!("storage {key}: {e}"))?;
        let count = u64::from_le_bytes(count);
        let bytes = count
            .checked_mul(dtype.size_in_bytes() as u64)
            .filter(|b| *b <= len)
            .ok_or_else(|| format!("storage {key} claims {count} elements, more than the file"))?;
        let mut data = vec![0u8; bytes as usize];
        r.read_exact(&mut data)
            .map_err(|e| format!("storage {key} is cut short: {e}"))?;
        let tensor = Tensor::from_raw_buffer(&data, dtype, &[count as usize], &Device::Cpu)
            .map_err(|e| e.to_string())?;
        storages.insert(key, tensor);
    }

    entries
        .into_iter()
        .map(|e| {
            let storage = storages
                .get(&e.storage)
                .ok_or_else(|| format!("{}: storage {} is missing", e.name, e.storage))?;
            let numel: usize = e.shape.iter().product();
            if e.offset + numel > storage.elem_count() {
                return Err(format!("{}: runs past the end of its storage", e.name));
            }
            // Weights converted from TensorFlow are permuted views: lay the elements out in
            // memory order, then permute them back into the logical order.
            let order = memory_order(&e.shape, &e.stride).ok_or_else(|| {
                format!("{}: strides {:?} are not a permutation", e.name, e.stride)
            })?;
            let memory_shape: Vec<usize> = order.iter().map(|&d| e.shape[d]).collect();
            let mut inverse = vec![0; order.len()];
            for (i, &d) in order.iter().enumerate() {
                inverse[d] = i;
            }
            let tensor = storage
                .narrow(0, e.offset, numel)
                .and_then(|t| t.reshape(memory_shape.as_slice()))
                .and_then(|t| t.permute(inverse.as_slice()))
                .and_then(|t| t.contiguous())
                .map_err(|err| format!("{}: {err}", e.name))?;
            Ok((e.name, tensor))
        })
        .collect()
}

/// Converts the state dict in `from` into a safetensors file at `to`, leaving out the integer
/// bookkeeping tensors (`num_batches_tracked`) that inference never reads.
pub fn to_safetensors(from: &Path, to: &Path) -> Result<(), String> {
    let tensors: HashMap<String, Tensor> = read(from)?
        .into_iter()
        .filter(|(_, t)| t.dtype().is_float())
        .collect();
    candle_core::safetensors::save(&tensors, to).map_err(|e| format!("cannot write: {e}"))
}

fn unpickle<R: BufRead>(r: &mut R) -> Result<Object, String> {
    let mut stack = Stack::empty();
    stack
        .read_loop(r)
        .map_err(|e| format!("damaged pickle: {e}"))?;
    stack.finalize().map_err(|e| format!("damaged pickle: {e}"))
}

fn check_little_endian(sys_info: &Object) -> Result<(), String> {
    if let Object::Dict(items) = sys_info {
        for (k, v) in items {
            if k == &Object::Unicode("little_endian".into()) && v == &Object::Bool(false) {
                return Err("big-endian files are not supported".into());
            }
        }
    }
    Ok(())
}

fn state_dict(object: Object) -> Result<Vec<Entry>, String> {
    let items = match object {
        Object::Dict(items) => items,
        // An OrderedDict with attributes (`_metadata`) set by BUILD.
        Object::Build { callable, .. } => match *callable {
            Object::Dict(items) => items,
            other => return Err(format!("expected a state dict, found {other:?}")),
        },
        other => return Err(format!("expected a state dict, found {other:?}")),
    };
    let mut entries = Vec::new();
    for (name, value) in items {
        let Ok(name) = name.unicode() else { continue };
        if let Some(entry) = tensor_entry(&name, value)? {
            entries.push(entry);
        }
    }
    if entries.is_empty() {
        return Err("the state dict holds no tensors".into());
    }
    Ok(entries)
}

/// A `_rebuild_tensor_v2` call, or `None` for a value that is no tensor.
fn tensor_entry(name: &str, value: Object) -> Result<Option<Entry>, String> {
    let bad = |what: &str| format!("{name}: {what}");
    let Ok((callable, args)) = value.reduce() else {
        return Ok(None);
    };
    match callable {
        Object::Class {
            module_name,
            class_name,
        } if module_name == "torch._utils" && class_name == "_rebuild_tensor_v2" => {}
        _ => return Ok(None),
    }
    let mut args = args.tuple().map_err(|_| bad("bad tensor arguments"))?;
    if args.len() < 4 {
        return Err(bad("too few tensor arguments"));
    }
    let stride = usizes(args.remove(3)).ok_or_else(|| bad("bad stride"))?;
    let shape = usizes(args.remove(2)).ok_or_else(|| bad("bad size"))?;
    let offset = args
        .remove(1)
        .int_or_long()
        .ok()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| bad("bad storage offset"))?;
    let storage = args
        .remove(0)
        .persistent_load()
        .and_then(|id| id.tuple())
        .map_err(|_| bad("bad storage reference"))?;
    let [_, class, key, ..] = storage.as_slice() else {
        return Err(bad("short storage reference"));
    };
    let (Object::Class { class_name, .. }, Object::Unicode(key)) = (class, key) else {
        return Err(bad("bad storage reference"));
    };
    let dtype = match class_name.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "ByteStorage" => DType::U8,
        other => return Err(bad(&format!("unsupported storage type {other}"))),
    };
    if shape.len() != stride.len() {
        return Err(bad("size and stride differ in rank"));
    }
    Ok(Some(Entry {
        name: name.to_owned(),
        storage: key.clone(),
        dtype,
        offset,
        shape,
        stride,
    }))
}

fn usizes(object: Object) -> Option<Vec<usize>> {
    match object {
        Object::Tuple(items) => items
            .into_iter()
            .map(|i| i.int_or_long().ok().and_then(|v| usize::try_from(v).ok()))
            .collect(),
        _ => None,
    }
}

/// The dimensions from outermost to innermost in memory, if `stride` is that of a
/// contiguous tensor with its dimensions permuted.
fn memory_order(shape: &[usize], stride: &[usize]) -> Option<Vec<usize>> {
    let mut order: Vec<usize> = (0..shape.len()).collect();
    // Outermost first; a dimension of size 1 may have any stride, so it goes where it fits.
    order.sort_by_key(|&d| (std::cmp::Reverse(stride[d]), std::cmp::Reverse(shape[d])));
    let mut expected = 1;
    for &d in order.iter().rev() {
        if shape[d] > 1 && stride[d] != expected {
            return None;
        }
        expected *= shape[d];
    }
    Some(order)
}

#[cfg(test)]
mod tests {
    use super::memory_order;

    #[test]
    fn memory_orders() {
        assert_eq!(memory_order(&[2, 3, 4], &[12, 4, 1]), Some(vec![0, 1, 2]));
        // A transposed matrix (TensorFlow's [in, out] kept as torch's [out, in]).
        assert_eq!(memory_order(&[1000, 1280], &[1, 1000]), Some(vec![1, 0]));
        // [O, I, kh, kw] stored as [kh, kw, I, O].
        assert_eq!(
            memory_order(&[32, 3, 3, 3], &[1, 32, 288, 96]),
            Some(vec![2, 3, 1, 0])
        );
        assert_eq!(memory_order(&[], &[]), Some(vec![]));
        assert_eq!(memory_order(&[2, 3], &[1, 1]), None);
    }
}
