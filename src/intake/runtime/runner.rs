//! `JobRunner`: what a door needs of the pipeline. `Worker` is the real one; the runtime's unit
//! tests drive scripted ones.

use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};

/// Runs jobs to their outcomes.
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync + 'static {
    /// Run one job to its outcome (never panics on bad input; every failure is an outcome).
    async fn handle(&self, req: JobRequest) -> JobOutcome;

    /// True once a job failed in a way that may leave the device unusable (a CUDA error, a dead
    /// engine thread): the door then takes no more jobs.
    fn device_broken(&self) -> bool;
}

#[async_trait::async_trait]
impl JobRunner for Worker {
    /// The outcome once the job's webhooks are delivered (or given up): the door settles the
    /// job after this, so a crash right after settling never loses its completion webhook.
    /// The engine does not wait: it is already generating the next job in flight.
    async fn handle(&self, req: JobRequest) -> JobOutcome {
        let outcome = Worker::handle(self, req).await;
        self.webhooks_settled(&outcome.id).await;
        outcome
    }

    fn device_broken(&self) -> bool {
        Worker::device_broken(self)
    }
}
