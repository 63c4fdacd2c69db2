//! The bodies RunPod expects: a result is `{"output": ...}`,
//! a failure `{"error": "<string>"}` (a JSON object makes the platform drop it), `stopPod`
//! asks for this worker to be replaced, and progress is `{"status": "IN_PROGRESS", ...}`.
//! Shared with `serve`, which reports the same `error` strings.

use crate::error::{ErrorCode, JobError};
use crate::job::outcome::JobOutcome;
use crate::worker::Progress;
use serde_json::{json, Value};

/// The `error` string of a failed outcome: the JSON text of merchgen's error object
/// (`{"code", "message", "field"?, "retryable"}`), so a client can parse the code back.
pub(crate) fn error_text(error: &JobError) -> String {
    serde_json::to_string(error).unwrap_or_else(|_| format!("{}: {}", error.code, error.message))
}

/// The `error` string of an outcome, when it failed.
pub(crate) fn outcome_error(outcome: &JobOutcome) -> Option<String> {
    if outcome.succeeded() {
        return None;
    }
    let fallback = JobError::internal("the job failed without an error");
    Some(error_text(outcome.error.as_ref().unwrap_or(&fallback)))
}

/// The job-done body of an outcome; `stop_pod` asks the platform to replace this worker.
pub(crate) fn result_body(outcome: &JobOutcome, stop_pod: bool) -> Value {
    let mut body = match outcome_error(outcome) {
        Some(error) => json!({ "error": error }),
        None => json!({ "output": outcome }),
    };
    if stop_pod {
        body["stopPod"] = Value::Bool(true);
    }
    body
}

/// A progress update after denoising step `step` of `total`.
pub(crate) fn progress_body(job_id: &str, p: Progress) -> Value {
    json!({
        "status": "IN_PROGRESS",
        "output": {"id": job_id, "stage": "denoise", "step": p.step, "total": p.total,
                   "progress": format!("{}/{}", p.step, p.total)},
    })
}

/// Serialize a job-done body; one over `max_bytes` (RunPod refuses those with a 400, and the
/// job would show COMPLETED with no output) is replaced by an `upload_failed` error.
pub(crate) fn encode_result(body: &Value, max_bytes: usize) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    if bytes.len() <= max_bytes {
        return bytes;
    }
    let message = format!(
        "the result is {} bytes, over the {max_bytes}-byte limit for RunPod results; set \
         BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY (or send s3Config, \
         or output.destination s3://...) so outputs go to a bucket, or ask for fewer or smaller images",
        bytes.len()
    );
    refusal_body(body, message)
}

/// The body posted when the platform keeps refusing a result (HTTP 4xx): an error naming why,
/// so the job shows FAILED instead of COMPLETED without output.
pub(crate) fn refused_result(body: &Value, status: u16) -> Vec<u8> {
    let message = format!("RunPod refused the job result (HTTP {status}); it may be too large: send outputs to a bucket");
    refusal_body(body, message)
}

fn refusal_body(original: &Value, message: String) -> Vec<u8> {
    let error = JobError::new(ErrorCode::UploadFailed, message)
        .with_field(crate::output::DESTINATION_FIELD)
        .with_retryable(false);
    let mut body = json!({ "error": error_text(&error) });
    if original.get("stopPod").is_some() {
        body["stopPod"] = Value::Bool(true);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::outcome::JobStatus;

    fn ok() -> JobOutcome {
        let mut o = JobOutcome::failed("j", JobError::internal("x"));
        o.status = JobStatus::Succeeded;
        o.error = None;
        o
    }

    #[test]
    fn result_body_shapes() {
        let body = result_body(&ok(), false);
        assert_eq!(body["output"]["status"], "succeeded");
        assert!(body.get("error").is_none() && body.get("stopPod").is_none());

        let failed = JobOutcome::failed("j", JobError::invalid("width", "bad"));
        let body = result_body(&failed, true);
        let error: Value =
            serde_json::from_str(body["error"].as_str().expect("error is a string")).unwrap();
        assert_eq!(
            (error["code"].as_str(), error["field"].as_str()),
            (Some("invalid_input"), Some("width"))
        );
        assert_eq!(body["stopPod"], true);
        assert!(body.get("output").is_none());
    }

    #[test]
    fn oversize_result_becomes_upload_failed() {
        let body = result_body(&ok(), true);
        let small = encode_result(&body, 1_000_000);
        assert_eq!(serde_json::from_slice::<Value>(&small).unwrap(), body);
        let refused: Value = serde_json::from_slice(&encode_result(&body, 10)).unwrap();
        let error: Value = serde_json::from_str(refused["error"].as_str().unwrap()).unwrap();
        assert_eq!(error["code"], "upload_failed");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("BUCKET_ENDPOINT_URL"));
        assert_eq!(refused["stopPod"], true);
    }

    #[test]
    fn progress_body_shape() {
        let b = progress_body("j", Progress { step: 2, total: 4 });
        assert_eq!(b["status"], "IN_PROGRESS");
        assert_eq!(
            (
                b["output"]["step"].as_u64(),
                b["output"]["progress"].as_str()
            ),
            (Some(2), Some("2/4"))
        );
    }
}
