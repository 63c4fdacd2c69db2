//! Checks of single fields that several parts of a job share: text, sizes and ranges, image and
//! file sources (`url`, `s3`, `base64`, `path`) against the input allow-list, output
//! destinations against the output allow-list, and URLs whose host is a literal address the
//! SSRF rules refuse. Each error names the field.

use crate::error::JobError;
use crate::job::allow::StorageAllow;
use crate::job::limits::Limits;
use crate::job::spec::ImageSourceSpec;
use crate::job::valid::ImageSource;
use crate::net::guard::{self, AddressPolicy, UrlRefusal};

/// Refuse a URL whose host is a literal address the policy refuses (names are checked when
/// resolved, at connection time).
pub(super) fn check_literal_address(
    field: &str,
    url: &str,
    policy: &AddressPolicy,
) -> Result<(), JobError> {
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

pub(super) fn validate_text(field: &str, text: &str, max_chars: usize) -> Result<String, JobError> {
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

pub(super) fn validate_side(field: &str, value: u32, limits: &Limits) -> Result<u32, JobError> {
    if !value.is_multiple_of(16) {
        return Err(JobError::invalid(
            field,
            format!("{value} is not a multiple of 16"),
        ));
    }
    in_range(field, value, limits.min_side, limits.max_side)?;
    Ok(value)
}

pub(super) fn in_range(field: &str, value: u32, min: u32, max: u32) -> Result<(), JobError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(JobError::invalid(
            field,
            format!("{value} is out of range {min}..={max}"),
        ))
    }
}

pub(super) fn validate_destination(
    d: &str,
    allow: Option<&StorageAllow>,
) -> Result<String, JobError> {
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

pub(super) fn validate_source(
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

pub(super) fn validate_http_url(field: &str, url: &str) -> Result<String, JobError> {
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

/// Split `s3://bucket/key` into bucket and key (the key may be empty), naming `field` when it
/// is not such a URL.
fn parse_s3(field: &str, url: &str) -> Result<(String, String), JobError> {
    crate::s3::parse_url(url).map_err(|e| JobError::invalid(field, e.to_string()))
}
