//! Writing PyTorch `.pth` checkpoints (the zip format of `torch.save` since PyTorch 1.6), so the
//! tiny random-weight upscaler and matting models are written in exactly the format their real
//! releases ship in and the loaders read them through candle's own `.pth` reader. Only what a
//! state dict needs: a (optionally wrapped) dict of name -> tensor, each tensor in its own storage
//! record. Reading is candle's (`candle_core::pickle`); nothing here parses pickles.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Tensor};
use std::io::Write;
use std::path::Path;

/// The folder inside the zip that `torch.save` names after the file; any name loads.
const ARCHIVE: &str = "archive";

/// Write `tensors` as a state dict to `path`, under `wrapper_key` when given (Real-ESRGAN's
/// releases keep their weights under `params_ema`, so `torch.load(f)["params_ema"]`).
/// `torch.load(path, weights_only=True)` and `candle_core::pickle` both read the result.
pub(crate) fn write_state_dict(
    path: &Path,
    wrapper_key: Option<&str>,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    // Stored records, data aligned to 64 bytes as torch writes them (so torch can map them).
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true)
        .with_alignment(64);
    let pickle = state_dict_pickle(wrapper_key, tensors)?;
    zip.start_file(format!("{ARCHIVE}/data.pkl"), opts)?;
    zip.write_all(&pickle)?;
    zip.start_file(format!("{ARCHIVE}/byteorder"), opts)?;
    zip.write_all(b"little")?;
    for (i, (name, tensor)) in tensors.iter().enumerate() {
        zip.start_file(format!("{ARCHIVE}/data/{i}"), opts)?;
        zip.write_all(&raw_bytes(tensor).with_context(|| format!("tensor {name}"))?)?;
    }
    zip.start_file(format!("{ARCHIVE}/version"), opts)?;
    zip.write_all(b"3\n")?;
    zip.finish()?.flush()?;
    Ok(())
}

/// The storage class torch names for a dtype.
fn storage_class(dtype: DType) -> Result<&'static str> {
    Ok(match dtype {
        DType::F32 => "FloatStorage",
        DType::F16 => "HalfStorage",
        DType::BF16 => "BFloat16Storage",
        DType::F64 => "DoubleStorage",
        DType::I64 => "LongStorage",
        DType::U8 => "ByteStorage",
        other => bail!("no torch storage for {other:?}"),
    })
}

/// The tensor's elements in row-major order, little-endian.
fn raw_bytes(tensor: &Tensor) -> Result<Vec<u8>> {
    let flat = tensor.flatten_all()?;
    Ok(match tensor.dtype() {
        DType::F32 => flat
            .to_vec1::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => flat
            .to_vec1::<f64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F16 => flat
            .to_vec1::<half::f16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::BF16 => flat
            .to_vec1::<half::bf16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I64 => flat
            .to_vec1::<i64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::U8 => flat.to_vec1::<u8>()?,
        other => bail!("no torch storage for {other:?}"),
    })
}

/// Pickle protocol 2 opcodes used below.
mod op {
    pub(super) const PROTO: u8 = 0x80;
    pub(super) const GLOBAL: u8 = b'c';
    pub(super) const EMPTY_TUPLE: u8 = b')';
    pub(super) const EMPTY_DICT: u8 = b'}';
    pub(super) const REDUCE: u8 = b'R';
    pub(super) const MARK: u8 = b'(';
    pub(super) const TUPLE: u8 = b't';
    pub(super) const BINUNICODE: u8 = b'X';
    pub(super) const BININT: u8 = b'J';
    pub(super) const BINPERSID: u8 = b'Q';
    pub(super) const NEWFALSE: u8 = 0x89;
    pub(super) const SETITEM: u8 = b's';
    pub(super) const SETITEMS: u8 = b'u';
    pub(super) const STOP: u8 = b'.';
}

