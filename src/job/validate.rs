//! Turns a `JobSpec` into a `ValidJob`, or an `invalid_input` error naming the field, before any
//! work starts. Pure: no I/O, no clock except the seed drawn when a job gives none.

use super::allow::StorageAllow;
use super::spec::{FitMode, ImageSourceSpec, JobSpec, MockupsSpec, WebhookEventKind, WebhookSpec};
use super::styles;
use crate::encode::OutputFormat;
use crate::error::JobError;
use crate::fetch::guard::{self, AddressPolicy, UrlRefusal};

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

/// Validated image source: exactly one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    Url(String),
    S3 { bucket: String, key: String },
    Base64(String),
    Path(String),
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGeneration {
    /// The prompt after the style preset wrapped it.
    pub prompt: String,
    pub style: Option<String>,
    /// The negative prompt (the job's, joined with its style's) and `true_cfg_scale`, when the
    /// job runs true classifier-free guidance.
    pub true_cfg: Option<crate::engine::TrueCfg>,
    pub init_image: Option<InitImage>,
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
    pub size_from_image: bool,
    /// The job's LoRAs, in order.
    pub loras: Vec<ValidLora>,
}

/// Most LoRAs one job may apply at once.
pub const MAX_LORAS: usize = 4;
/// The range of a LoRA's `scale`.
pub const LORA_SCALE_RANGE: std::ops::RangeInclusive<f64> = -2.0..=2.0;

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
    pub fit: crate::job::spec::ImageFit,
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
    pub jpeg_quality: u8,
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
    /// Background removal and upscaling of each design.
    pub finishing: super::finishing::Finishing,
    pub output: ValidOutput,
    pub webhook: Option<ValidWebhook>,
    /// SHA-256 (hex) of the job as the client sent it (parsed, re-serialised in field order, so
    /// whitespace and key order do not count), recorded in `result.json`: a redelivery under
    /// the same id is answered from there only when this matches.
    pub spec_sha256: String,
}

/// The fingerprint of a parsed job (see `ValidJob::spec_sha256`).
pub fn spec_sha256(spec: &JobSpec) -> String {
    use sha2::{Digest, Sha256};
    let bytes = serde_json::to_vec(spec).expect("a JobSpec always serializes");
    hex::encode(Sha256::digest(bytes))
}

/// Validate a job. `default_id` is the delivery's id (RunPod job id, SQS message id, a UUID).
pub fn validate(
    spec: JobSpec,
    default_id: &str,
    limits: &Limits,
    defaults: &GenerationDefaults,
) -> Result<ValidJob, JobError> {
    let id = validate_id(spec.id.as_deref().unwrap_or(default_id))?;
    let spec_sha256 = spec_sha256(&spec);
    let output = validate_output(&spec, limits)?;
    let mockups = spec
        .mockups
        .as_ref()
        .map(|m| validate_mockups(m, limits))
        .transpose()?;
    let webhook = spec
        .webhook
        .as_ref()
        .map(|w| validate_webhook(w, &limits.addresses))
        .transpose()?;
    let (generation, design) = match (&spec.prompt, &spec.design) {
        (Some(_), Some(_)) => {
            return Err(JobError::invalid(
                "design",
                "give either `prompt` (generate) or `design` (mockup-only), not both",
            ))
        }
        (None, Some(design)) => {
            reject_generation_fields_for_design(&spec)?;
            if design.fit.is_some() {
                return Err(JobError::invalid(
                    "design.fit",
                    "use `mockups.fit` to place a design",
                ));
            }
            if mockups.is_none() {
                return Err(JobError::invalid(
                    "mockups",
                    "a mockup-only job (with `design`) needs `mockups.products`",
                ));
            }
            (
                None,
                Some(validate_source(
                    "design",
                    design,
                    limits.input_s3_allow.as_ref(),
                )?),
            )
        }
        (None, None) => {
            return Err(JobError::invalid(
                "prompt",
                "is required (or give `design` for a mockup-only job)",
            ))
        }
        (Some(_), None) => (Some(validate_generation(&spec, limits, defaults)?), None),
    };
    let style = spec.style.as_deref().map(styles::find).transpose()?;
    let finishing = super::finishing::validate(&spec, style)?;
    Ok(ValidJob {
        id,
        generation,
        design,
        mockups,
        finishing,
        output,
        webhook,
        spec_sha256,
    })
}

