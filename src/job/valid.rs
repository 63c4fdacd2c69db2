//! A job that passed validation (`ValidJob`) and its parts: what to generate, the image and
//! LoRA sources, the mockups, the outputs and the webhook. Built only by `validate`.

use super::finishing::Finishing;
use super::spec::{FitMode, ImageFit, WebhookEventKind};
use crate::encode::OutputFormat;

/// True classifier-free guidance of a job: the negative prompt (the job's, joined with its
/// style's) and `true_cfg_scale`, above 1.
#[derive(Debug, Clone, PartialEq)]
pub struct TrueCfg {
    pub negative_prompt: String,
    pub scale: f64,
}

/// Validated image source: exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Url(String),
    S3 { bucket: String, key: String },
    Base64(String),
    Path(String),
}

impl ImageSource {
    /// The sub-field that names this kind of source in a job (`url`, `s3`, `base64`, `path`).
    pub fn field(&self) -> &'static str {
        match self {
            ImageSource::Url(_) => "url",
            ImageSource::S3 { .. } => "s3",
            ImageSource::Base64(_) => "base64",
            ImageSource::Path(_) => "path",
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGeneration {
    /// The prompt after the style preset wrapped it.
    pub prompt: String,
    pub style: Option<String>,
    /// The negative prompt (the job's, joined with its style's) and `true_cfg_scale`, when the
    /// job runs true classifier-free guidance.
    pub true_cfg: Option<TrueCfg>,
    pub(crate) init_image: Option<InitImage>,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    pub seed: u64,
    /// True when the job gave no seed and one was drawn.
    pub seed_drawn: bool,
    pub num_images: u32,
    pub max_sequence_length: u32,
    /// An edit that named no size: the worker takes Kontext's resolution nearest the photo's
    /// aspect ratio once the photo is read (`width`/`height` hold the defaults until then).
    pub(crate) size_from_image: bool,
    /// The job's LoRAs, in order.
    pub loras: Vec<ValidLora>,
}

/// Most LoRAs one job may apply at once.
pub(crate) const MAX_LORAS: usize = 4;
/// The range of a LoRA's `scale`.
pub(crate) const LORA_SCALE_RANGE: std::ops::RangeInclusive<f64> = -2.0..=2.0;

/// A validated LoRA of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidLora {
    pub source: LoraSource,
    pub scale: f64,
    pub skip_text_encoder: bool,
}

/// Where a LoRA file comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoraSource {
    /// A URL, an `s3://` object or (for `merchgen invoke`) a local path.
    Input(ImageSource),
    /// A file of a Hugging Face hub repository at a revision (`main` unless given).
    Hub {
        repo: String,
        revision: String,
        file: String,
    },
}

/// Image-to-image input.
#[derive(Debug, Clone, PartialEq)]
pub struct InitImage {
    pub source: ImageSource,
    pub strength: f64,
    pub fit: ImageFit,
    /// A Kontext edit rather than image-to-image.
    pub edit: bool,
}

/// Products to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMockups {
    pub products: Vec<String>,
    /// Empty means every colour of each product.
    pub colors: Vec<String>,
    pub format: OutputFormat,
    pub size: Option<u32>,
    pub fit: FitMode,
    pub print_files: bool,
}

/// Where outputs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOutput {
    pub format: OutputFormat,
    /// None: the worker's default destination.
    pub destination: Option<String>,
    pub print_dpi: u32,
    pub(crate) jpeg_quality: u8,
}

/// Completion webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidWebhook {
    pub url: String,
    pub events: Vec<WebhookEventKind>,
}

/// A job that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJob {
    pub id: String,
    /// None for a mockup-only job.
    pub generation: Option<ValidGeneration>,
    /// The design of a mockup-only job.
    pub design: Option<ImageSource>,
    pub mockups: Option<ValidMockups>,
    /// The print-shop deliverables (`print`).
    pub(crate) print: Option<super::print::ValidPrint>,
    /// Background removal and upscaling of each design.
    pub(crate) finishing: Finishing,
    pub output: ValidOutput,
    pub webhook: Option<ValidWebhook>,
    /// SHA-256 (hex) of the job as the client sent it (parsed, re-serialised in field order, so
    /// whitespace and key order do not count), recorded in `result.json`: a redelivery under
    /// the same id is answered from there only when this matches.
    pub(crate) spec_sha256: String,
}
