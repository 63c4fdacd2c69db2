//! The FLUX transformer and VAE from dense safetensors (read by `engine::files::safetensors`),
//! with diffusers names turned into the BFL names candle's FLUX code reads (`names`). Decides
//! nothing about weight modes (`weights.rs` does) and never writes.

use crate::engine::files::safetensors::{read, Tensors};
use crate::engine::flux::names;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use std::path::Path;

/// Prefix of BFL checkpoints saved by ComfyUI-style tools.
const COMFY_PREFIX: &str = "model.diffusion_model.";

/// The FLUX transformer in BFL names, from BFL (optionally `model.diffusion_model.`-prefixed) or
/// diffusers naming.
pub(crate) fn transformer(path: &Path, dtype: DType, device: &Device) -> Result<(Tensors, DType)> {
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
pub(crate) fn vae(path: &Path, dtype: DType, device: &Device) -> Result<Tensors> {
    let (tensors, _) = read(path, dtype, device)?;
    if names::is_diffusers_vae(tensors.keys()) {
        return names::vae_to_bfl(tensors).context("mapping diffusers VAE names");
    }
    Ok(tensors)
}