/// Validate a webhook request on its own (also used to report a job that failed validation).
/// A URL whose host is a literal address the policy refuses (metadata, loopback, private) fails
/// here, before any work, rather than at delivery after the job has run.
pub fn validate_webhook(w: &WebhookSpec, policy: &AddressPolicy) -> Result<ValidWebhook, JobError> {
    let url = validate_http_url("webhook.url", &w.url)?;
    check_literal_address("webhook.url", &url, policy)?;
    let events = w
        .events
        .clone()
        .unwrap_or_else(|| vec![WebhookEventKind::Completed, WebhookEventKind::Failed]);
    Ok(ValidWebhook { url, events })
}

/// Refuse a URL whose host is a literal address the policy refuses (names are checked when
/// resolved, at connection time).
fn check_literal_address(field: &str, url: &str, policy: &AddressPolicy) -> Result<(), JobError> {
    let parsed =
        url::Url::parse(url).map_err(|_| JobError::invalid(field, "is not a valid URL"))?;
    match guard::check_url(&parsed, policy) {
        Err(UrlRefusal::Address(blocked)) => Err(JobError::invalid(
            field,
            format!("{blocked}, which this worker may not reach"),
        )),
        Err(UrlRefusal::NoHost) => Err(JobError::invalid(field, "has no host")),
        Err(UrlRefusal::Scheme) | Ok(()) => Ok(()),
    }
}

fn validate_id(id: &str) -> Result<String, JobError> {
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && id != "."
        && id != "..";
    if ok {
        Ok(id.to_owned())
    } else {
        Err(JobError::invalid(
            "id",
            "must be 1 to 128 characters of A-Z a-z 0-9 . _ -",
        ))
    }
}

