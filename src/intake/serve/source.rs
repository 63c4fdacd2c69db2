//! The endpoint API's queue as a `JobSource`, so its jobs run through the doors' one consumer
//! loop (`runtime::pull`, up to `MERCHGEN_PIPELINE_DEPTH` jobs in flight): `next` claims the next
//! waiting job (`IN_PROGRESS`); `prepare` gives it its cancel flag, its deadline
//! (`policy.executionTimeout`, `policy.ttl`), its request's `s3Config` bucket (the endpoint
//! through the address guard) and a progress channel into `status`; `settle` concludes it
//! (`COMPLETED`, `FAILED`, `TIMED_OUT`; `CANCELLED` for a job released before it ran) with the
//! metrics and the request's webhook. Once the loop stops (shutdown, or a device fault) the jobs
//! still waiting end as `CANCELLED` (retryable).

use super::metrics::Metrics;
use super::record::State;
use super::store::{Finished, Store};
use super::webhook::StatusWebhook;
use crate::error::{ErrorCode, JobError};
use crate::intake::runpod_protocol::bucket::Bucket;
use crate::intake::runpod_protocol::wire;
use crate::intake::runtime::source::{Delivery, JobSource, Settled, SourceError};
use crate::job::outcome::JobOutcome;
use crate::net::AddressPolicy;
use crate::output::OutputConfig;
use crate::worker::JobRequest;
use serde_json::Value;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// The store's jobs, and how they are concluded.
pub(crate) struct ServeSource {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub hooks: StatusWebhook,
    /// Output settings that a request's `s3Config` bucket starts from.
    pub(crate) base_output: OutputConfig,
    /// Which literal addresses a request's `s3Config.endpointUrl` may name.
    pub addresses: AddressPolicy,
}

/// What a claimed job brings besides its input.
pub(crate) struct ServeTicket {
    cancel: Arc<AtomicBool>,
    /// Start + execution timeout, or the ttl, whichever is first.
    deadline: Instant,
    s3_config: Option<Value>,
}

impl ServeSource {
    fn announce(&self, finished: Finished) {
        self.hooks.announce(&self.metrics, finished);
    }

    /// The request's `s3Config` bucket, its endpoint through the address guard.
    async fn bucket(&self, s3_config: Option<&Value>) -> Result<Option<Bucket>, JobError> {
        let Some(cfg) = s3_config else {
            return Ok(None);
        };
        let bucket = Bucket::from_s3_config(cfg, &self.addresses)?;
        bucket.check_resolved(&self.addresses).await?;
        Ok(Some(bucket))
    }
}

/// The RunPod state, output and error of a job's outcome: a job stopped by a cancel is
/// `CANCELLED`, one stopped at its deadline `TIMED_OUT`.
fn conclusion(outcome: &JobOutcome) -> (State, Option<Value>, Option<String>) {
    let code = outcome.error.as_ref().map(|e| e.code);
    match wire::outcome_error(outcome) {
        Some(error) if code == Some(ErrorCode::Timeout) => (State::TimedOut, None, Some(error)),
        Some(error) if code == Some(ErrorCode::Cancelled) => (State::Cancelled, None, Some(error)),
        Some(error) => (State::Failed, None, Some(error)),
        None => (State::Completed, serde_json::to_value(outcome).ok(), None),
    }
}

#[async_trait::async_trait]
impl JobSource for ServeSource {
    type Ticket = ServeTicket;

    async fn next(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Delivery<ServeTicket>>, SourceError> {
        let Some(job) = self.store.next(stop).await else {
            return Ok(None);
        };
        Ok(Some(Delivery {
            id: job.id,
            attempt: 1,
            received: Instant::now(),
            body: Ok(job.input),
            ticket: ServeTicket {
                cancel: job.cancel,
                deadline: job.deadline,
                s3_config: job.s3_config,
            },
        }))
    }

    async fn prepare(&self, req: &mut JobRequest, ticket: &ServeTicket) -> Result<(), JobError> {
        let bucket = self.bucket(ticket.s3_config.as_ref()).await?;
        req.cancel = ticket.cancel.clone();
        req.deadline = Some(ticket.deadline);
        req.output = bucket.map(|b| b.output_override(&self.base_output));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        req.progress = Some(tx);
        let (store, id) = (self.store.clone(), req.delivery_id.clone());
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                let output = wire::progress_body(&id, p)["output"].take();
                store.set_progress(&id, output);
            }
        });
        Ok(())
    }

    async fn settle(&self, id: &str, _: ServeTicket, settled: Settled) -> Result<(), SourceError> {
        let finished = match &settled.outcome {
            Some(outcome) => {
                let (state, output, error) = conclusion(outcome);
                tracing::info!(status = state.as_str(), "job concluded");
                self.store.finish(id, state, output, error)
            }
            // Claimed, never run (shutdown, or the device broke): cancelled, retryable.
            None => self.store.finish(id, State::Cancelled, None, None),
        };
        if let Some(finished) = finished {
            self.announce(finished);
        }
        Ok(())
    }

    async fn drain(&self) {
        for finished in self.store.purge() {
            self.announce(finished);
        }
    }
}
