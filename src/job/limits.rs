//! What every job is checked against: the worker's bounds (`Limits`, from configuration) and
//! what the loaded model fills in (`GenerationDefaults`, handed over by the worker as plain
//! values: the job contract knows no model).

use super::allow::StorageAllow;
use crate::net::guard::AddressPolicy;

/// Bounds the worker enforces on every job (from configuration: `Config::limits`).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub min_side: u32,
    pub max_side: u32,
    pub max_images: u32,
    pub max_steps: u32,
    pub max_prompt_chars: usize,
    pub max_mockup_side: u32,
    pub max_print_dpi: u32,
    /// Output pixels one job may make (images after upscaling, mockups, print files).
    pub max_job_pixels: u64,
    /// Which literal addresses a webhook URL may name (`MERCHGEN_FETCH_ALLOW` opens ranges).
    pub addresses: AddressPolicy,
    /// Where `output.destination` may point (`MERCHGEN_OUTPUT_ALLOW`); `None`: anywhere
    /// (`merchgen invoke`, run by the operator).
    pub output_allow: Option<StorageAllow>,
    /// Which buckets `image.s3` / `design.s3` may read (`MERCHGEN_INPUT_S3_ALLOW`); `None`: any.
    pub input_s3_allow: Option<StorageAllow>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_side: 256,
            max_side: 2048,
            max_images: 8,
            max_steps: 50,
            max_prompt_chars: 4000,
            max_mockup_side: 4096,
            max_print_dpi: 600,
            max_job_pixels: 400_000_000,
            addresses: AddressPolicy::default(),
            output_allow: None,
            input_s3_allow: None,
        }
    }
}

/// Defaults that come from the loaded model preset.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationDefaults {
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub max_sequence_length: u32,
    /// Whether the model can run true classifier-free guidance, the only way a `negative_prompt`
    /// has an effect on FLUX: models with a guidance embedding (FLUX.1-dev, Kontext) do, with
    /// `true_cfg_scale` above 1; FLUX.1-schnell does not.
    pub true_cfg: bool,
    /// Whether the model edits photos (FLUX.1 Kontext: `mode: edit`).
    pub edit: bool,
}

impl Default for GenerationDefaults {
    /// FLUX.1-schnell's defaults.
    fn default() -> Self {
        GenerationDefaults {
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
