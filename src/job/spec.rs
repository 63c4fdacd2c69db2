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
    /// Print-shop deliverables per variation: vector SVG, die-cut sticker, separations, hard
    /// alpha for DTF (see `PrintSpec`).
    #[serde(default)]
    pub print: Option<PrintSpec>,
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

/// What a print shop gets besides the print files, for each variation. The deliverables are
/// made on a print area: a product's (`product`, default the first of `mockups.products`) or
/// `size_in`, at `output.print_dpi`, the design placed as `mockups.fit` says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintSpec {
    #[serde(default)]
    pub product: Option<String>,
    #[serde(default)]
    pub size_in: Option<PrintSizeSpec>,
    /// `soft` (default: the alpha as made) or `hard` (DTF: each pixel opaque or clear) for the
    /// print files (`mockups.print_files`).
    #[serde(default)]
    pub alpha: Option<AlphaMode>,
    /// Hard alpha: pixels the opaque area shrinks by (default 1).
    #[serde(default)]
    pub alpha_choke_px: Option<u32>,
    /// Hard alpha: islands and holes smaller than this (millimetres across) are removed
    /// (default 0.5).
    #[serde(default)]
    pub alpha_min_feature_mm: Option<f64>,
    #[serde(default)]
    pub vector: Option<VectorSpec>,
    #[serde(default)]
    pub sticker: Option<StickerSpec>,
    #[serde(default)]
    pub separations: Option<SeparationsSpec>,
}

/// A print area in inches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintSizeSpec {
    pub width: f64,
    pub height: f64,
}

/// How the alpha channel of a print file is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlphaMode {
    #[default]
    Soft,
    Hard,
}

/// A traced SVG of the design.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSpec {
    /// Most fill colours, 2 to 16 (default 8).
    #[serde(default)]
    pub colors: Option<u32>,
    /// `low`, `medium` (default) or `high`.
    #[serde(default)]
    pub detail: Option<DetailLevel>,
}

/// How finely a design is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetailLevel {
    Low,
    #[default]
    Medium,
    High,
}

/// A die-cut sticker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StickerSpec {
    /// The border between the design and the cut line (default 3 mm).
    #[serde(default)]
    pub border_mm: Option<f64>,
    /// Border colour past the cut line (default 1 mm).
    #[serde(default)]
    pub bleed_mm: Option<f64>,
    /// `#rrggbb` (default white).
    #[serde(default)]
    pub border_color: Option<String>,
    /// The cut line's spot colour (default `CutContour`).
    #[serde(default)]
    pub cut_name: Option<String>,
}

/// Screen-print separations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparationsSpec {
    /// At most this many inks, chosen from the design (1 to 16, default 4).
    #[serde(default)]
    pub inks: Option<u32>,
    /// Or exactly these inks (`#rrggbb`); each pixel takes the nearest.
    #[serde(default)]
    pub colors: Option<Vec<String>>,
    /// A white underbase for dark garments (default false).
    #[serde(default)]
    pub underbase: Option<bool>,
    /// Pixels the underbase is choked by (default 2).
    #[serde(default)]
    pub underbase_choke_px: Option<u32>,
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