/// A pickle byte stream under construction.
struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, code: u8) {
        self.0.push(code);
    }
    fn global(&mut self, module: &str, name: &str) {
        self.op(op::GLOBAL);
        self.0
            .extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }
    fn text(&mut self, s: &str) {
        self.op(op::BINUNICODE);
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn int(&mut self, v: usize) -> Result<()> {
        let v = i32::try_from(v).context("a size over 2^31 does not fit this writer")?;
        self.op(op::BININT);
        self.0.extend_from_slice(&v.to_le_bytes());
        Ok(())
    }
    fn int_tuple(&mut self, values: &[usize]) -> Result<()> {
        self.op(op::MARK);
        for v in values {
            self.int(*v)?;
        }
        self.op(op::TUPLE);
        Ok(())
    }
    fn ordered_dict(&mut self) {
        self.global("collections", "OrderedDict");
        self.op(op::EMPTY_TUPLE);
        self.op(op::REDUCE);
    }
    /// `torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`.
    fn tensor(&mut self, record: usize, tensor: &Tensor) -> Result<()> {
        let dims = tensor.dims();
        let mut stride = vec![1usize; dims.len()];
        for i in (0..dims.len().saturating_sub(1)).rev() {
            stride[i] = stride[i + 1] * dims[i + 1];
        }
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.op(op::MARK);
        self.op(op::MARK);
        self.text("storage");
        self.global("torch", storage_class(tensor.dtype())?);
        self.text(&record.to_string());
        self.text("cpu");
        self.int(tensor.elem_count())?;
        self.op(op::TUPLE);
        self.op(op::BINPERSID);
        self.int(0)?;
        self.int_tuple(dims)?;
        self.int_tuple(&stride)?;
        self.op(op::NEWFALSE);
        self.ordered_dict();
        self.op(op::TUPLE);
        self.op(op::REDUCE);
        Ok(())
    }
}

fn state_dict_pickle(wrapper_key: Option<&str>, tensors: &[(String, Tensor)]) -> Result<Vec<u8>> {
    let mut p = Pickle(vec![op::PROTO, 2]);
    if let Some(key) = wrapper_key {
        p.op(op::EMPTY_DICT);
        p.text(key);
    }
    p.ordered_dict();
    p.op(op::MARK);
    for (i, (name, tensor)) in tensors.iter().enumerate() {
        p.text(name);
        p.tensor(i, tensor)?;
    }
    p.op(op::SETITEMS);
    if wrapper_key.is_some() {
        p.op(op::SETITEM);
    }
    p.op(op::STOP);
    Ok(p.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn sample() -> Vec<(String, Tensor)> {
        let dev = Device::Cpu;
        vec![
            (
                "conv.weight".to_owned(),
                Tensor::arange(0f32, 24., &dev)
                    .unwrap()
                    .reshape((2, 3, 2, 2))
                    .unwrap(),
            ),
            (
                "conv.bias".to_owned(),
                Tensor::new(&[0.5f32, -1.5], &dev).unwrap(),
            ),
            (
                "bn.num_batches_tracked".to_owned(),
                Tensor::new(7i64, &dev).unwrap(),
            ),
        ]
    }

    #[test]
    fn write_state_dict_bare_reads_back_in_candle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pth");
        let tensors = sample();
        write_state_dict(&path, None, &tensors).unwrap();
        let read = candle_core::pickle::read_all(&path).unwrap();
        assert_eq!(read.len(), 3);
        for (name, want) in &tensors {
            let got = &read.iter().find(|(n, _)| n == name).unwrap().1;
            assert_eq!(got.dims(), want.dims(), "{name}");
            let diff = got
                .to_dtype(DType::F64)
                .unwrap()
                .sub(&want.to_dtype(DType::F64).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert_eq!(diff, 0.0, "{name}");
        }
    }

    #[test]
    fn write_state_dict_wrapped_reads_back_under_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pth");
        write_state_dict(&path, Some("params_ema"), &sample()).unwrap();
        let read = candle_core::pickle::read_all_with_key(&path, Some("params_ema")).unwrap();
        assert_eq!(read.len(), 3);
        assert!(candle_core::pickle::read_all_with_key(&path, Some("params")).is_err());
    }
}
