//! The engine: one folder per model family and the parts they share.
//! - `files/`: finding and describing model files (hub cache, presets, manifests, `.pth`);
//! - `flux/`: FLUX.1 text-to-image and image-to-image (loading, text encoders, sampling);
//! - `matting/`: background removal (U²-Net, IS-Net); `upscale/`: Real-ESRGAN super-resolution;
//! - `finish`: the finishing models as the engine thread holds them (loaded on first use);
//! - `tiny/`: tiny random-weight models of every family, in the real formats, for tests;
//! - `thread`: the one thread that owns the device and runs generate, matting and upscale;
//! - `device`: picking and naming the device.
//!
//! Nothing here knows about doors, outputs or webhooks.

pub mod device;
pub mod files;
pub mod finish;
pub mod flux;
pub mod gguf;
pub mod matting;
pub mod memory;
pub mod thread;
pub mod tiny;
pub mod upscale;

use crate::error::{ErrorCode, JobError};
use crate::job::outcome::ModelInfo;
use image::RgbaImage;
use std::sync::atomic::AtomicBool;

pub use thread::{EngineHandle, FinishHandle};

/// One generation call: `num_images` variations of one prompt.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub seed: u64,
    pub num_images: u32,
    pub max_sequence_length: u32,
    /// Image-to-image: the photo to start from.
    pub init: Option<InitImage>,
    /// Initial noise given from outside (parity runs), instead of drawn from the seed.
    pub noise: Option<NoiseOverride>,
    /// Save the final latents `(num_images, 16, h/8, w/8)` before VAE decoding to this
    /// safetensors file (tensor `latents`; `merchgen invoke --dump-latents`, parity runs).
    pub dump_latents: Option<std::path::PathBuf>,
    /// Images generated at once at most (memory admission may lower the pipeline's own).
    pub max_batch: Option<u32>,
    /// True classifier-free guidance against a negative prompt (models with guidance embeds).
    pub true_cfg: Option<TrueCfg>,
    /// The job's LoRAs, in its order.
    pub loras: Vec<flux::lora::LoraInput>,
}

/// diffusers' `true_cfg_scale` with a negative prompt: two transformer passes per step, the
/// prediction `neg + scale * (pos - neg)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueCfg {
    pub negative_prompt: String,
    /// Above 1.
    pub scale: f64,
}

/// What must agree for requests to share one forward pass: the latent size, the schedule, the
/// guidance and the text length. Each request keeps its own prompt, seeds and image count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchKey {
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub max_sequence_length: u32,
    /// The LoRA set (files and scales), hashed: one pass runs on one set of weights.
    pub loras: u64,
}

impl GenerateRequest {
    /// The key of requests this one can be batched with; `None` for image-to-image (its own
    /// start in the schedule), true CFG (two passes per step), given noise and latent dumps
    /// (parity runs stand alone).
    pub fn batch_key(&self) -> Option<BatchKey> {
        if self.init.is_some()
            || self.noise.is_some()
            || self.dump_latents.is_some()
            || self.true_cfg.is_some()
        {
            return None;
        }
        Some(BatchKey {
            width: self.width,
            height: self.height,
            steps: self.steps,
            guidance: self.guidance,
            max_sequence_length: self.max_sequence_length,
            loras: self.lora_set_hash(),
        })
    }

    /// A hash of the LoRAs that change the weights (scale not 0), in order.
    pub fn lora_set_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        flux::lora::set_key(&self.loras).hash(&mut h);
        h.finish()
    }
}

/// How the engine thread gathers queued jobs into one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Images in one pass at most, across jobs (1: every job alone).
    pub max_images: u32,
    /// How long the engine waits for a compatible job to join a batch that is not full.
    pub wait: std::time::Duration,
}

impl BatchPolicy {
    /// Every job alone.
    pub const NONE: BatchPolicy = BatchPolicy {
        max_images: 1,
        wait: std::time::Duration::ZERO,
    };
}

/// One job's part of a batched generation.
pub struct BatchMember<'a> {
    pub req: &'a GenerateRequest,
    pub cancel: &'a AtomicBool,
    pub on_step: StepCallback<'a>,
}

/// The photo of an image-to-image request.
#[derive(Debug, Clone)]
pub struct InitImage {
    pub image: RgbaImage,
    /// In (0, 1]: how much of the schedule is run (diffusers' semantics; image-to-image only).
    pub strength: f64,
    pub fit: flux::img2img::ImageFit,
    /// A Kontext edit (the photo is a reference the whole schedule sees) rather than
    /// image-to-image (the photo is noised and denoised from part-way).
    pub edit: bool,
}

/// Noise read from a file (`merchgen invoke --initial-noise`), so a run starts from exactly the
/// numbers of another implementation.
#[derive(Debug, Clone)]
pub struct NoiseOverride {
    /// `(num_images, 16, height/8, width/8)`, f32.
    pub latents: candle_core::Tensor,
    /// VAE posterior noise `(1, 16, height/8, width/8)` for image-to-image.
    pub vae_eps: Option<candle_core::Tensor>,
}

