//! A GGUF with its tensors renamed, built without decoding or re-encoding a single tensor:
//! a fresh header (GGUF v3, no metadata but the alignment, each kept tensor's new name, shape,
//! type and its original offset) followed by the original file's tensor data, byte for byte.
//! Offsets in GGUF are relative to the data section, so they stay valid. candle's quantized T5
//! wants Hugging Face names while T5 GGUFs in the wild use llama.cpp's; this replaces reading
//! every tensor, writing a new GGUF in memory and parsing it again (three copies of the weights
//! in host memory at the peak) with one copy of the file.

use anyhow::{bail, Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// GGUF's own type ids (ggml.h), as the file format stores them.
fn type_id(dtype: GgmlDType) -> u32 {
    match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q5_0 => 6,
        GgmlDType::Q5_1 => 7,
        GgmlDType::Q8_0 => 8,
        GgmlDType::Q8_1 => 9,
        GgmlDType::Q2K => 10,
        GgmlDType::Q3K => 11,
        GgmlDType::Q4K => 12,
        GgmlDType::Q5K => 13,
        GgmlDType::Q6K => 14,
        GgmlDType::Q8K => 15,
        GgmlDType::BF16 => 30,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// The GGUF at `path` in memory with each tensor `rename` maps renamed (and the ones it maps to
/// `None` left out of the header; their bytes stay in the data, unreferenced).
pub fn renamed(path: &Path, rename: impl Fn(&str) -> Option<String>) -> Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let content = gguf_file::Content::read(&mut file)
        .with_context(|| format!("reading the GGUF header of {}", path.display()))?;
    let alignment = match content.metadata.get("general.alignment") {
        Some(gguf_file::Value::U32(a)) => u64::from(*a),
        Some(gguf_file::Value::U64(a)) => *a,
        _ => gguf_file::DEFAULT_ALIGNMENT,
    };
    if alignment == 0 {
        bail!("{}: general.alignment is 0", path.display());
    }
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let kept: Vec<(String, &gguf_file::TensorInfo)> = names
        .into_iter()
        .filter_map(|name| {
            let new = rename(name);
            if new.is_none() {
                tracing::debug!(tensor = %name, "left out of the renamed GGUF");
            }
            new.map(|n| (n, &content.tensor_infos[name]))
        })
        .collect();
    let data_len = file.seek(SeekFrom::End(0))? - content.tensor_data_offset;
    let mut out = Vec::new();
    out.extend_from_slice(b"GGUF");
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(kept.len() as u64).to_le_bytes());
    let custom_alignment = alignment != gguf_file::DEFAULT_ALIGNMENT;
    out.extend_from_slice(&u64::from(custom_alignment).to_le_bytes());
    if custom_alignment {
        put_string(&mut out, "general.alignment");
        out.extend_from_slice(&4u32.to_le_bytes()); // value type: u32
        out.extend_from_slice(&(alignment as u32).to_le_bytes());
    }
    for (name, info) in &kept {
        put_string(&mut out, name);
        let dims = info.shape.dims();
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        // GGUF lists dimensions innermost first; candle's shape is outermost first.
        for d in dims.iter().rev() {
            out.extend_from_slice(&(*d as u64).to_le_bytes());
        }
        out.extend_from_slice(&type_id(info.ggml_dtype).to_le_bytes());
        out.extend_from_slice(&info.offset.to_le_bytes());
    }
    let padded = (out.len() as u64).div_ceil(alignment) * alignment;
    out.resize(padded as usize, 0);
    out.reserve_exact(data_len as usize);
    file.seek(SeekFrom::Start(content.tensor_data_offset))?;
    file.take(data_len).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    #[test]
    fn renamed_tensors_read_back_equal_under_their_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let dev = Device::Cpu;
        let a = Tensor::arange(0f32, 64.0, &dev)
            .unwrap()
            .reshape((2, 32))
            .unwrap();
        let b = Tensor::arange(0f32, 256.0, &dev)
            .unwrap()
            .reshape((8, 32))
            .unwrap();
        let qa = QTensor::quantize(&a, GgmlDType::Q8_0).unwrap();
        let qb = QTensor::quantize(&b, GgmlDType::F32).unwrap();
        let mut f = std::fs::File::create(&path).unwrap();
        gguf_file::write(
            &mut f,
            &[],
            &[("enc.a", &qa), ("drop.me", &qb), ("enc.b", &qb)],
        )
        .unwrap();
        drop(f);
        let bytes = renamed(&path, |n| n.strip_prefix("enc.").map(|r| format!("hf.{r}"))).unwrap();
        let mut cursor = std::io::Cursor::new(&bytes);
        let content = gguf_file::Content::read(&mut cursor).unwrap();
        let mut names: Vec<_> = content.tensor_infos.keys().cloned().collect();
        names.sort();
        assert_eq!(names, ["hf.a", "hf.b"]);
        for (new, old) in [("hf.a", &qa), ("hf.b", &qb)] {
            let t = content.tensor(&mut cursor, new, &dev).unwrap();
            assert_eq!(t.dtype(), old.dtype());
            let got: Vec<f32> = t
                .dequantize(&dev)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want: Vec<f32> = old
                .dequantize(&dev)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got, want, "{new}");
        }
    }
}
