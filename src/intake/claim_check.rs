//! Message bodies of the queue doors (SQS consumer and Lambda's SQS batches): JSON parsed per
//! message, so one bad message fails alone, and the claim check `{"s3": "s3://bucket/key.json"}`
//! for jobs too large for a message (SQS caps bodies at 1 MiB): the job is read from S3.
//!
//! Decides only whether a body is a job object; validating the job is the worker's business.
//! A claim check is read only from where jobs may read (`MERCHGEN_INPUT_S3_ALLOW`): one that
//! points elsewhere is poison, never read.

use crate::fetch::sources::read_s3;
use crate::intake::runtime::source::BodyError;
use crate::job::allow::StorageAllow;
use crate::job::parse::{self, MAX_BODY_BYTES};
use crate::s3::S3Settings;
use serde_json::Value;

/// Reads claim-checked bodies from S3 (the same S3 settings as outputs).
#[derive(Debug, Clone)]
pub(crate) struct ClaimCheck {
    s3: S3Settings,
    /// Where claim checks may point (`None`: anywhere the worker's credentials reach, for the
    /// operator's own `merchgen invoke`).
    allow: Option<StorageAllow>,
}

impl ClaimCheck {
    pub(crate) fn new(s3: S3Settings, allow: Option<StorageAllow>) -> Self {
        ClaimCheck { s3, allow }
    }

    /// The job object a message body carries, reading it from S3 for a claim check.
    pub(crate) async fn decode(&self, body: Option<&str>) -> Result<Value, BodyError> {
        let value = parse_object(body.unwrap_or_default().as_bytes())?;
        let Some((bucket, key)) = claim_check_target(&value)? else {
            return Ok(value);
        };
        if let Some(allow) = self.allow.as_ref().filter(|a| !a.allows_s3(&bucket, &key)) {
            return Err(BodyError::Poison(format!(
                "claim check s3://{bucket}/{key} is outside the buckets this worker reads jobs from ({})",
                allow.setting()
            )));
        }
        let client = crate::s3::client(&self.s3).await;
        let bytes = read_s3(&client, &bucket, &key, MAX_BODY_BYTES)
            .await
            .map_err(|e| {
                let why = format!("claim check s3://{bucket}/{key}: {e}");
                if e.retryable() {
                    BodyError::Unavailable(why)
                } else {
                    BodyError::Poison(why)
                }
            })?;
        tracing::debug!(bucket = %bucket, bytes = bytes.len(), "read claim-checked job body");
        parse_object(&bytes)
            .map_err(|e| BodyError::Poison(format!("claim check s3://{bucket}/{key}: {e}")))
    }
}

fn parse_object(bytes: &[u8]) -> Result<Value, BodyError> {
    if bytes.is_empty() {
        return Err(BodyError::Poison("the message body is empty".into()));
    }
    let value = parse::parse_json(bytes).map_err(|e| BodyError::Poison(e.message))?;
    if !value.is_object() {
        return Err(BodyError::Poison(
            "the body must be a JSON object (a job or a claim check)".into(),
        ));
    }
    Ok(value)
}

/// `Some((bucket, key))` when `value` is a claim check: an object whose only field is `s3`.
fn claim_check_target(value: &Value) -> Result<Option<(String, String)>, BodyError> {
    let Some(map) = value.as_object().filter(|m| m.len() == 1) else {
        return Ok(None);
    };
    let Some(target) = map.get("s3") else {
        return Ok(None);
    };
    let url = target.as_str().ok_or_else(|| {
        BodyError::Poison("claim check: `s3` must be a string `s3://bucket/key`".into())
    })?;
    let (bucket, key) = crate::s3::parse_url(url)
        .map_err(|e| BodyError::Poison(format!("claim check: s3: {e}")))?;
    if key.is_empty() {
        return Err(BodyError::Poison(
            "claim check: `s3` must name an object, not a prefix".into(),
        ));
    }
    Ok(Some((bucket, key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offline() -> ClaimCheck {
        ClaimCheck::new(S3Settings::default(), None)
    }

    #[tokio::test]
    async fn decode_passes_job_objects_and_poisons_the_rest() {
        let job = offline()
            .decode(Some(r#"{"prompt": "x", "s3": 1}"#))
            .await
            .unwrap();
        assert_eq!(job["prompt"], "x");
        for bad in [
            None,
            Some(""),
            Some("not json"),
            Some("[1, 2]"),
            Some("\"job\""),
        ] {
            let err = offline().decode(bad).await.unwrap_err();
            assert!(matches!(err, BodyError::Poison(_)), "{bad:?}: {err:?}");
        }
    }

    #[tokio::test]
    async fn a_claim_check_outside_the_input_allow_list_is_poison_and_never_read() {
        let allow = StorageAllow::parse(
            "MERCHGEN_INPUT_S3_ALLOW",
            &["s3://uploads".to_owned()],
            false,
        )
        .unwrap();
        // An endpoint nothing listens on: reading the object would be an `Unavailable` error.
        let s3 = S3Settings {
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            ..S3Settings::default()
        };
        let claims = ClaimCheck::new(s3, Some(allow));
        let err = claims
            .decode(Some(r#"{"s3": "s3://secrets/jobs/1.json"}"#))
            .await
            .unwrap_err();
        match err {
            BodyError::Poison(why) => assert!(
                why.contains("MERCHGEN_INPUT_S3_ALLOW") && why.contains("s3://secrets/jobs/1.json"),
                "{why}"
            ),
            other => panic!("expected poison, got {other:?}"),
        }
    }

    #[test]
    fn claim_check_target_reads_only_single_field_s3_objects() {
        let t = |v: Value| claim_check_target(&v);
        assert_eq!(
            t(json!({"s3": "s3://bkt/jobs/1.json"})).unwrap(),
            Some(("bkt".into(), "jobs/1.json".into()))
        );
        assert_eq!(t(json!({"prompt": "x"})).unwrap(), None);
        assert_eq!(t(json!({"s3": "s3://bkt/k", "prompt": "x"})).unwrap(), None);
        assert!(matches!(t(json!({"s3": 7})), Err(BodyError::Poison(_))));
        assert!(matches!(
            t(json!({"s3": "https://bkt/k"})),
            Err(BodyError::Poison(_))
        ));
        assert!(matches!(
            t(json!({"s3": "s3://bkt/"})),
            Err(BodyError::Poison(_))
        ));
    }
}
