//! Loading a resolved model onto the device: `FluxPipeline::load` reads the four components at
//! once (transformer, VAE, CLIP, T5) and reports what it cost. The transformer comes from GGUF
//! (dequantized once, or kept quantized) or from dense safetensors in BFL or diffusers naming;
//! the VAE from safetensors in either naming. Architecture sizes come from the tensors
//! (`infer.rs`).

use super::lora;
use super::pipeline::{FluxPipeline, LoadOptions};
use super::text::{ClipEncoder, T5Encoder};
use crate::engine::files::hub::ResolvedModel;
use crate::engine::files::manifest::Role;
use crate::engine::files::safetensors;
use crate::engine::flux::dense;
use crate::engine::flux::infer;
use crate::engine::flux::weights::{self, Transformer, WeightsMode};
use crate::engine::LoadReport;
use anyhow::{Context, Result};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::flux::{self, autoencoder};
use std::path::Path;
use std::time::Instant;

impl FluxPipeline {
    /// Load every component of `model` onto `device`.
    pub fn load(model: &ResolvedModel, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let started = Instant::now();
        let m = &model.manifest;
        let dense_dtype = crate::engine::device::dense_dtype(device);
        // The four components are independent: load them at once (the transformer and T5 are
        // most of the bytes; each loader is mostly copying and converting, so this overlaps
        // that work with the other's disk reads and uses every core).
        let (loaded, vae, clip, t5) = std::thread::scope(|scope| {
            let t5 = scope.spawn(|| {
                T5Encoder::load(
                    model.path(Role::T5),
                    model.path(Role::T5Config),
                    model.path(Role::T5Tokenizer),
                    dense_dtype,
                    device,
                )
            });
            let clip = scope.spawn(|| {
                ClipEncoder::load(
                    model.path(Role::Clip),
                    model.path(Role::ClipConfig),
                    model.path(Role::ClipTokenizer),
                    dense_dtype,
                    device,
                )
            });
            let vae = scope.spawn(|| vae(model, dense_dtype, device));
            let loaded = transformer(model, opts.weights, device);
            let join = |name: &str| anyhow::anyhow!("the {name} loader panicked");
            (
                loaded,
                vae.join().unwrap_or_else(|_| Err(join("VAE"))),
                clip.join().unwrap_or_else(|_| Err(join("CLIP"))),
                t5.join().unwrap_or_else(|_| Err(join("T5"))),
            )
        });
        let loaded = loaded?;
        let guidance_embed = loaded.guidance_embed();
        let (transformer, dense) = (loaded.model, loaded.dense);
        let footprint = crate::engine::memory::Footprint {
            hidden: loaded.hidden as u64,
            heads: loaded.heads as u64,
            act_bytes: if dense {
                dense_dtype.size_in_bytes() as u64
            } else {
                4
            },
            vae_bytes: dense_dtype.size_in_bytes() as u64,
        };
        let act_dtype = if dense { dense_dtype } else { DType::F32 };
        let (vae, vae_encoder) = vae?;
        let (clip, t5) = (clip?, t5?);
        let report = LoadReport {
            info: crate::engine::ModelInfo {
                preset: m.name.clone(),
                weights: loaded.label,
                device: crate::engine::device::name(device),
                load_bytes: Some(model.total_bytes()),
                peak_host_memory_bytes: crate::engine::memory::peak_resident_bytes(),
            },
            load_ms: started.elapsed().as_millis() as u64,
            bytes: model.total_bytes(),
            source: model.source.clone(),
            defaults: crate::engine::ModelDefaults {
                width: m.defaults.width,
                height: m.defaults.height,
                steps: m.defaults.steps,
                guidance: m.defaults.guidance,
                max_sequence_length: m.defaults.max_sequence_length,
                // diffusers runs true CFG on any FLUX; merchgen offers it where a guidance
                // embedding shows a dev-type model (schnell's distillation has no use for it).
                true_cfg: guidance_embed,
                edit: m.flux.kontext,
            },
            footprint: Some(footprint),
            free_after_load: crate::engine::flux::weights::free_device_memory(device),
            warm_up_ms: None,
        };
        tracing::info!(elapsed_ms = report.load_ms, bytes = report.bytes, weights = %report.info.weights,
            device = %report.info.device, peak_host_memory_bytes = report.info.peak_host_memory_bytes,
            "model loaded");
        match m.license {
            Some(l @ crate::engine::files::manifest::License::Apache2) => {
                tracing::info!(license = l.name(), preset = %m.name, "model licence: {}", l.commercial_note())
            }
            Some(l) => {
                tracing::warn!(license = l.name(), preset = %m.name, "model licence: {}", l.commercial_note())
            }
            None => tracing::info!(preset = %m.name, "model licence not recorded in its manifest"),
        }
        Ok(FluxPipeline {
            device: device.clone(),
            act_dtype,
            vae_dtype: dense_dtype,
            transformer,
            vae,
            vae_encoder,
            vae_shift: m.vae.shift_factor,
            vae_scale: m.vae.scale_factor,
            clip,
            t5,
            schedule: m.flux.schedule,
            // Both weight modes batch (the transformer is merchgen's own in both, see
            // `transformer/`).
            max_batch: opts.max_batch.max(1) as usize,
            report,
            loras: lora::LoraState::default(),
        })
    }
}

