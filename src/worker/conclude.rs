//! Concluding a job: a success is recorded in `result.json` (written after every output, so its
//! presence means the job is complete) and announced with `job.completed`, whose delivery
//! failure is recorded in `result.json` in turn; a failure is announced with `job.failed`, or
//! with `job.retrying` when the door will hand the job out again. A job given up by the door
//! runtime (it did not stop when cancelled) is announced the same way, from outside its run.

use super::rejected::usable_webhook;
use super::replay::store_result;
use super::{JobRequest, Worker};
use crate::error::JobError;
use crate::job::outcome::JobOutcome;
use crate::job::ValidJob;
use crate::output::OutputSink;
use crate::webhook::{OnReport, WebhookEvent};
use std::sync::Arc;

impl Worker {
    pub(super) async fn conclude_succeeded(
        &self,
        job: &ValidJob,
        req: &JobRequest,
        mut outcome: JobOutcome,
        sink: &Arc<dyn OutputSink>,
    ) -> JobOutcome {
        outcome.job_sha256 = Some(job.spec_sha256.clone());
        // result.json is written after every output, so its presence means the job is complete.
        if let Err(e) = store_result(sink.as_ref(), &outcome).await {
            return self.conclude_failed(job, req, e.into()).await;
        }
        if let Some(hook) = &job.webhook {
            // Delivered in the background; a delivery that fails for good is recorded in
            // result.json then, so the next replay says so.
            let (sink, stored) = (sink.clone(), outcome.clone());
            let on_report: OnReport = Box::new(move |report| {
                Box::pin(async move {
                    if report.delivered || report.attempts == 0 && report.error.is_none() {
                        return;
                    }
                    tracing::warn!(job_id = %stored.id, error = report.error.as_deref(), "completion webhook could not be delivered; recorded in result.json");
                    let mut stored = stored;
                    stored.webhook = Some(report);
                    if let Err(e) = store_result(sink.as_ref(), &stored).await {
                        tracing::warn!(job_id = %stored.id, error = %e, "could not record the webhook failure");
                    }
                })
            });
            self.parts
                .webhooks
                .send(hook, WebhookEvent::finished(&outcome), Some(on_report));
        }
        outcome
    }

    pub(super) async fn conclude_failed(
        &self,
        job: &ValidJob,
        req: &JobRequest,
        error: JobError,
    ) -> JobOutcome {
        tracing::warn!(job_id = %job.id, code = %error.code, message = %error.message, "job failed");
        let outcome = JobOutcome::failed(job.id.clone(), error);
        if let Some(hook) = &job.webhook {
            let event = failure_event(&outcome, req.attempt, req.retried_on_failure);
            self.parts.webhooks.send(hook, event, None);
        }
        outcome
    }

    /// Announce a job the door runtime gave up (it did not stop when cancelled, so its own run
    /// never will): `job.failed` with `outcome`'s error, or `job.retrying` when the door hands
    /// it out again. `body` is the job as it came; its webhook is used when valid by itself.
    pub(crate) fn announce_given_up(
        &self,
        webhook: Option<&serde_json::Value>,
        outcome: &JobOutcome,
        attempt: u32,
        retried: bool,
    ) {
        let Some(hook) = webhook.and_then(|w| usable_webhook(w, &self.parts.limits.addresses))
        else {
            return;
        };
        let event = failure_event(outcome, attempt, retried);
        self.parts.webhooks.send(&hook, event, None);
    }
}

/// `job.retrying` for a retryable failure the door will retry, else `job.failed`.
fn failure_event(outcome: &JobOutcome, attempt: u32, retried: bool) -> WebhookEvent {
    match &outcome.error {
        Some(error) if error.retryable && retried => {
            WebhookEvent::retrying(&outcome.id, attempt, error)
        }
        _ => WebhookEvent::finished(outcome),
    }
}
