//! Wire types of a job, exactly as a client sends them. Unknown fields are refused.
//! Nothing here checks ranges: that is `validate`'s job, so every door gets the same checks.

use crate::encode::OutputFormat;
use serde::{Deserialize, Serialize};

/// A job as it arrives, before validation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub style: Option<String>,
    #[serde(default)]
    pub negative_prompt: Option<String>,
    /// Image-to-image source (a customer's photo).
    #[serde(default)]
    pub image: Option<ImageSourceSpec>,
    #[serde(default)]
    pub strength: Option<f64>,
    /// What `image` is for: `img2img` (default: noised and denoised from part-way, `strength`)
    /// or `edit` (FLUX.1 Kontext: a reference the edit keeps the subject of).
    #[serde(default)]
    pub mode: Option<ImageMode>,
    /// Mockup-only: an image to place on products; nothing is generated.
    #[serde(default)]
    pub design: Option<ImageSourceSpec>,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
    #[serde(default)]
    pub num_inference_steps: Option<u32>,
    #[serde(default)]
    pub guidance_scale: Option<f64>,
    /// True classifier-free guidance with `negative_prompt` (diffusers' semantics; FLUX.1-dev
    /// and Kontext only), above 1.
    #[serde(default)]
    pub true_cfg_scale: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub num_images: Option<u32>,
    #[serde(default)]
    pub max_sequence_length: Option<u32>,
    /// LoRAs applied to the transformer for this job, in order.
    #[serde(default)]
    pub loras: Option<Vec<LoraSpec>>,
    /// `keep` (default), `remove` (matting model) or `remove_flat` (flood fill from the border).
    #[serde(default)]
    pub background: Option<BackgroundMode>,
    /// Super-resolve the design by 2 or 4 before it is stored, placed and printed.
    #[serde(default)]
    pub upscale: Option<u32>,
    #[serde(default)]
    pub mockups: Option<MockupsSpec>,
    #[serde(default)]
    pub output: Option<OutputSpec>,
    #[serde(default)]
    pub webhook: Option<WebhookSpec>,
}

/// How a job's `image` is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageMode {
    Img2img,
    Edit,
}

/// One LoRA of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSpec {
    pub source: LoraSourceSpec,
    /// Multiplier of its delta (default 1; 0 leaves it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// `refuse` (default: a file with text-encoder weights fails the job, since merchgen applies
    /// LoRAs to the transformer only) or `skip` (use its transformer weights alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<TextEncoderLora>,
}

/// What to do with a LoRA file's text-encoder weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextEncoderLora {
    Refuse,
    Skip,
}

/// Where a LoRA file comes from: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    /// A file on the Hugging Face hub: `owner/repo/path/file.safetensors`, optionally
    /// `owner/repo@revision/path/file.safetensors`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// A local file; accepted only by `merchgen invoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Where an input image comes from: exactly one of the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<String>,
    /// Raw base64 or a `data:` URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    /// A local file; accepted only by `merchgen invoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Image-to-image only: `cover` (centre-crop, default) or `contain` (pad) to the target size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<ImageFit>,
}

/// How an image-to-image photo is brought to the target size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFit {
    /// Scale to cover the target, centre-crop the rest.
    #[default]
    Cover,
    /// Scale to fit inside the target, pad with white.
    Contain,
}

/// Products to render the design onto.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockupsSpec {
    pub products: Vec<String>,
    #[serde(default)]
    pub colors: Option<Vec<String>>,
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// Longest side of each mockup in pixels.
    #[serde(default)]
    pub size: Option<u32>,
    /// How the design fills the print area.
    #[serde(default)]
    pub fit: Option<FitMode>,
    /// Also write a print-ready file per product at its inches times `output.print_dpi`.
    #[serde(default)]
    pub print_files: Option<bool>,
}

/// What happens to the design's background before it is stored and placed on products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackgroundMode {
    /// The design as generated (or given), opaque background included.
    #[default]
    Keep,
    /// A salient-object matting model cuts the subject out (alpha from its mask).
    Remove,
    /// No model: flood fill from the border over the plain background, with a feathered edge.
    RemoveFlat,
}

/// `fit` keeps the whole design inside the print area; `cover` fills it and crops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitMode {
    #[default]
    Fit,
    Cover,
}

/// Where and how outputs are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// `s3://bucket/prefix`, a local folder, or `inline`.
    #[serde(default)]
    pub destination: Option<String>,
    #[serde(default)]
    pub print_dpi: Option<u32>,
    #[serde(default)]
    pub(crate) jpeg_quality: Option<u8>,
}

/// Completion webhook request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSpec {
    pub url: String,
    #[serde(default)]
    pub events: Option<Vec<WebhookEventKind>>,
}

/// Webhook event kinds a job can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookEventKind {
    Started,
    Progress,
    /// A failure the door will retry (the job is handed out again): not the job's end.
    Retrying,
    Completed,
    Failed,
}