fn reject_generation_fields_for_design(spec: &JobSpec) -> Result<(), JobError> {
    let given = [
        ("style", spec.style.is_some()),
        ("negative_prompt", spec.negative_prompt.is_some()),
        ("true_cfg_scale", spec.true_cfg_scale.is_some()),
        ("image", spec.image.is_some()),
        ("strength", spec.strength.is_some()),
        ("mode", spec.mode.is_some()),
        ("num_inference_steps", spec.num_inference_steps.is_some()),
        ("guidance_scale", spec.guidance_scale.is_some()),
        ("num_images", spec.num_images.is_some()),
        ("max_sequence_length", spec.max_sequence_length.is_some()),
        ("loras", spec.loras.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(JobError::invalid(
            *field,
            "is a generation setting; a mockup-only job (with `design`) generates nothing",
        )),
        None => Ok(()),
    }
}

fn validate_generation(
    spec: &JobSpec,
    limits: &Limits,
    defaults: &GenerationDefaults,
) -> Result<ValidGeneration, JobError> {
    let raw_prompt = spec.prompt.as_deref().unwrap_or_default();
    let prompt_text = validate_text("prompt", raw_prompt, limits.max_prompt_chars)?;
    if prompt_text.trim().is_empty() {
        return Err(JobError::invalid("prompt", "must not be empty"));
    }
    let negative_prompt = spec
        .negative_prompt
        .as_deref()
        .map(|n| validate_text("negative_prompt", n, limits.max_prompt_chars))
        .transpose()?
        .filter(|n| !n.trim().is_empty());
    let style = spec.style.as_deref().map(styles::find).transpose()?;
    let edit = spec.mode == Some(crate::job::spec::ImageMode::Edit);
    let prompt = match style {
        Some(s) if edit => s.apply_edit(&prompt_text),
        Some(s) => s.apply(&prompt_text),
        None => prompt_text,
    };
    let true_cfg = validate_true_cfg(spec, negative_prompt, style, defaults)?;
    let width = validate_side("width", spec.width.unwrap_or(defaults.width), limits)?;
    let height = validate_side("height", spec.height.unwrap_or(defaults.height), limits)?;
    let steps = spec.num_inference_steps.unwrap_or(defaults.steps);
    in_range("num_inference_steps", steps, 1, limits.max_steps)?;
    let guidance = spec.guidance_scale.unwrap_or(defaults.guidance);
    if !guidance.is_finite() || !(0.0..=30.0).contains(&guidance) {
        return Err(JobError::invalid(
            "guidance_scale",
            "must be a number from 0 to 30",
        ));
    }
    let num_images = spec.num_images.unwrap_or(1);
    in_range("num_images", num_images, 1, limits.max_images)?;
    let max_sequence_length = spec
        .max_sequence_length
        .unwrap_or(defaults.max_sequence_length);
    in_range(
        "max_sequence_length",
        max_sequence_length,
        1,
        defaults.max_sequence_length,
    )?;
    let (seed, seed_drawn) = match spec.seed {
        Some(seed) => (seed, false),
        None => (rand::random::<u64>() >> 1, true),
    };
    if seed.checked_add(u64::from(num_images)).is_none() {
        return Err(JobError::invalid(
            "seed",
            "is too large: seed + num_images must fit in 64 bits",
        ));
    }
    let init_image = validate_init_image(spec, limits, defaults)?;
    let loras = validate_loras(spec, limits)?;
    let size_from_image = edit && spec.width.is_none() && spec.height.is_none();
    Ok(ValidGeneration {
        prompt,
        style: spec.style.clone(),
        true_cfg,
        init_image,
        width,
        height,
        steps,
        guidance,
        seed,
        seed_drawn,
        num_images,
        max_sequence_length,
        size_from_image,
        loras,
    })
}

fn validate_loras(spec: &JobSpec, limits: &Limits) -> Result<Vec<ValidLora>, JobError> {
    let Some(loras) = &spec.loras else {
        return Ok(Vec::new());
    };
    if loras.len() > MAX_LORAS {
        return Err(JobError::invalid(
            "loras",
            format!(
                "has {} entries; at most {MAX_LORAS} LoRAs apply at once",
                loras.len()
            ),
        ));
    }
    loras
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let field = format!("loras[{i}]");
            let scale = l.scale.unwrap_or(1.0);
            if !scale.is_finite() || !LORA_SCALE_RANGE.contains(&scale) {
                return Err(JobError::invalid(
                    format!("{field}.scale"),
                    format!(
                        "must be a number from {} to {}",
                        LORA_SCALE_RANGE.start(),
                        LORA_SCALE_RANGE.end()
                    ),
                ));
            }
            let source = validate_lora_source(&format!("{field}.source"), &l.source, limits)?;
            Ok(ValidLora {
                source,
                scale,
                skip_text_encoder: l.text_encoder == Some(crate::job::spec::TextEncoderLora::Skip),
            })
        })
        .collect()
}

fn validate_lora_source(
    field: &str,
    s: &crate::job::spec::LoraSourceSpec,
    limits: &Limits,
) -> Result<LoraSource, JobError> {
    let given = [
        s.url.is_some(),
        s.s3.is_some(),
        s.hf.is_some(),
        s.path.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(JobError::invalid(
            field,
            "give exactly one of `url`, `s3`, `hf` (or `path` for local invocation)",
        ));
    }
    if let Some(hf) = &s.hf {
        return parse_hub_file(&format!("{field}.hf"), hf);
    }
    let as_image = ImageSourceSpec {
        url: s.url.clone(),
        s3: s.s3.clone(),
        path: s.path.clone(),
        ..ImageSourceSpec::default()
    };
    validate_source(field, &as_image, limits.input_s3_allow.as_ref()).map(LoraSource::Input)
}

