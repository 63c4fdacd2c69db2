//! What a generation is asked for: the request (prompt, size, schedule, photo, LoRAs, noise),
//! how requests are grouped into one forward pass (`BatchKey`, `BatchPolicy`, `BatchMember`),
//! and the per-step callback. Model-family neutral: every family reads these.

use image::RgbaImage;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

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
    pub dump_latents: Option<PathBuf>,
    /// Images generated at once at most (memory admission may lower the pipeline's own).
    pub max_batch: Option<u32>,
    /// True classifier-free guidance against a negative prompt (models with guidance embeds).
    pub true_cfg: Option<TrueCfg>,
    /// The job's LoRAs, in its order.
    pub loras: Vec<LoraInput>,
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
    pub(crate) fn batch_key(&self) -> Option<BatchKey> {
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
    pub(crate) fn lora_set_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        set_key(&self.loras).hash(&mut h);
        h.finish()
    }
}

/// How the engine thread gathers queued jobs into one forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchPolicy {
    /// Images in one pass at most, across jobs (1: every job alone).
    pub(crate) max_images: u32,
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

impl Default for BatchPolicy {
    /// Every job alone.
    fn default() -> Self {
        BatchPolicy::NONE
    }
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
    pub fit: ImageFit,
    /// A Kontext edit (the photo is a reference the whole schedule sees) rather than
    /// image-to-image (the photo is noised and denoised from part-way).
    pub edit: bool,
}

/// How a photo is fitted to the generation size before it is encoded. The job's `image.fit`
/// (`job::spec::ImageFit`) maps onto it in the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFit {
    /// Scale to cover the target, centre-crop the rest (diffusers' default resize then crop).
    #[default]
    Cover,
    /// Scale to fit inside the target, pad with white.
    Contain,
}

/// One LoRA of a job, as the worker hands it to the engine (the file already in the cache).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraInput {
    /// Its place in the job's `loras` (errors name `loras[index]`).
    pub index: usize,
    pub path: PathBuf,
    /// SHA-256 of the file, hex: what identifies it.
    pub sha256: String,
    /// The job's multiplier (0 leaves it out).
    pub scale: f64,
    /// Use only its transformer weights when it also holds text-encoder ones.
    pub skip_text_encoder: bool,
}

/// What identifies a LoRA set: each LoRA that changes the weights (scale not 0), in order, by
/// its file's SHA-256 and its scale's bits.
pub(crate) type SetKey = Vec<(String, u64)>;

/// The set key of `loras`.
pub(crate) fn set_key(loras: &[LoraInput]) -> SetKey {
    loras
        .iter()
        .filter(|l| l.scale != 0.0)
        .map(|l| (l.sha256.clone(), l.scale.to_bits()))
        .collect()
}

/// Noise read from a file (`merchgen invoke --initial-noise`), so a run starts from exactly the
/// numbers of another implementation.
#[derive(Debug, Clone)]
pub struct NoiseOverride {
    /// `(num_images, 16, height/8, width/8)`, f32.
    pub latents: candle_core::Tensor,
    /// VAE posterior noise `(1, 16, height/8, width/8)` for image-to-image.
    pub(crate) vae_eps: Option<candle_core::Tensor>,
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

/// Called after each denoising step with (step, total); returning is cheap.
pub type StepCallback<'a> = &'a mut dyn FnMut(u32, u32);
