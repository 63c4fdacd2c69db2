//! One SQS event batch, as Lambda delivers it and as `merchgen invoke` runs a sample of one:
//! record by record, each body decoded on its own (claim checks included, so one bad message
//! fails alone), each job run through the door runtime under the function's deadline less a
//! margin, and each record settled by the queue doors' one rule (`runtime::source`). Records not
//! started before the deadline are released for the queue to hand out again. The Lambda door
//! answers `batchItemFailures` from the results; `invoke` prints them.

use crate::backoff::Backoff;
use crate::intake::claim_check::ClaimCheck;
use crate::intake::runtime::source::{self, Settlement};
use crate::intake::runtime::{self, RunRules};
use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};
use aws_lambda_events::event::sqs::SqsMessage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Time kept free before the function's deadline to finish a cancelled job and answer.
const DEADLINE_MARGIN: Duration = Duration::from_secs(3);

/// The queue's redelivery delay is its own; this only satisfies `after_outcome`.
const NO_BACKOFF: Backoff = Backoff::NONE;

/// What became of one record of an SQS batch.
#[derive(Debug)]
pub(crate) struct RecordResult {
    pub message_id: String,
    pub settlement: Settlement,
    /// The job's outcome, or why no job ran (a poison message, a claim check not readable now,
    /// the deadline too near).
    pub outcome: Result<JobOutcome, String>,
}

impl RecordResult {
    /// Listed in `batchItemFailures`: everything the queue must hand out again (retryable
    /// failures, records not started) or dead-letter through its redrive policy (poison).
    pub(crate) fn reported_as_failure(&self) -> bool {
        self.settlement != Settlement::Ack
    }
}

/// Runs jobs under a function's deadline: one direct job, or an SQS batch's records.
pub(crate) struct BatchRunner {
    worker: Worker,
    claims: ClaimCheck,
    rules: RunRules,
    /// No shutdown signal reaches a job here (Lambda freezes or stops the environment);
    /// never cancelled.
    shutdown: CancellationToken,
    device_broken: AtomicBool,
    /// The queue's `maxReceiveCount` (`MERCHGEN_SQS_MAX_RECEIVES`), for SQS records.
    pub(crate) max_receives: Option<u32>,
}

impl BatchRunner {
    pub(crate) fn new(worker: Worker, claims: ClaimCheck, rules: RunRules) -> Self {
        BatchRunner {
            worker,
            claims,
            rules,
            shutdown: CancellationToken::new(),
            device_broken: AtomicBool::new(false),
            max_receives: None,
        }
    }

    /// True once a job left the device possibly unusable.
    pub(crate) fn device_broken(&self) -> bool {
        self.device_broken.load(Ordering::Relaxed)
    }

    /// Handle an SQS batch record by record, in order, before `deadline` (`None`: unknown).
    /// Records without a `messageId` cannot be reported either way and are skipped (logged).
    pub(crate) async fn records(
        &self,
        records: Vec<SqsMessage>,
        deadline: Option<Instant>,
    ) -> Vec<RecordResult> {
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
                .record(record, &id, attempt, deadline)
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
        attempt: u32,
        deadline: Option<Instant>,
    ) -> (Settlement, Result<JobOutcome, String>) {
        if deadline.is_some_and(|d| d.saturating_duration_since(Instant::now()) < DEADLINE_MARGIN) {
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
        let mut req = JobRequest::new(body, id);
        req.attempt = attempt;
        // SQS hands a failed record out again until the queue's maxReceiveCount.
        req.retried_on_failure = self.max_receives.is_none_or(|max| attempt < max);
        let outcome = self.run_job(req, deadline).await;
        (source::after_outcome(&outcome, 1, &NO_BACKOFF), Ok(outcome))
    }

    /// Run a job through the door runtime, its deadline the function's (`None`: unknown) less
    /// the margin.
    pub(crate) async fn run_job(
        &self,
        mut req: JobRequest,
        deadline: Option<Instant>,
    ) -> JobOutcome {
        if let Some(at) = deadline {
            let left = at.saturating_duration_since(Instant::now());
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
