//! Posting a job's result (job-done) until the platform accepts it: a result the worker took
//! is never dropped silently. Connection errors, timeouts, 408, 429 and 5xx are retried with
//! backoff up to a deadline; a result the platform keeps refusing (other 4xx, e.g. too large)
//! is replaced by an `upload_failed` error so the job shows FAILED rather than an empty success.

use super::client::Answer;
use super::settings::Settings;
use crate::intake::runpod_protocol::wire;
use serde_json::Value;
use std::time::Instant;

/// Refusals (non-retryable 4xx) tolerated before the body is replaced or given up.
const MAX_REFUSALS: u32 = 3;

/// Post `body` for `job_id`; true once the platform accepted a body.
pub(crate) async fn post(
    settings: &Settings,
    job_id: &str,
    body: &Value,
    deadline: Instant,
) -> bool {
    let url = settings.urls.done(job_id, false);
    let mut bytes = wire::encode_result(body, settings.max_result_bytes);
    let mut replaced = body.get("output").is_none();
    let (mut attempt, mut refusals) = (0u32, 0u32);
    loop {
        attempt += 1;
        let answer = settings
            .client
            .post(&url, job_id, bytes.clone(), settings.post_timeout)
            .await;
        match answer {
            Answer::Ok { status, .. } => {
                tracing::info!(
                    job_id,
                    attempt,
                    status,
                    bytes = bytes.len(),
                    "job result accepted"
                );
                return true;
            }
            Answer::Status(status) if refused(status) => {
                refusals += 1;
                tracing::warn!(job_id, attempt, status, "job-done refused the result");
                if refusals >= MAX_REFUSALS {
                    if replaced {
                        tracing::error!(
                            job_id,
                            status,
                            "job-done keeps refusing; the result is given up"
                        );
                        return false;
                    }
                    bytes = wire::refused_result(body, status);
                    (replaced, refusals) = (true, 0);
                }
            }
            other => tracing::warn!(job_id, attempt, answer = ?other, "job-done failed; retrying"),
        }
        let delay = settings.error_backoff().delay(attempt);
        if Instant::now() + delay > deadline {
            tracing::error!(
                job_id,
                attempt,
                "job-done was not accepted before the deadline; the result is given up"
            );
            return false;
        }
        tokio::time::sleep(delay).await;
    }
}

/// A status the platform will answer again for the same body.
fn refused(status: u16) -> bool {
    (400..500).contains(&status) && !matches!(status, 408 | 429)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_statuses() {
        assert!(refused(400) && refused(413) && refused(404));
        assert!(!refused(429) && !refused(408) && !refused(500) && !refused(200));
    }
}
