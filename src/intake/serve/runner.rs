//! The one task that runs jobs: it pulls from the store's queue, so the device sees one job at
//! a time. It enforces `policy.executionTimeout` and `policy.ttl` by cancelling between
//! denoising steps, records progress for `status`, concludes each job (metrics, webhook), and on
//! shutdown lets the job in flight finish within the grace period before cancelling it.

use super::metrics::Metrics;
use super::record::State;
use super::store::{Claimed, Store};
use super::webhook::StatusWebhook;
use crate::error::{ErrorCode, JobError};
use crate::intake::runpod::bucket::Bucket;
use crate::intake::runpod::wire;
use crate::job::outcome::JobOutcome;
use crate::output::OutputConfig;
use crate::worker::{JobRequest, Worker};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the runner shares with the routes.
pub struct Runner {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub hooks: StatusWebhook,
    pub base_output: OutputConfig,
    pub grace: Duration,
}

/// The request's `s3Config` bucket, its endpoint through the address guard.
async fn guarded_bucket(
    s3_config: Option<&serde_json::Value>,
    policy: &crate::fetch::guard::AddressPolicy,
) -> Result<Option<Bucket>, JobError> {
    let Some(cfg) = s3_config else {
        return Ok(None);
    };
    let bucket = Bucket::from_s3_config(cfg, policy)?;
    bucket.check_resolved(policy).await?;
    Ok(Some(bucket))
}

/// How a run ended, before the store is told.
enum Ending {
    Done(JobOutcome),
    TimedOut(JobOutcome),
}

impl Runner {
    /// Run jobs until shutdown; then cancel whatever still waits.
    pub async fn run(self, worker: Arc<Worker>, shutdown: CancellationToken) {
        while let Some(job) = self.store.next(&shutdown).await {
            let span = tracing::info_span!("serve_job", job_id = %job.id);
            self.run_one(&worker, job, &shutdown).instrument(span).await;
        }
        for finished in self.store.purge() {
            self.metrics.finished(finished.state);
            if let Some(url) = finished.webhook {
                self.hooks.spawn(url, finished.body);
            }
        }
    }

    async fn run_one(&self, worker: &Worker, job: Claimed, shutdown: &CancellationToken) {
        let id = job.id.clone();
        let ending = match guarded_bucket(job.s3_config.as_ref(), worker.address_policy()).await {
            Ok(bucket) => self.execute(worker, job, bucket, shutdown).await,
            Err(e) => Ending::Done(JobOutcome::failed(id.clone(), e)),
        };
        let (state, output, error) = match ending {
            Ending::TimedOut(outcome) => {
                self.metrics.observe(&outcome);
                let error = JobError::new(
                    ErrorCode::Timeout,
                    "the job ran past its execution timeout (policy.executionTimeout)",
                );
                (State::TimedOut, None, Some(wire::error_text(&error)))
            }
            Ending::Done(outcome) => {
                self.metrics.observe(&outcome);
                match wire::outcome_error(&outcome) {
                    Some(error) => (State::Failed, None, Some(error)),
                    None => (State::Completed, serde_json::to_value(&outcome).ok(), None),
                }
            }
        };
        tracing::info!(status = state.as_str(), "job concluded");
        if let Some(finished) = self.store.finish(&id, state, output, error) {
            self.metrics.finished(finished.state);
            if let Some(url) = finished.webhook {
                self.hooks.spawn(url, finished.body);
            }
        }
    }

    async fn execute(
        &self,
        worker: &Worker,
        job: Claimed,
        bucket: Option<Bucket>,
        shutdown: &CancellationToken,
    ) -> Ending {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut req = JobRequest::new(job.input, job.id.clone());
        req.cancel = job.cancel.clone();
        req.output = bucket.map(|b| b.output_override(&self.base_output));
        req.progress = Some(tx);
        let store = self.store.clone();
        let job_id = job.id.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let output = wire::progress_body(&job_id, p)["output"].take();
                store.set_progress(&job_id, output);
            }
        });
        // Boxed: the pipeline's future is deep (see `runpod::job`).
        let mut run = Box::pin(worker.handle(req));
        tokio::select! {
            outcome = &mut run => return Ending::Done(outcome),
            _ = tokio::time::sleep_until(job.deadline.into()) => {
                tracing::warn!("execution timeout or ttl reached: cancelling the job");
                job.cancel.store(true, Ordering::Relaxed);
                return Ending::TimedOut(run.await);
            }
            _ = shutdown.cancelled() => {}
        }
        tracing::info!(
            grace_secs = self.grace.as_secs(),
            "shutting down: the job in flight may finish within the grace period"
        );
        tokio::select! {
            outcome = &mut run => Ending::Done(outcome),
            _ = tokio::time::sleep(self.grace) => {
                tracing::warn!("grace period over: cancelling the job in flight");
                job.cancel.store(true, Ordering::Relaxed);
                Ending::Done(run.await)
            }
        }
    }
}
