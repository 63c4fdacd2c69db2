//! Safetensors files as every model family stores them: one file, or shards listed by a
//! `*.safetensors.index.json` (as diffusers and transformers write large models), memory-mapped
//! and read onto a device in a dtype, or only their tensor names and shapes.

use anyhow::{Context, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// Tensors by name.
pub type Tensors = HashMap<String, Tensor>;

/// Tensor shapes by name.
pub(crate) type Shapes = BTreeMap<String, Vec<usize>>;

/// True for `*.safetensors` and `*.safetensors.index.json`.
pub(crate) fn is_safetensors(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json")
}

/// The files holding the weights: the shards an index names (in its folder), or the file itself.
pub(crate) fn weight_files(path: &Path) -> Result<Vec<PathBuf>> {
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
pub(crate) fn read(path: &Path, dtype: DType, device: &Device) -> Result<(Tensors, DType)> {
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
pub(crate) fn shapes(path: &Path) -> Result<Shapes> {
    Ok(open(path)?
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec()))
        .collect())
}

/// Shapes of loaded tensors.
pub(crate) fn shapes_of(tensors: &Tensors) -> Shapes {
    tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.dims().to_vec()))
        .collect()
}

/// Human-readable dtype name.
pub(crate) fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::BF16 => "bf16",
        DType::F16 => "f16",
        DType::F64 => "f64",
        _ => "f32",
    }
}
