//! `JobRunner`: what a door needs of the pipeline. `Worker` is the real one; the runtime's unit
//! tests drive scripted ones.

use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};
use serde_json::Value;

/// Runs jobs to their outcomes.
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Run one job to its outcome (never panics on bad input; every failure is an outcome).
    async fn handle(&self, req: JobRequest) -> JobOutcome;

    /// True once a job failed in a way that may leave the device unusable (a CUDA error, a dead
    /// engine thread): the door then takes no more jobs.
    fn device_broken(&self) -> bool;

    /// Wait at most `limit` until job `id`'s webhook events went out (delivered or given up);
    /// true when none is left.
    async fn webhooks_settled(&self, id: &str, limit: std::time::Duration) -> bool;

    /// Announce a job given up without an outcome (`job.failed`, or `job.retrying` when
    /// `retried`) to the `webhook` of its body, when that is valid.
    fn announce_given_up(
        &self,
        webhook: Option<&Value>,
        outcome: &JobOutcome,
        attempt: u32,
        retried: bool,
    ) {
        let _ = (webhook, outcome, attempt, retried);
    }
}

#[async_trait::async_trait]
impl JobRunner for Worker {
    async fn handle(&self, req: JobRequest) -> JobOutcome {
        Worker::handle(self, req).await
    }

    fn device_broken(&self) -> bool {
        Worker::device_broken(self)
    }

    async fn webhooks_settled(&self, id: &str, limit: std::time::Duration) -> bool {
        Worker::webhooks_settled(self, id, limit).await
    }

    fn announce_given_up(
        &self,
        webhook: Option<&Value>,
        outcome: &JobOutcome,
        attempt: u32,
        retried: bool,
    ) {
        Worker::announce_given_up(self, webhook, outcome, attempt, retried);
    }
}
