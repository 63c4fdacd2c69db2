//! Validation of what a job generates: the prompt and its style, true classifier-free guidance,
//! size and schedule, the seed, the photo of an image-to-image or edit job, and its LoRAs.

use super::fields::{in_range, validate_side, validate_source, validate_text};
use crate::error::JobError;
use crate::job::limits::{GenerationDefaults, Limits};
use crate::job::spec::{ImageMode, ImageSourceSpec, JobSpec, LoraSourceSpec, TextEncoderLora};
use crate::job::styles;
use crate::job::valid::{
    InitImage, LoraSource, TrueCfg, ValidGeneration, ValidLora, LORA_SCALE_RANGE, MAX_LORAS,
};

pub(super) fn validate_generation(
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
    let edit = spec.mode == Some(ImageMode::Edit);
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
                skip_text_encoder: l.text_encoder == Some(TextEncoderLora::Skip),
            })
        })
        .collect()
}

fn validate_lora_source(
    field: &str,
    s: &LoraSourceSpec,
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
) -> Result<Option<TrueCfg>, JobError> {
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
        Some(negative_prompt) => Ok(Some(TrueCfg {
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