/// `owner/repo[@revision]/path/file.safetensors`.
fn parse_hub_file(field: &str, text: &str) -> Result<LoraSource, JobError> {
    let bad = || {
        JobError::invalid(
            field,
            "must be `owner/repo/path/file.safetensors` or `owner/repo@revision/path/file.safetensors`",
        )
    };
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 96
            && n != "."
            && n != ".."
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    let mut parts = text.splitn(3, '/');
    let (owner, repo, file) = match (parts.next(), parts.next(), parts.next()) {
        (Some(o), Some(r), Some(f)) => (o, r, f),
        _ => return Err(bad()),
    };
    let (repo, revision) = match repo.split_once('@') {
        Some((r, rev)) => (r, rev),
        None => (repo, "main"),
    };
    let file_ok = file.ends_with(".safetensors") && file.split('/').all(name_ok);
    if !name_ok(owner) || !name_ok(repo) || !name_ok(revision) || !file_ok {
        return Err(bad());
    }
    Ok(LoraSource::Hub {
        repo: format!("{owner}/{repo}"),
        revision: revision.to_owned(),
        file: file.to_owned(),
    })
}

/// True CFG runs when the model can and the job sets `true_cfg_scale` above 1 with a negative
/// prompt (diffusers' rule); a negative prompt that would have no effect, or a scale without one,
/// is refused rather than dropped. A style's own negative joins the job's only when true CFG runs.
fn validate_true_cfg(
    spec: &JobSpec,
    job_negative: Option<String>,
    style: Option<&styles::Style>,
    defaults: &GenerationDefaults,
) -> Result<Option<crate::engine::TrueCfg>, JobError> {
    if let Some(scale) = spec.true_cfg_scale {
        if !defaults.true_cfg {
            return Err(JobError::invalid(
                "true_cfg_scale",
                "this worker's model (FLUX.1-schnell) runs without classifier-free guidance; leave it out",
            ));
        }
        if !scale.is_finite() || !(1.0..=20.0).contains(&scale) {
            return Err(JobError::invalid(
                "true_cfg_scale",
                "must be a number from 1 to 20",
            ));
        }
    }
    let scale = spec.true_cfg_scale.unwrap_or(1.0);
    if job_negative.is_some() {
        if !defaults.true_cfg {
            return Err(JobError::invalid(
                "negative_prompt",
                "this worker's model runs without classifier-free guidance, so a negative prompt would have no effect; leave it out",
            ));
        }
        if scale <= 1.0 {
            return Err(JobError::invalid(
                "negative_prompt",
                "has an effect only with true classifier-free guidance: set `true_cfg_scale` above 1 (two passes per step), or leave it out",
            ));
        }
    }
    if scale <= 1.0 {
        return Ok(None);
    }
    let negative = match style {
        Some(s) => s.apply_negative(job_negative.as_deref()),
        None => job_negative,
    };
    match negative {
        Some(negative_prompt) => Ok(Some(crate::engine::TrueCfg {
            negative_prompt,
            scale,
        })),
        None => Err(JobError::invalid(
            "true_cfg_scale",
            "needs a `negative_prompt` (or a style that has one) to guide away from",
        )),
    }
}

