//! Loading the transformer and the VAE of a resolved model onto the device, whatever their format:
//! the transformer from GGUF (dequantized once, or kept quantized) or from dense safetensors in BFL
//! or diffusers naming; the VAE from safetensors in either naming. Architecture sizes come from the
//! tensors (`infer.rs`). The pipeline (`flux.rs`) owns what this returns.

use crate::engine::files::hub::ResolvedModel;
use crate::engine::files::manifest::Role;
use crate::engine::flux::dense;
use crate::engine::flux::infer;
use crate::engine::flux::weights::{self, Transformer, WeightsMode};
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::flux::{self, autoencoder};
use std::path::Path;

/// A loaded transformer and how it is held.
pub struct LoadedTransformer {
    pub model: Transformer,
    /// Dense weights (bf16 on a GPU, f32 on the CPU) rather than quantized matmuls.
    pub dense: bool,
    /// For outcomes: `q4_0`, `bf16-from-q8_0`, `f32-from-bf16`.
    pub label: String,
    /// Hidden size and attention heads (for the memory estimate).
    pub hidden: usize,
    pub heads: usize,
}

impl LoadedTransformer {
    /// A guidance embedding (FLUX.1-dev, Kontext): such a model can run true CFG.
    pub fn guidance_embed(&self) -> bool {
        self.model.has_guidance_embed()
    }
}

/// Load the transformer in the mode `mode` asks for (safetensors are always dense).
pub fn transformer(
    model: &ResolvedModel,
    mode: WeightsMode,
    device: &Device,
) -> Result<LoadedTransformer> {
    let path = model.path(Role::Transformer);
    let facts = &model.manifest.flux;
    let dense_dtype = crate::engine::device::dense_dtype(device);
    if dense::is_safetensors(path) {
        let (tensors, file_dtype) = dense::transformer(path, dense_dtype, device)?;
        let cfg = infer::flux_config(&dense::shapes_of(&tensors), facts)?;
        log_config(&cfg, true);
        let vars = crate::engine::gguf::QVars::from_dense(tensors, device);
        let flux = Transformer::new(&cfg, vars, dense_dtype)
            .with_context(|| format!("building FLUX from {}", path.display()))?;
        return Ok(LoadedTransformer {
            model: flux,
            dense: true,
            hidden: cfg.hidden_size,
            heads: cfg.num_heads,
            label: format!(
                "{}-from-{}",
                dense::dtype_name(dense_dtype),
                dense::dtype_name(file_dtype)
            ),
        });
    }
    let summary = weights::gguf_summary(path)?;
    let cfg = infer::flux_config(&summary.shapes, facts)?;
    let free = weights::free_device_memory(device);
    let dense = weights::choose_dense(mode, summary.params, dense_dtype, free);
    log_config(&cfg, dense);
    let model = weights::load_transformer(path, &cfg, dense, dense_dtype, device)?;
    let label = if dense {
        format!(
            "{}-from-{}",
            dense::dtype_name(dense_dtype),
            summary.main_type
        )
    } else {
        summary.main_type
    };
    Ok(LoadedTransformer {
        model,
        dense,
        label,
        hidden: cfg.hidden_size,
        heads: cfg.num_heads,
    })
}

fn log_config(cfg: &flux::model::Config, dense: bool) {
    tracing::info!(
        hidden = cfg.hidden_size,
        double = cfg.depth,
        single = cfg.depth_single_blocks,
        guidance_embed = cfg.guidance_embed,
        dense,
        "loading FLUX transformer"
    );
}

/// The VAE, and its encoder again (image-to-image samples the posterior with its own noise).
pub fn vae(
    model: &ResolvedModel,
    dtype: DType,
    device: &Device,
) -> Result<(autoencoder::AutoEncoder, autoencoder::Encoder)> {
    let path = model.path(Role::Vae);
    let tensors = dense::vae(path, dtype, device)?;
    let cfg = infer::vae_config(&dense::shapes_of(&tensors), &model.manifest.vae)?;
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    let vae = autoencoder::AutoEncoder::new(&cfg, vb.clone())
        .with_context(|| format!("loading VAE {}", path.display()))?;
    let encoder = autoencoder::Encoder::new(&cfg, vb.pp("encoder"))?;
    Ok((vae, encoder))
}

/// Check that a weights file's header reads (`merchgen models verify`), whatever its format.
pub fn check_weights(path: &Path) -> Result<()> {
    if dense::is_safetensors(path) {
        dense::shapes(path).map(|_| ())
    } else {
        weights::gguf_summary(path).map(|_| ())
    }
}
