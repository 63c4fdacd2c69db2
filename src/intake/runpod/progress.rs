//! Progress updates of one job: each denoising step becomes
//! `POST {job-done}&isStream=false` with `{"status": "IN_PROGRESS", "output": {...}}`. Best
//! effort: one attempt each, steps that pile up while a post is in flight are coalesced into
//! the latest, and nothing is posted for a job the platform stopped.

use super::client::Answer;
use super::inflight::Tracked;
use super::settings::Settings;
use crate::config::RunpodProgress;
use crate::intake::runpod_protocol::wire;
use crate::worker::Progress;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

/// Longest wait for one progress post (a slow platform must not hold the job's result back).
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this job gets per-step progress: always, never, or when its `webhook.events`
/// subscribes to `progress` (merchgen's opt-in for progress events).
pub(crate) fn wanted(mode: RunpodProgress, input: &Value) -> bool {
    match mode {
        RunpodProgress::Off => false,
        RunpodProgress::Steps => true,
        RunpodProgress::Job => input
            .pointer("/webhook/events")
            .and_then(Value::as_array)
            .is_some_and(|events| events.iter().any(|e| e == "progress")),
    }
}

/// Count the job's steps into `job.steps_done` until its channel closes and, when `post`,
/// post them; yields how many posts were accepted.
pub(crate) fn spawn(
    settings: Arc<Settings>,
    job: Tracked,
    mut rx: UnboundedReceiver<Progress>,
    post: bool,
) -> JoinHandle<u32> {
    tokio::spawn(async move {
        let url = settings.urls.done(&job.id, false);
        let mut accepted = 0;
        while let Some(mut latest) = rx.recv().await {
            while let Ok(next) = rx.try_recv() {
                latest = next;
            }
            job.steps_done.fetch_max(latest.step, Ordering::Relaxed);
            if !post || job.was_stopped() {
                continue;
            }
            let body =
                serde_json::to_vec(&wire::progress_body(&job.id, latest)).unwrap_or_default();
            match settings
                .client
                .post(&url, &job.id, body, POST_TIMEOUT.min(settings.post_timeout))
                .await
            {
                Answer::Ok { .. } => accepted += 1,
                other => {
                    tracing::debug!(job_id = %job.id, step = latest.step, answer = ?other, "progress update not accepted")
                }
            }
        }
        accepted
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wanted_follows_mode_and_job_subscription() {
        let subscribed =
            json!({"webhook": {"url": "https://x", "events": ["progress", "completed"]}});
        let plain = json!({"prompt": "x"});
        assert!(wanted(RunpodProgress::Job, &subscribed) && !wanted(RunpodProgress::Job, &plain));
        assert!(wanted(RunpodProgress::Steps, &plain));
        assert!(!wanted(RunpodProgress::Off, &subscribed));
    }
}