fn validate_init_image(
    spec: &JobSpec,
    limits: &Limits,
    defaults: &GenerationDefaults,
) -> Result<Option<InitImage>, JobError> {
    use crate::job::spec::ImageMode;
    match (spec.image.is_some(), spec.mode) {
        (false, Some(_)) => {
            return Err(JobError::invalid(
                "mode",
                "says what `image` is for; give `image` too",
            ))
        }
        (true, Some(ImageMode::Edit)) if !defaults.edit => {
            return Err(JobError::invalid(
                "mode",
                "`edit` needs a FLUX.1 Kontext model (a `flux-kontext-*` preset); this worker's model does image-to-image only (`img2img`)",
            ))
        }
        (true, Some(ImageMode::Edit)) if spec.strength.is_some() => {
            return Err(JobError::invalid(
                "strength",
                "only applies to `img2img`; an edit always runs the whole schedule",
            ))
        }
        _ => {}
    }
    let edit = spec.mode == Some(ImageMode::Edit);
    match (&spec.image, spec.strength) {
        (None, Some(_)) => Err(JobError::invalid(
            "strength",
            "only applies to image-to-image; give `image` too",
        )),
        (None, None) => Ok(None),
        (Some(image), strength) => {
            let strength = strength.unwrap_or(0.6);
            if !strength.is_finite() || strength <= 0.0 || strength > 1.0 {
                return Err(JobError::invalid(
                    "strength",
                    "must be greater than 0 and at most 1",
                ));
            }
            Ok(Some(InitImage {
                source: validate_source("image", image, limits.input_s3_allow.as_ref())?,
                strength: if edit { 1.0 } else { strength },
                fit: image.fit.unwrap_or_default(),
                edit,
            }))
        }
    }
}

