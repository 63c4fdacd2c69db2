//! The task that runs jobs: it pulls from the store's queue and keeps up to
//! `MERCHGEN_PIPELINE_DEPTH` jobs in flight (default 2), so the engine generates the next job
//! while the previous one renders mockups, encodes and uploads, and queued compatible jobs can
//! share a batch (`MERCHGEN_BATCH_WAIT_MS`); the engine thread still runs one generation at a
//! time. Each job runs through the door runtime with `policy.executionTimeout` and
//! `policy.ttl` as its deadline (cancelled between denoising steps, `TIMED_OUT`) and the
//! shutdown grace period. It records progress for `status` and concludes each job (metrics,
//! webhook). After a device fault it stops: queued jobs end as `CANCELLED` (retryable), the
//! health check answers 503, and `serve` exits 1 so its supervisor starts a fresh worker.

use super::metrics::Metrics;
use super::record::State;
use super::store::{Claimed, Store};
use super::webhook::StatusWebhook;
use crate::error::{ErrorCode, JobError};
use crate::intake::runpod_protocol::bucket::Bucket;
use crate::intake::runpod_protocol::wire;
use crate::intake::runtime::{self, RunRules};
use crate::job::outcome::JobOutcome;
use crate::output::OutputConfig;
use crate::worker::{JobRequest, Worker};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What the runner shares with the routes.
pub struct Runner {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub hooks: StatusWebhook,
    pub base_output: OutputConfig,
    pub rules: RunRules,
    /// Jobs in flight at once (at least 1).
    pub depth: usize,
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

impl Runner {
    /// Run jobs until shutdown or a device fault (then false), up to `depth` at once; then
    /// cancel whatever still waits.
    pub async fn run(self, worker: Arc<Worker>, shutdown: CancellationToken) -> bool {
        let this = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(this.depth.max(1)));
        // Cancelled by the first job that finds the device broken: take no more jobs.
        let broken = CancellationToken::new();
        let mut running = tokio::task::JoinSet::new();
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                () = broken.cancelled() => break,
            };
            let job = tokio::select! {
                job = this.store.next(&shutdown) => job,
                () = broken.cancelled() => None,
            };
            let Some(job) = job else { break };
            let (runner, worker, shutdown, broken) = (
                this.clone(),
                worker.clone(),
                shutdown.clone(),
                broken.clone(),
            );
            let span = tracing::info_span!("serve_job", job_id = %job.id);
            running.spawn(
                async move {
                    if !runner.run_one(&worker, job, &shutdown).await {
                        broken.cancel();
                    }
                    drop(slot);
                }
                .instrument(span),
            );
            // Reap finished tasks as we go (a panic in one is already a failed job's log line).
            while running.try_join_next().is_some() {}
        }
        while running.join_next().await.is_some() {}
        for finished in this.store.purge() {
            this.metrics.finished(finished.state);
            if let Some(url) = finished.webhook {
                this.hooks.spawn(url, finished.body);
            }
        }
        !broken.is_cancelled()
    }

    /// Run one job and conclude it; false when the device broke.
    async fn run_one(&self, worker: &Worker, job: Claimed, shutdown: &CancellationToken) -> bool {
        let id = job.id.clone();
        let (outcome, healthy) =
            match guarded_bucket(job.s3_config.as_ref(), worker.address_policy()).await {
                Ok(bucket) => self.execute(worker, job, bucket, shutdown).await,
                Err(e) => (JobOutcome::failed(id.clone(), e), true),
            };
        let timed_out = outcome
            .error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::Timeout);
        let (state, output, error) = match wire::outcome_error(&outcome) {
            Some(error) if timed_out => (State::TimedOut, None, Some(error)),
            Some(error) => (State::Failed, None, Some(error)),
            None => (State::Completed, serde_json::to_value(&outcome).ok(), None),
        };
        tracing::info!(status = state.as_str(), "job concluded");
        if let Some(finished) = self.store.finish(&id, state, output, error) {
            self.metrics.finished(finished.state);
            if let Some(url) = finished.webhook {
                self.hooks.spawn(url, finished.body);
            }
        }
        healthy
    }

    /// The job's outcome, and false when the device broke.
    async fn execute(
        &self,
        worker: &Worker,
        job: Claimed,
        bucket: Option<Bucket>,
        shutdown: &CancellationToken,
    ) -> (JobOutcome, bool) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut req = JobRequest::new(job.input, job.id.clone());
        req.cancel = job.cancel.clone();
        req.deadline = Some(job.deadline);
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
        let ran = Box::pin(runtime::run_job(worker, req, shutdown, &self.rules)).await;
        let healthy = !ran.stop_taking;
        (ran.into_outcome(&job.id), healthy)
    }
}
