//! Turns a `JobSpec` into a `ValidJob`, or an `invalid_input` error naming the field, before any
//! work starts. Pure: no I/O, no clock except the seed drawn when a job gives none. Here: the
//! job as a whole, its id, mockups, outputs and webhook; `generation` checks what it generates,
//! `fields` the single fields several parts share.

mod fields;
mod generation;

use crate::encode::OutputFormat;
use crate::error::JobError;
use crate::job::limits::{GenerationDefaults, Limits};
use crate::job::spec::{JobSpec, MockupsSpec, WebhookEventKind, WebhookSpec};
use crate::job::styles;
use crate::job::valid::{ValidJob, ValidMockups, ValidOutput, ValidWebhook};
use crate::net::guard::AddressPolicy;
use fields::{
    check_literal_address, in_range, validate_destination, validate_http_url, validate_source,
};
use generation::validate_generation;

/// The fingerprint of a parsed job (see `ValidJob::spec_sha256`).
pub(crate) fn spec_sha256(spec: &JobSpec) -> String {
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
    let print = crate::job::print::validate(&spec)?;
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
            let deliverables = print.as_ref().is_some_and(|p| p.has_deliverables());
            if mockups.is_none() && !deliverables {
                return Err(JobError::invalid(
                    "mockups",
                    "a mockup-only job (with `design`) needs `mockups.products` or `print` \
                     deliverables",
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
    let finishing = crate::job::finishing::validate(&spec, style)?;
    Ok(ValidJob {
        id,
        generation,
        design,
        mockups,
        print,
        finishing,
        output,
        webhook,
        spec_sha256,
    })
}

/// Validate a webhook request on its own (also used to report a job that failed validation).
/// A URL whose host is a literal address the policy refuses (metadata, loopback, private) fails
/// here, before any work, rather than at delivery after the job has run.
pub(crate) fn validate_webhook(
    w: &WebhookSpec,
    policy: &AddressPolicy,
) -> Result<ValidWebhook, JobError> {
    let url = validate_http_url("webhook.url", &w.url)?;
    check_literal_address("webhook.url", &url, policy)?;
    let events = w.events.clone().unwrap_or_else(|| {
        vec![
            WebhookEventKind::Completed,
            WebhookEventKind::Failed,
            WebhookEventKind::Retrying,
        ]
    });
    Ok(ValidWebhook { url, events })
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