fn validate_text(field: &str, text: &str, max_chars: usize) -> Result<String, JobError> {
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(JobError::invalid(
            field,
            format!("is {chars} characters long; at most {max_chars} are allowed"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(JobError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

fn validate_side(field: &str, value: u32, limits: &Limits) -> Result<u32, JobError> {
    if !value.is_multiple_of(16) {
        return Err(JobError::invalid(
            field,
            format!("{value} is not a multiple of 16"),
        ));
    }
    in_range(field, value, limits.min_side, limits.max_side)?;
    Ok(value)
}

fn in_range(field: &str, value: u32, min: u32, max: u32) -> Result<(), JobError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(JobError::invalid(
            field,
            format!("{value} is out of range {min}..={max}"),
        ))
    }
}

fn validate_mockups(m: &MockupsSpec, limits: &Limits) -> Result<ValidMockups, JobError> {
    if m.products.is_empty() {
        return Err(JobError::invalid(
            "mockups.products",
            "must name at least one product",
        ));
    }
    if m.products.len() > 32 {
        return Err(JobError::invalid(
            "mockups.products",
            "at most 32 products per job",
        ));
    }
    let colors = m.colors.clone().unwrap_or_default();
    if colors.len() > 16 {
        return Err(JobError::invalid(
            "mockups.colors",
            "at most 16 colours per job",
        ));
    }
    for (i, name) in m.products.iter().chain(colors.iter()).enumerate() {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if !ok {
            let field = if i < m.products.len() {
                format!("mockups.products[{i}]")
            } else {
                format!("mockups.colors[{}]", i - m.products.len())
            };
            return Err(JobError::invalid(
                field,
                "must be a name of A-Z a-z 0-9 _ -",
            ));
        }
    }
    if let Some(size) = m.size {
        in_range("mockups.size", size, 64, limits.max_mockup_side)?;
    }
    Ok(ValidMockups {
        products: m.products.clone(),
        colors,
        format: m.format.unwrap_or(OutputFormat::Jpeg),
        size: m.size,
        fit: m.fit.unwrap_or_default(),
        print_files: m.print_files.unwrap_or(false),
    })
}

fn validate_output(spec: &JobSpec, limits: &Limits) -> Result<ValidOutput, JobError> {
    let o = spec.output.clone().unwrap_or_default();
    let print_dpi = o.print_dpi.unwrap_or(300);
    in_range("output.print_dpi", print_dpi, 72, limits.max_print_dpi)?;
    let jpeg_quality = o.jpeg_quality.unwrap_or(90);
    in_range("output.jpeg_quality", u32::from(jpeg_quality), 1, 100)?;
    let destination = o
        .destination
        .map(|d| validate_destination(&d, limits.output_allow.as_ref()))
        .transpose()?;
    Ok(ValidOutput {
        format: o.format.unwrap_or_default(),
        destination,
        print_dpi,
        jpeg_quality,
    })
}

fn validate_destination(d: &str, allow: Option<&StorageAllow>) -> Result<String, JobError> {
    const FIELD: &str = "output.destination";
    if d.is_empty() || d.len() > 1024 {
        return Err(JobError::invalid(
            FIELD,
            "must be `inline`, `s3://bucket/prefix` or a folder",
        ));
    }
    if d == "inline" {
        return Ok(d.to_owned());
    }
    if let Some(rest) = d.strip_prefix("s3://") {
        let (bucket, prefix) = parse_s3(FIELD, &format!("s3://{rest}"))?;
        if let Some(allow) = allow.filter(|a| !a.allows_s3(&bucket, &prefix)) {
            return Err(JobError::invalid(
                FIELD,
                format!(
                    "s3://{bucket}/{prefix} is outside the places this worker lets jobs write ({})",
                    allow.setting()
                ),
            ));
        }
    } else if d.contains("://") {
        return Err(JobError::invalid(
            FIELD,
            "only `s3://` URLs, `inline` or a folder are accepted",
        ));
    } else if let Some(allow) = allow.filter(|a| !a.allows_local(d)) {
        return Err(JobError::invalid(
            FIELD,
            format!(
                "a folder is accepted from this door only under a root listed in {}",
                allow.setting()
            ),
        ));
    }
    Ok(d.to_owned())
}

fn validate_source(
    field: &str,
    s: &ImageSourceSpec,
    s3_allow: Option<&StorageAllow>,
) -> Result<ImageSource, JobError> {
    let given = [
        s.url.is_some(),
        s.s3.is_some(),
        s.base64.is_some(),
        s.path.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(JobError::invalid(
            field,
            "give exactly one of `url`, `s3`, `base64` (or `path` for local invocation)",
        ));
    }
    if let Some(url) = &s.url {
        return Ok(ImageSource::Url(validate_http_url(
            &format!("{field}.url"),
            url,
        )?));
    }
    if let Some(s3) = &s.s3 {
        let (bucket, key) = parse_s3(&format!("{field}.s3"), s3)?;
        if key.is_empty() {
            return Err(JobError::invalid(
                format!("{field}.s3"),
                "must name an object: s3://bucket/key",
            ));
        }
        if let Some(allow) = s3_allow.filter(|a| !a.allows_s3(&bucket, &key)) {
            return Err(JobError::invalid(
                format!("{field}.s3"),
                format!(
                    "s3://{bucket}/{key} is outside the buckets this worker lets jobs read ({})",
                    allow.setting()
                ),
            ));
        }
        return Ok(ImageSource::S3 { bucket, key });
    }
    if let Some(b64) = &s.base64 {
        if b64.is_empty() {
            return Err(JobError::invalid(
                format!("{field}.base64"),
                "must not be empty",
            ));
        }
        return Ok(ImageSource::Base64(b64.clone()));
    }
    let path = s.path.clone().unwrap_or_default();
    if path.is_empty() {
        return Err(JobError::invalid(
            format!("{field}.path"),
            "must not be empty",
        ));
    }
    Ok(ImageSource::Path(path))
}

fn validate_http_url(field: &str, url: &str) -> Result<String, JobError> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with('/')
                && url.len() <= 2048
                && !url.contains(char::is_whitespace) =>
        {
            Ok(url.to_owned())
        }
        _ => Err(JobError::invalid(
            field,
            "must be an http:// or https:// URL",
        )),
    }
}

/// Split `s3://bucket/key` into bucket and key (the key may be empty).
pub fn parse_s3(field: &str, url: &str) -> Result<(String, String), JobError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| JobError::invalid(field, "must start with s3://"))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    if !bucket_ok {
        return Err(JobError::invalid(field, "has an invalid bucket name"));
    }
    Ok((bucket.to_owned(), key.trim_matches('/').to_owned()))
}