impl NoiseOverride {
    /// Read tensors `noise` and optionally `vae_noise` from a safetensors file.
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut tensors = candle_core::safetensors::load(path, &candle_core::Device::Cpu)?;
        let latents = tensors
            .remove("noise")
            .ok_or_else(|| anyhow::anyhow!("{} has no tensor named `noise`", path.display()))?
            .to_dtype(candle_core::DType::F32)?;
        let vae_eps = tensors
            .remove("vae_noise")
            .map(|t| t.to_dtype(candle_core::DType::F32))
            .transpose()?;
        Ok(NoiseOverride { latents, vae_eps })
    }
}

/// One generated image and the seed that made it.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    pub image: RgbaImage,
    pub seed: u64,
}

/// Per-stage milliseconds of one generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    pub encode_text_ms: u64,
    /// Image-to-image: VAE encoding of the photo.
    pub encode_image_ms: u64,
    pub denoise_ms: u64,
    pub decode_ms: u64,
    /// Each denoising step, in order (all batches).
    pub step_ms: Vec<u64>,
    /// Reading and parsing the job's LoRA files (0: none, or the set was already applied).
    pub lora_load_ms: u64,
    /// Applying them to the weights.
    pub lora_apply_ms: u64,
}

/// What a generation returns.
#[derive(Debug, Clone)]
pub struct GenerateOutput {
    pub images: Vec<GeneratedImage>,
    pub timings: StageTimings,
}

/// What loading the model cost, reported once per process.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub info: ModelInfo,
    pub load_ms: u64,
    pub bytes: u64,
    pub source: String,
    /// Job defaults of this model (size, steps, guidance, T5 length).
    pub defaults: crate::job::validate::GenerationDefaults,
    /// What a generation costs in device memory (`None`: no estimate for this generator).
    pub footprint: Option<memory::Footprint>,
    /// Device bytes free right after loading, if the device can tell.
    pub free_after_load: Option<u64>,
    /// Milliseconds of the warm-up pass after loading (`MERCHGEN_WARMUP`); `None`: none ran.
    pub warm_up_ms: Option<u64>,
}

/// Called after each denoising step with (step, total); returning is cheap.
pub type StepCallback<'a> = &'a mut dyn FnMut(u32, u32);

/// A loaded image generator. Synchronous: it runs on the engine thread that owns the device.
pub trait Generator: Send {
    fn load_report(&self) -> &LoadReport;

    /// Device bytes free now, if the device can tell (asked on the engine thread after each
    /// generation, for `/metrics`).
    fn free_memory(&self) -> Option<u64> {
        None
    }
    /// Generate; checks `cancel` between denoising steps.
    fn generate(
        &mut self,
        req: &GenerateRequest,
        cancel: &AtomicBool,
        on_step: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError>;

    /// Images this generator can denoise in one forward pass (1: it cannot batch jobs).
    fn batch_images(&self) -> usize {
        1
    }

    /// Generate several requests with the same [`BatchKey`] in shared forward passes; each gets
    /// the result it would get alone (same seeds, same images), and a member that fails or is
    /// cancelled fails alone. The default runs them one after another.
    fn generate_batch(
        &mut self,
        members: &mut [BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        members
            .iter_mut()
            .map(|m| self.generate(m.req, m.cancel, &mut *m.on_step))
            .collect()
    }
}

/// Engine failures, mapped to public codes at the job boundary.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the job was cancelled")]
    Cancelled,
    #[error("the GPU ran out of memory: {0}")]
    OutOfMemory(String),
    #[error("generation failed: {0}")]
    Failed(String),
    #[error("model unavailable: {0}")]
    ModelUnavailable(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the engine thread stopped")]
    Stopped,
}

impl EngineError {
    /// Classify a candle / loading error.
    pub fn from_candle(e: impl std::fmt::Display) -> Self {
        let text = format!("{e:#}");
        if text.contains("out of memory") || text.contains("OUT_OF_MEMORY") {
            EngineError::OutOfMemory(text)
        } else {
            EngineError::Failed(text)
        }
    }

    /// True when the device may be unusable afterwards (a RunPod worker should be replaced).
    pub fn device_broken(&self) -> bool {
        matches!(self, EngineError::Failed(t) if t.contains("CUDA_ERROR") || t.contains("cuda error"))
            || matches!(self, EngineError::Stopped)
    }
}

impl From<EngineError> for JobError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Cancelled => JobError::new(ErrorCode::Cancelled, "the job was cancelled"),
            EngineError::OutOfMemory(_) => JobError::new(
                ErrorCode::GpuOutOfMemory,
                "the GPU ran out of memory; try fewer images or a smaller size",
            ),
            EngineError::Failed(_) | EngineError::Stopped => {
                JobError::new(ErrorCode::GenerationFailed, "image generation failed")
            }
            EngineError::ModelUnavailable(m) => JobError::new(ErrorCode::ModelUnavailable, m),
            EngineError::Invalid { field, message } => JobError::invalid(field, message),
        }
    }
}
