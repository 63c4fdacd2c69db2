//! What one Lambda invocation does: a direct invocation carries one job and returns its outcome;
//! an SQS event is handled record by record (each body decoded on its own, so one bad message
//! fails alone) and answers `batchItemFailures` naming only the records the queue should hand
//! out again: retryable failures, and poison messages (so the redrive policy dead-letters them).
//! Terminal failures (invalid input) are acknowledged: the worker has sent their failure webhook.
//!
//! Jobs run through the door runtime with the function's deadline (less a margin to answer) as
//! theirs, so they end as `timeout` shortly before Lambda would kill the environment, and
//! records not started by then are reported as failures: a timeout retries only the unfinished
//! records. A deadline the Runtime API gives past or absurd (local emulators) is unknown:
//! logged, and only `MERCHGEN_JOB_TIMEOUT` applies. After a device fault the next invocation
//! exits the process, so Lambda starts a fresh environment (and the invocation is retried by
//! its caller or queue) instead of this one failing every job.
//! Lambda freezes the environment once an invocation is answered, background webhook deliveries
//! with it: the door runtime waits for each job's webhooks (within the deadline) before the job
//! counts as done, so they go out before the answer.

use super::deadline::Deadline;
use crate::backoff::Backoff;
use crate::intake::claim_check::ClaimCheck;
use crate::intake::runtime::source::{self, Settlement};
use crate::intake::runtime::{self, RunRules};
use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Time kept free before the function's deadline to finish a cancelled job and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// Lambda's redelivery delay is the queue's; this only satisfies `after_outcome`.
const NO_BACKOFF: Backoff = Backoff::NONE;

/// An invocation that cannot be answered with an outcome.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
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

/// What became of one record of an SQS batch.
#[derive(Debug)]
pub struct RecordResult {
    pub message_id: String,
    pub settlement: Settlement,
    /// The job's outcome, or why no job ran (a poison message, a claim check not readable now,
    /// the deadline too near).
    pub outcome: Result<JobOutcome, String>,
}

impl RecordResult {
    /// Listed in `batchItemFailures`: everything the queue must hand out again (retryable
    /// failures, records not started) or dead-letter through its redrive policy (poison).
    pub fn reported_as_failure(&self) -> bool {
        self.settlement != Settlement::Ack
    }
}

/// The Lambda door: the worker, built once at cold start, and the claim-check reader.
pub struct LambdaDoor {
    worker: Worker,
    claims: ClaimCheck,
    rules: RunRules,
    /// Lambda stops an environment without a shutdown signal to a job; never cancelled.
    shutdown: CancellationToken,
    device_broken: AtomicBool,
}

impl LambdaDoor {
    pub fn new(worker: Worker, claims: ClaimCheck, rules: RunRules) -> Self {
        LambdaDoor {
            worker,
            claims,
            rules,
            shutdown: CancellationToken::new(),
            device_broken: AtomicBool::new(false),
        }
    }

    /// Answer one invocation: the outcome (direct) or an `SqsBatchResponse` (SQS event).
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, LambdaError> {
        if self.device_broken.load(Ordering::Relaxed) {
            tracing::error!("the device broke in an earlier invocation: exiting so that Lambda starts a fresh environment");
            std::process::exit(1);
        }
        let (payload, ctx) = event.into_parts();
        let deadline = Deadline::from_epoch_ms(ctx.deadline, SystemTime::now());
        if deadline == Deadline::Unknown {
            tracing::warn!(
                deadline_ms = ctx.deadline,
                "the Runtime API's deadline is past or further than any function may run; treating it as unknown (no deadline watchdog)"
            );
        }
        if payload.get("Records").is_none() {
            let outcome = self
                .run_job(JobRequest::new(payload, ctx.request_id), deadline)
                .await;
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

    async fn batch(&self, records: Vec<SqsMessage>, deadline: Deadline) -> SqsBatchResponse {
        let results = self.records(records, deadline).await;
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

    /// Handle an SQS batch record by record, in order. Records without a `messageId` cannot be
    /// reported either way and are skipped (logged). `merchgen invoke` runs sample SQS events
    /// through here too, so its `batchItemFailures` are the ones Lambda would get.
    pub async fn records(&self, records: Vec<SqsMessage>, deadline: Deadline) -> Vec<RecordResult> {
        let mut results = Vec::with_capacity(records.len());
        for record in records {
            let Some(id) = record.message_id.clone().filter(|id| !id.is_empty()) else {
                tracing::error!(
                    "an SQS record has no messageId; it cannot be reported and is skipped"
                );
                continue;
            };
            let attempt: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            let span = tracing::info_span!("delivery", door = "lambda", message_id = %id, attempt);
            let (settlement, outcome) = self
                .record(record, &id, deadline)
                .instrument(span.clone())
                .await;
            tracing::info!(parent: &span, settlement = settlement.as_str(), "record done");
            results.push(RecordResult {
                message_id: id,
                settlement,
                outcome,
            });
        }
        results
    }

    async fn record(
        &self,
        record: SqsMessage,
        id: &str,
        deadline: Deadline,
    ) -> (Settlement, Result<JobOutcome, String>) {
        if deadline
            .time_left(SystemTime::now())
            .is_some_and(|left| left < DEADLINE_MARGIN)
        {
            tracing::warn!(
                "too close to the function's deadline to start; the queue will hand it out again"
            );
            let why = "not started: too close to the function's deadline".to_owned();
            return (Settlement::Release, Err(why));
        }
        let body = match self.claims.decode(record.body.as_deref()).await {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!(reason = %e, "message carries no job");
                return (
                    source::after_body_error(&e, 1, &NO_BACKOFF),
                    Err(e.to_string()),
                );
            }
        };
        let outcome = self.run_job(JobRequest::new(body, id), deadline).await;
        (source::after_outcome(&outcome, 1, &NO_BACKOFF), Ok(outcome))
    }

    /// Run a job through the door runtime, its deadline the function's less the margin.
    async fn run_job(&self, mut req: JobRequest, deadline: Deadline) -> JobOutcome {
        if let Some(left) = deadline.time_left(SystemTime::now()) {
            req.deadline = Some(Instant::now() + left.saturating_sub(DEADLINE_MARGIN));
        }
        let id = req.delivery_id.clone();
        let ran = Box::pin(runtime::run_job(
            &self.worker,
            req,
            &self.shutdown,
            &self.rules,
        ))
        .await;
        if ran.stop_taking {
            self.device_broken.store(true, Ordering::Relaxed);
        }
        ran.into_outcome(&id)
    }
}
