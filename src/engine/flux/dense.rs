//! Dense safetensors weights: one file, or shards listed by a `*.safetensors.index.json` (as
//! diffusers and transformers write large models). Read onto the device in the compute dtype, with
//! diffusers names turned into the BFL names candle's FLUX code reads (`names.rs`). Decides
//! nothing about weight modes (`weights.rs` does) and never writes.

use crate::engine::flux::infer::Shapes;
use crate::engine::flux::names::{self, Tensors};
use anyhow::{bail, Context, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Prefix of BFL checkpoints saved by ComfyUI-style tools.
const COMFY_PREFIX: &str = "model.diffusion_model.";

/// True for `*.safetensors` and `*.safetensors.index.json`.
pub fn is_safetensors(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json")
}

/// The files holding the weights: the shards an index names (in its folder), or the file itself.
pub fn weight_files(path: &Path) -> Result<Vec<PathBuf>> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !name.ends_with(".index.json") {
        return Ok(vec![path.to_owned()]);
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let index: Index = serde_json::from_slice(&std::fs::read(path)?)
        .with_context(|| format!("reading shard index {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let shards: BTreeSet<&String> = index.weight_map.values().collect();
    Ok(shards.into_iter().map(|s| dir.join(s)).collect())
}

fn open(path: &Path) -> Result<MmapedSafetensors> {
    let files = weight_files(path)?;
    #[allow(unsafe_code)]
    // SAFETY: model files are read-only inputs that nothing modifies while merchgen maps them.
    let st = unsafe { MmapedSafetensors::multi(&files) }
        .with_context(|| format!("reading safetensors {}", path.display()))?;
    Ok(st)
}

/// Every tensor of the file(s), on `device` in `dtype`, and the dtype holding most elements in
/// the file (for reports such as `bf16-from-f32`).
pub fn read(path: &Path, dtype: DType, device: &Device) -> Result<(Tensors, DType)> {
    let st = open(path)?;
    let mut tensors = Tensors::new();
    let mut by_dtype: HashMap<DType, usize> = HashMap::new();
    for (name, _) in st.tensors() {
        let t = st
            .load(&name, device)
            .with_context(|| format!("loading tensor {name}"))?;
        *by_dtype.entry(t.dtype()).or_default() += t.elem_count();
        tensors.insert(name, t.to_dtype(dtype)?);
    }
    let main = by_dtype
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or(dtype, |(d, _)| d);
    Ok((tensors, main))
}

/// Tensor names and shapes of the file(s), without loading data.
pub fn shapes(path: &Path) -> Result<Shapes> {
    Ok(open(path)?
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect())
}

/// Shapes of loaded tensors.
pub fn shapes_of(tensors: &Tensors) -> Shapes {
    tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect()
}

/// The FLUX transformer in BFL names, from BFL (optionally `model.diffusion_model.`-prefixed) or
/// diffusers naming.
pub fn transformer(path: &Path, dtype: DType, device: &Device) -> Result<(Tensors, DType)> {
    let (tensors, file_dtype) = read(path, dtype, device)?;
    let tensors = if names::is_diffusers_transformer(tensors.keys()) {
        names::transformer_to_bfl(tensors).context("mapping diffusers transformer names")?
    } else {
        tensors
            .into_iter()
            .map(|(n, t)| {
                (
                    n.strip_prefix(COMFY_PREFIX).map(str::to_owned).unwrap_or(n),
                    t,
                )
            })
            .collect()
    };
    if !tensors.contains_key("img_in.weight") {
        bail!(
            "{} is not a FLUX transformer (no `img_in.weight` / `x_embedder.weight`)",
            path.display()
        );
    }
    Ok((tensors, file_dtype))
}

/// The FLUX VAE in BFL (`ae.safetensors`) names, from BFL or diffusers `AutoencoderKL` naming.
pub fn vae(path: &Path, dtype: DType, device: &Device) -> Result<Tensors> {
    let (tensors, _) = read(path, dtype, device)?;
    if names::is_diffusers_vae(tensors.keys()) {
        return names::vae_to_bfl(tensors).context("mapping diffusers VAE names");
    }
    Ok(tensors)
}

/// Human-readable dtype name.
pub fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "f32",
    }
}
