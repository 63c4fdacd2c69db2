//! The job-stop long poll: `GET` the job-take URL with `/job-stop/`;
//! `{"jobsToStop": [ids]}` cancels those jobs between denoising steps and marks them stopped,
//! so no result is posted for them. Nothing: pause 1 s; 429: back off; errors: pause 1 s.

use super::client::Answer;
use super::inflight::InFlight;
use super::settings::Settings;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Pause after an empty answer or an error, so a server that answers at once is not hammered.
const IDLE: Duration = Duration::from_secs(1);

/// Start the job-stop poll; `None` when the job-take URL has no `/job-take/`.
pub(crate) fn spawn(
    settings: Arc<Settings>,
    inflight: InFlight,
    stop: CancellationToken,
) -> Option<JoinHandle<()>> {
    let url = settings.urls.stop()?;
    Some(tokio::spawn(async move {
        loop {
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                a = settings.client.get(&url, settings.take_timeout) => a,
            };
            let pause = match answer {
                Answer::Ok {
                    json: true, body, ..
                } => {
                    let ids = job_ids(&body);
                    for id in &ids {
                        let here = inflight.stop(id);
                        tracing::info!(job_id = %id, here, "job-stop: platform asked to stop the job");
                    }
                    if ids.is_empty() {
                        IDLE
                    } else {
                        Duration::ZERO
                    }
                }
                Answer::TimedOut => Duration::ZERO,
                Answer::Status(429) => settings.throttle,
                Answer::Ok { .. } | Answer::Status(204) => IDLE,
                Answer::Status(status) => {
                    tracing::warn!(status, "job-stop answered with an error status");
                    IDLE
                }
                Answer::Failed(error) => {
                    tracing::warn!(%error, "job-stop poll failed");
                    IDLE
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }))
}

/// The string ids of `{"jobsToStop": [...]}`; anything else is no ids.
fn job_ids(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        tracing::warn!("job-stop answered a body that is not JSON");
        return Vec::new();
    };
    value
        .get("jobsToStop")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_keeps_strings_only() {
        assert_eq!(job_ids(br#"{"jobsToStop": ["a", 3, "b"]}"#), ["a", "b"]);
        assert!(job_ids(br#"{"jobsToStop": "a"}"#).is_empty());
        assert!(job_ids(b"garbage").is_empty());
    }
}
