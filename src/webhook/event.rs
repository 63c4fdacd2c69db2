//! Webhook events: the body `{"type", "timestamp", "data"}`, its Standard Webhooks
//! signature, and a message id that is stable per job and event, so a receiver can deduplicate
//! retries and redeliveries.

use super::secret::Secret;
use crate::job::spec::WebhookEventKind;
use crate::job::JobOutcome;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::SystemTime;

/// One event about one job.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub kind: WebhookEventKind,
    pub job_id: String,
    /// The outcome (completed, failed) or a progress report.
    pub data: serde_json::Value,
    /// When the event happened (the body's `timestamp`; retries keep it).
    pub at: SystemTime,
    /// Distinguishes repeated events of one kind (the step of a progress event).
    pub(crate) sequence: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a serde_json::Value,
}

impl WebhookEvent {
    /// `job.completed` or `job.failed`, carrying the outcome.
    pub fn finished(outcome: &JobOutcome) -> Self {
        let kind = if outcome.succeeded() {
            WebhookEventKind::Completed
        } else {
            WebhookEventKind::Failed
        };
        let data = serde_json::to_value(outcome).expect("a JobOutcome always serializes");
        Self::new(kind, &outcome.id, data, None)
    }

    /// `job.retrying`: delivery `attempt` of the job failed with `error`, and the door will hand
    /// the job out again (`job.failed` and `job.completed` are the job's end, sent once).
    pub fn retrying(job_id: &str, attempt: u32, error: &crate::error::JobError) -> Self {
        let data = serde_json::json!({ "id": job_id, "status": "retrying", "attempt": attempt,
            "error": error });
        Self::new(WebhookEventKind::Retrying, job_id, data, Some(attempt))
    }

    /// `job.started`.
    pub fn started(job_id: &str) -> Self {
        let data = serde_json::json!({ "id": job_id, "status": "started" });
        Self::new(WebhookEventKind::Started, job_id, data, None)
    }

    /// `job.progress` after denoising step `step` of `total`.
    pub fn progress(job_id: &str, step: u32, total: u32) -> Self {
        let data = serde_json::json!({ "id": job_id, "step": step, "total": total });
        Self::new(WebhookEventKind::Progress, job_id, data, Some(step))
    }

    fn new(
        kind: WebhookEventKind,
        job_id: &str,
        data: serde_json::Value,
        seq: Option<u32>,
    ) -> Self {
        WebhookEvent {
            kind,
            job_id: job_id.to_owned(),
            data,
            at: SystemTime::now(),
            sequence: seq,
        }
    }

    /// The body's `type`: `job.completed`, `job.failed`, `job.started`, `job.progress`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self.kind {
            WebhookEventKind::Started => "job.started",
            WebhookEventKind::Progress => "job.progress",
            WebhookEventKind::Completed => "job.completed",
            WebhookEventKind::Failed => "job.failed",
            WebhookEventKind::Retrying => "job.retrying",
        }
    }

    /// `webhook-id`: `msg_` and a hash of job id, type and sequence. Stable across retries and
    /// redeliveries; a hash because job ids may contain `.`, which the signed content forbids.
    pub fn message_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.job_id.as_bytes());
        h.update([0]);
        h.update(self.type_name().as_bytes());
        if let Some(seq) = self.sequence {
            h.update(seq.to_be_bytes());
        }
        format!("msg_{}", &hex::encode(h.finalize())[..32])
    }

    /// The exact bytes sent (and signed).
    pub fn body(&self) -> Vec<u8> {
        let timestamp = time::OffsetDateTime::from(self.at)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let body = Body {
            kind: self.type_name(),
            timestamp,
            data: &self.data,
        };
        serde_json::to_vec(&body).expect("a webhook body always serializes")
    }
}

/// `webhook-signature` value: `v1,` and base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
pub(crate) fn signature(secret: &Secret, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.key()).expect("HMAC accepts keys of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;

    #[test]
    fn signature_matches_standard_webhooks_vector() {
        let secret = Secret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature(&secret, "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn body_has_type_timestamp_and_outcome() {
        let event = WebhookEvent::finished(&JobOutcome::failed("j.1", JobError::internal("x")));
        let v: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(v["type"], "job.failed");
        assert_eq!(v["data"]["id"], "j.1");
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    }

    #[test]
    fn message_id_is_stable_per_job_and_event_and_has_no_dots() {
        let a = WebhookEvent::started("j.1");
        let b = WebhookEvent::started("j.1");
        assert_eq!(a.message_id(), b.message_id());
        assert!(!a.message_id().contains('.'));
        assert_ne!(a.message_id(), WebhookEvent::started("j.2").message_id());
        let p1 = WebhookEvent::progress("j.1", 1, 4).message_id();
        assert_ne!(p1, WebhookEvent::progress("j.1", 2, 4).message_id());
        assert_ne!(p1, a.message_id());
    }
}
