//! What one Lambda invocation does: a direct invocation carries one job and returns its outcome;
//! an SQS event is handled record by record (each body decoded on its own, so one bad message
//! fails alone) and answers `batchItemFailures` naming only the records the queue should hand
//! out again: retryable failures, and poison messages (so the redrive policy dead-letters them).
//! Terminal failures (invalid input) are acknowledged: the worker has sent their failure webhook.
//!
//! Jobs run through the door runtime with the function's deadline (less a margin to answer) as
//! theirs (`sqs_batch`, which `merchgen invoke` shares), so they end as `timeout` shortly before
//! Lambda would kill the environment, and records not started by then are reported as failures:
//! a timeout retries only the unfinished records. A deadline the Runtime API gives past or absurd (local emulators) is unknown:
//! logged, and only `MERCHGEN_JOB_TIMEOUT` applies. After a device fault the next invocation
//! exits the process, so Lambda starts a fresh environment (and the invocation is retried by
//! its caller or queue) instead of this one failing every job.
//! Lambda freezes the environment once an invocation is answered, background webhook deliveries
//! with it: the door runtime waits for each job's webhooks (within the deadline) before the job
//! counts as done, so they go out before the answer.

use super::deadline::Deadline;
use crate::intake::sqs_batch::BatchRunner;
use crate::job::strict_json::StrictJson;
use crate::worker::JobRequest;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::time::{Instant, SystemTime};

/// An invocation that cannot be answered with an outcome.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LambdaError {
    /// The event has `Records` but is not an SQS event (another trigger is wired to us).
    #[error("the event has `Records` but is not an SQS event: {0}")]
    NotSqs(String),
}

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Self {
        Diagnostic {
            error_type: "merchgen.UnsupportedEvent".to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// The Lambda door: the worker, built once at cold start, running jobs under each
/// invocation's deadline (`sqs_batch::BatchRunner`).
pub(crate) struct LambdaDoor {
    runner: BatchRunner,
}

impl LambdaDoor {
    pub(crate) fn new(runner: BatchRunner) -> Self {
        LambdaDoor { runner }
    }

    /// Answer one invocation: the outcome (direct) or an `SqsBatchResponse` (SQS event).
    pub(crate) async fn handle(
        &self,
        event: LambdaEvent<StrictJson>,
    ) -> Result<Value, LambdaError> {
        if self.runner.device_broken() {
            tracing::error!("the device broke in an earlier invocation: exiting so that Lambda starts a fresh environment");
            std::process::exit(1);
        }
        let (StrictJson(payload), ctx) = event.into_parts();
        let deadline = Deadline::from_epoch_ms(ctx.deadline, SystemTime::now());
        if deadline == Deadline::Unknown {
            tracing::warn!(
                deadline_ms = ctx.deadline,
                "the Runtime API's deadline is past or further than any function may run; treating it as unknown (no deadline watchdog)"
            );
        }
        let deadline = deadline
            .time_left(SystemTime::now())
            .map(|left| Instant::now() + left);
        if payload.get("Records").is_none() {
            let req = JobRequest::new(payload, ctx.request_id);
            let outcome = self.runner.run_job(req, deadline).await;
            return Ok(serde_json::to_value(outcome).expect("a JobOutcome always serializes"));
        }
        let batch: SqsEvent =
            serde_json::from_value(payload).map_err(|e| LambdaError::NotSqs(e.to_string()))?;
        if let Some(other) = batch
            .records
            .iter()
            .find_map(|r| r.event_source.as_deref().filter(|s| *s != "aws:sqs"))
        {
            return Err(LambdaError::NotSqs(format!("eventSource is {other:?}")));
        }
        let answer = self.batch(batch.records, deadline).await;
        Ok(serde_json::to_value(answer).expect("an SqsBatchResponse always serializes"))
    }

    async fn batch(&self, records: Vec<SqsMessage>, deadline: Option<Instant>) -> SqsBatchResponse {
        let results = self.runner.records(records, deadline).await;
        let failures: Vec<String> = results
            .iter()
            .filter(|r| r.reported_as_failure())
            .map(|r| r.message_id.clone())
            .collect();
        tracing::info!(
            records = results.len(),
            failures = failures.len(),
            "batch done"
        );
        let mut answer = SqsBatchResponse::default();
        answer.set_failures(failures);
        answer
    }
}