/// A loaded transformer and how it is held.
pub(crate) struct LoadedTransformer {
    pub model: Transformer,
    /// Dense weights (bf16 on a GPU, f32 on the CPU) rather than quantized matmuls.
    pub dense: bool,
    /// For outcomes: `q4_0`, `bf16-from-q8_0`, `f32-from-bf16`.
    pub(crate) label: String,
    /// Hidden size and attention heads (for the memory estimate).
    pub(crate) hidden: usize,
    pub(crate) heads: usize,
}

impl LoadedTransformer {
    /// A guidance embedding (FLUX.1-dev, Kontext): such a model can run true CFG.
    pub(crate) fn guidance_embed(&self) -> bool {
        self.model.has_guidance_embed()
    }
}

/// Load the transformer in the mode `mode` asks for (safetensors are always dense).
pub(crate) fn transformer(
    model: &ResolvedModel,
    mode: WeightsMode,
    device: &Device,
) -> Result<LoadedTransformer> {
    let path = model.path(Role::Transformer);
    let facts = &model.manifest.flux;
    let dense_dtype = crate::engine::device::dense_dtype(device);
    if safetensors::is_safetensors(path) {
        let (tensors, file_dtype) = dense::transformer(path, dense_dtype, device)?;
        let cfg = infer::flux_config(&safetensors::shapes_of(&tensors), facts)?;
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
                safetensors::dtype_name(dense_dtype),
                safetensors::dtype_name(file_dtype)
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
            safetensors::dtype_name(dense_dtype),
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
pub(crate) fn vae(
    model: &ResolvedModel,
    dtype: DType,
    device: &Device,
) -> Result<(autoencoder::AutoEncoder, autoencoder::Encoder)> {
    let path = model.path(Role::Vae);
    let tensors = dense::vae(path, dtype, device)?;
    let cfg = infer::vae_config(&safetensors::shapes_of(&tensors), &model.manifest.vae)?;
    let vb = VarBuilder::from_tensors(tensors, dtype, device);
    let vae = autoencoder::AutoEncoder::new(&cfg, vb.clone())
        .with_context(|| format!("loading VAE {}", path.display()))?;
    let encoder = autoencoder::Encoder::new(&cfg, vb.pp("encoder"))?;
    Ok((vae, encoder))
}

/// Check that a weights file's header reads (`merchgen models verify`), whatever its format.
pub(crate) fn check_weights(path: &Path) -> Result<()> {
    if safetensors::is_safetensors(path) {
        safetensors::shapes(path).map(|_| ())
    } else {
        weights::gguf_summary(path).map(|_| ())
    }
}
