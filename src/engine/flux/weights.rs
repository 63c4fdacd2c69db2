//! Loading weights: the FLUX transformer from a memory-mapped GGUF (`engine::gguf`) in one of two modes (dequantized once to a
//! dense dtype for fast matmuls, or kept quantized for low memory), and the memory-map helper.
//! Dense safetensors (BFL or diffusers naming) are read by `dense.rs`. Reports bytes read.

use crate::engine::flux::infer::Shapes;
use crate::engine::gguf::{MappedGguf, QVars};
use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::flux;
use std::collections::HashMap;
use std::path::Path;

/// How transformer weights are held on the device.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum WeightsMode {
    /// Dense if the dequantized weights fit in free device memory, else quantized.
    Auto,
    /// Dequantize once at load (bf16 on a GPU, f32 on the CPU).
    Bf16,
    /// Keep the GGUF blocks and use quantized matmuls.
    Quantized,
}

/// The transformer, in either mode (merchgen's own code for both).
pub use crate::engine::flux::transformer::FluxTransformer as Transformer;

/// Facts about a GGUF file read from its header alone.
pub struct GgufSummary {
    pub shapes: Shapes,
    pub(crate) params: u64,
    /// The quantized type holding the most parameters, e.g. `q4_0`.
    pub(crate) main_type: String,
}

/// Read tensor names, shapes and types of a GGUF without loading data.
pub fn gguf_summary(path: &Path) -> Result<GgufSummary> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .with_context(|| format!("reading GGUF header of {}", path.display()))?;
    let mut shapes = Shapes::new();
    let mut by_type: HashMap<GgmlDType, u64> = HashMap::new();
    for (name, info) in &content.tensor_infos {
        let n = info.shape.elem_count() as u64;
        *by_type.entry(info.ggml_dtype).or_default() += n;
        shapes.insert(name.clone(), info.shape.dims().to_vec());
    }
    let main_type = by_type
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(t, _)| format!("{t:?}").to_lowercase())
        .unwrap_or_default();
    Ok(GgufSummary {
        shapes,
        params: by_type.values().sum(),
        main_type: main_type.replace("q4k", "q4_k").replace("q8k", "q8_k"),
    })
}

/// A VarBuilder over a memory-mapped safetensors file.
pub(crate) fn mmap_safetensors(
    path: &Path,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>> {
    #[allow(unsafe_code)]
    // SAFETY: model files are read-only inputs that nothing modifies while merchgen maps them.
    let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[path], dtype, device) }
        .with_context(|| format!("mapping {}", path.display()))?;
    Ok(vb)
}

/// Load the transformer. `dense` picks the mode; `dtype` is the dense compute dtype.
pub(crate) fn load_transformer(
    path: &Path,
    cfg: &flux::model::Config,
    dense: bool,
    dtype: DType,
    device: &Device,
) -> Result<Transformer> {
    if !dense {
        let vb = QVars::from_gguf(path, device, |name| Some(name.to_owned()))?;
        return Ok(Transformer::new(cfg, vb, DType::F32)?);
    }
    let gguf = MappedGguf::open(path)?;
    let mut tensors: HashMap<String, Tensor> =
        HashMap::with_capacity(gguf.content().tensor_infos.len());
    // Dequantize one tensor at a time on the device: peak extra memory is one f32 tensor.
    gguf.for_each_tensor(device, |name, q| {
        tensors.insert(name.to_owned(), q.dequantize(device)?.to_dtype(dtype)?);
        Ok(())
    })?;
    Ok(Transformer::new(
        cfg,
        QVars::from_dense(tensors, device),
        dtype,
    )?)
}

/// Bytes of memory the device has free, if it can tell.
pub(crate) fn free_device_memory(device: &Device) -> Option<u64> {
    if device.is_cpu() {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        return Some(kib * 1024);
    }
    cuda_free_memory()
}

#[cfg(feature = "cuda")]
fn cuda_free_memory() -> Option<u64> {
    candle_core::cuda_backend::cudarc::driver::result::mem_get_info()
        .ok()
        .map(|(free, _total)| free as u64)
}

#[cfg(not(feature = "cuda"))]
fn cuda_free_memory() -> Option<u64> {
    None
}

/// Decide the mode: dense when the dequantized transformer plus a working margin fits.
pub(crate) fn choose_dense(
    mode: WeightsMode,
    params: u64,
    dtype: DType,
    free: Option<u64>,
) -> bool {
    match mode {
        WeightsMode::Bf16 => true,
        WeightsMode::Quantized => false,
        WeightsMode::Auto => {
            let need = params * dtype.size_in_bytes() as u64;
            // Text encoders, VAE, activations and attention scores need room beside the weights.
            free.is_some_and(|free| need + need / 2 + (6 << 30) / 4 <= free)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_dense_follows_mode_and_memory() {
        assert!(choose_dense(WeightsMode::Bf16, 1, DType::BF16, None));
        assert!(!choose_dense(
            WeightsMode::Quantized,
            1,
            DType::BF16,
            Some(u64::MAX)
        ));
        assert!(!choose_dense(
            WeightsMode::Auto,
            12_000_000_000,
            DType::BF16,
            Some(20 << 30)
        ));
        assert!(choose_dense(
            WeightsMode::Auto,
            12_000_000_000,
            DType::BF16,
            Some(80 << 30)
        ));
        assert!(!choose_dense(WeightsMode::Auto, 1, DType::F32, None));
    }
}
