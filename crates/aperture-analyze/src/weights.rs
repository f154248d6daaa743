//! Safetensors weights read one tensor at a time, for candle's `VarBuilder`.
//!
//! Loading a whole file (`candle_core::safetensors::load`) holds every tensor twice while a
//! model converts them (Whisper's 143 MB of f16 beside its 287 MB of f32), and a memory map
//! counts the file's pages in the process's resident memory until it is unmapped. Here each
//! tensor is read from the file when the model asks for it, converted, and its raw bytes let
//! go: loading takes the model's own size and one tensor twice more (as stored, converted).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use safetensors::tensor::Metadata;

/// The largest header a safetensors file may have (the format's own limit).
const MAX_HEADER: u64 = 100 * 1024 * 1024;

/// The tensors of one safetensors file, read on demand.
pub(crate) struct Weights {
    path: PathBuf,
    file: File,
    /// The header, checked by the `safetensors` crate: each tensor's bytes fit its shape and
    /// follow the one before.
    header: Metadata,
    /// Where the tensors' bytes begin in the file.
    data_start: u64,
}

fn error(path: &Path, e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("{}: {e}", path.display()))
}

impl Weights {
    /// Reads the header of the safetensors file at `path`.
    pub(crate) fn open(path: &Path) -> candle_core::Result<Self> {
        let file = File::open(path).map_err(|e| error(path, e))?;
        let size = file.metadata().map_err(|e| error(path, e))?.len();
        let mut len = [0u8; 8];
        file.read_exact_at(&mut len, 0)
            .map_err(|e| error(path, format!("no safetensors header: {e}")))?;
        let header_len = u64::from_le_bytes(len);
        if header_len > MAX_HEADER || 8 + header_len > size {
            return Err(error(
                path,
                "the safetensors header is longer than the file",
            ));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, 8)
            .map_err(|e| error(path, e))?;
        let header: Metadata = serde_json::from_slice(&header).map_err(|e| error(path, e))?;
        let data_start = 8 + header_len;
        if data_start.saturating_add(header.data_len() as u64) > size {
            return Err(error(path, "its tensors lie past the file's end"));
        }
        Ok(Self {
            path: path.to_owned(),
            file,
            header,
            data_start,
        })
    }

    /// The dimensions of tensor `name`, when the file holds it.
    pub(crate) fn dims(&self, name: &str) -> Option<&[usize]> {
        self.header.info(name).map(|t| t.shape.as_slice())
    }

    /// Whether the file holds tensor `name`.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.header.info(name).is_some()
    }

    /// A var builder that reads from this file, converting to `dtype` on `device`.
    pub(crate) fn into_var_builder(self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self), dtype, device.clone())
    }

    fn read(&self, name: &str, dtype: DType, device: &Device) -> candle_core::Result<Tensor> {
        let info = self
            .header
            .info(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor {
                path: name.to_owned(),
            })?;
        let (begin, end) = info.data_offsets;
        // The file's bytes are let go before the conversion makes the model's copy.
        let raw = {
            let mut bytes = vec![0u8; end - begin];
            self.file
                .read_exact_at(&mut bytes, self.data_start + begin as u64)
                .map_err(|e| error(&self.path, format!("tensor {name}: {e}")))?;
            let stored = DType::try_from(info.dtype)?;
            Tensor::from_raw_buffer(&bytes, stored, &info.shape, &Device::Cpu)?
        };
        raw.to_dtype(dtype)?.to_device(device)
    }
}

impl candle_nn::var_builder::SimpleBackend for Weights {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name, dtype, device)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            }
            .bt());
        }
        Ok(tensor)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.read(name, dtype, device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn tensors_read_one_at_a_time_match_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = Tensor::arange(0f32, 12., &Device::Cpu)
            .unwrap()
            .reshape((3, 4))
            .unwrap()
            .to_dtype(DType::F16)
            .unwrap();
        let b = Tensor::new(&[7i64, -2], &Device::Cpu).unwrap();
        candle_core::safetensors::save(
            &HashMap::from([("a".to_owned(), a.clone()), ("b".to_owned(), b.clone())]),
            &path,
        )
        .unwrap();
        let weights = Weights::open(&path).unwrap();
        assert_eq!(weights.dims("a"), Some(&[3, 4][..]));
        assert!(weights.contains("b") && !weights.contains("c"));
        let vb = weights.into_var_builder(DType::F32, &Device::Cpu);
        let got = vb.get((3, 4), "a").unwrap();
        assert_eq!(got.dtype(), DType::F32);
        assert_eq!(
            got.to_vec2::<f32>().unwrap(),
            a.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap()
        );
        assert!(vb.get((4, 3), "a").is_err(), "a wrong shape is refused");
        assert!(vb.get(2, "c").is_err());
        let ints = vb.get_with_hints_dtype(2, "b", candle_nn::Init::Const(0.), DType::I64);
        assert_eq!(ints.unwrap().to_vec1::<i64>().unwrap(), vec![7, -2]);
    }

    #[test]
    fn a_file_cut_short_or_lying_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let a = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([("a".to_owned(), a)]), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        for cut in [4, 20, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let e = Weights::open(&path).err().expect("refused").to_string();
            assert!(e.contains("w.safetensors"), "{e}");
        }
        // A shape its bytes do not fill.
        let header = br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#;
        let mut lying = (header.len() as u64).to_le_bytes().to_vec();
        lying.extend_from_slice(header);
        lying.extend_from_slice(&[0; 4]);
        std::fs::write(&path, &lying).unwrap();
        let e = Weights::open(&path).err().expect("refused").to_string();
        assert!(e.contains("w.safetensors"), "{e}");
        let mut huge = bytes.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(&path, &huge).unwrap();
        assert!(Weights::open(&path).is_err());
    }
}
