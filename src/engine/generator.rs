//! The seam between the engine thread and a model family: the `Generator` trait, what loading a
//! model reports (`LoadReport`: which model, its defaults, what it cost) and what a generation
//! returns.

use super::error::EngineError;
use super::memory;
use super::request::{BatchMember, GenerateRequest, StepCallback};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;

/// One generated image and the seed that made it.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    pub image: RgbaImage,
    pub seed: u64,
}

/// Per-stage milliseconds of one generation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimings {
    pub(crate) encode_text_ms: u64,
    /// Image-to-image: VAE encoding of the photo.
    pub(crate) encode_image_ms: u64,
    pub denoise_ms: u64,
    pub(crate) decode_ms: u64,
    /// Each denoising step, in order (all batches).
    pub step_ms: Vec<u64>,
    /// Reading and parsing the job's LoRA files (0: none, or the set was already applied).
    pub(crate) lora_load_ms: u64,
    /// Applying them to the weights.
    pub(crate) lora_apply_ms: u64,
}

/// What a generation returns.
#[derive(Debug, Clone)]
pub struct GenerateOutput {
    pub images: Vec<GeneratedImage>,
    pub timings: StageTimings,
}

/// Which model runs, in which weight mode, on which device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub preset: String,
    pub weights: String,
    pub device: String,
    /// Bytes of model files loaded at start-up.
    pub load_bytes: Option<u64>,
    /// The process's peak resident host memory when loading finished (Linux VmHWM).
    pub peak_host_memory_bytes: Option<u64>,
}

/// What jobs on this model default to, and what it can do beyond text-to-image. The worker
/// hands validation these facts as plain values.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDefaults {
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub max_sequence_length: u32,
    /// True classifier-free guidance against a negative prompt (a guidance-embedding model).
    pub true_cfg: bool,
    /// Photo edits from a reference image (FLUX.1 Kontext).
    pub edit: bool,
}

impl Default for ModelDefaults {
    /// FLUX.1-schnell's.
    fn default() -> Self {
        ModelDefaults {
            width: 1024,
            height: 1024,
            steps: 4,
            guidance: 0.0,
            max_sequence_length: 256,
            true_cfg: false,
            edit: false,
        }
    }
}

/// What loading the model cost, reported once per process.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub info: ModelInfo,
    pub load_ms: u64,
    pub bytes: u64,
    pub source: String,
    /// Job defaults of this model (size, steps, guidance, T5 length).
    pub defaults: ModelDefaults,
    /// What a generation costs in device memory (`None`: no estimate for this generator).
    pub footprint: Option<memory::Footprint>,
    /// Device bytes free right after loading, if the device can tell.
    pub free_after_load: Option<u64>,
    /// Milliseconds of the warm-up pass after loading (`MERCHGEN_WARMUP`); `None`: none ran.
    pub warm_up_ms: Option<u64>,
}

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
