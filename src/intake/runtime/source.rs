//! The seam for pull-based doors (SQS, the endpoint API's queue, RunPod's job-take): a
//! `JobSource` hands out deliveries (`next`), gives each job its door's settings (`prepare`:
//! cancel flag, deadline, output, progress), is told what became of each (`settle`: ack, retry
//! later, release, dead-letter, with the outcome), and hands back what it took but never handed
//! out once the loop stops (`drain`). Also the one rule that turns an outcome into a settlement,
//! shared by every queue door (SQS here, Lambda's SQS batches).
//!
//! This module knows nothing about a particular queue, the GPU, or how a job runs.

use crate::backoff::Backoff;
use crate::error::JobError;
use crate::job::outcome::JobOutcome;
use crate::worker::JobRequest;
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One message taken from a queue, not yet settled.
#[derive(Debug)]
pub struct Delivery<T> {
    /// The queue's id for the message (SQS `MessageId`); the job's default id.
    pub id: String,
    /// How many times the queue has handed this message out, this time included (1 at first).
    pub(crate) attempt: u32,
    /// When it was received (the job's `timings_ms.queued` starts here).
    pub received: Instant,
    /// The job body, or why this message carries no job.
    pub body: Result<Value, BodyError>,
    /// What the source needs to settle it (receipt handle, heartbeat).
    pub(crate) ticket: T,
}

/// Why a message carries no job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The message can never become a job (not JSON, a claim check to nothing): retrying cannot
    /// help, so it is left to the queue's dead-letter policy, where an operator can see it.
    #[error("not a job: {0}")]
    Poison(String),
    /// The body lives elsewhere (claim check) and could not be read just now.
    #[error("job body unavailable: {0}")]
    Unavailable(String),
}

/// What becomes of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Finished for good (succeeded, or failed in a way retrying cannot fix): remove it.
    Ack,
    /// Failed for now: hand it out again after this delay.
    RetryLater(Duration),
    /// Not finished here (shutdown): hand it out again at once, to another worker.
    Release,
    /// Never a job: leave it alone, so the queue's redrive policy dead-letters it after its
    /// `maxReceiveCount`.
    DeadLetter,
    /// Given up (it hung past its deadline): stop holding it and touch nothing else, so it
    /// comes back only after its visibility timeout and each such return counts toward the
    /// redrive policy's `maxReceiveCount`, after which it is in the dead-letter queue.
    Abandon,
}

impl Settlement {
    /// Short name for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Settlement::Ack => "ack",
            Settlement::RetryLater(_) => "retry_later",
            Settlement::Release => "release",
            Settlement::DeadLetter => "dead_letter",
            Settlement::Abandon => "abandon",
        }
    }
}

/// What became of a delivery, as its source is told.
#[derive(Debug)]
pub struct Settled {
    /// What the queue should do with it.
    pub settlement: Settlement,
    /// The job's outcome (a job given up past its deadline or at shutdown has a `timeout` or
    /// `cancelled` one); `None` when no job ran (released before it started, or no job in it).
    pub outcome: Option<JobOutcome>,
    /// The device may be unusable after this job: the loop takes no more (RunPod asks for the
    /// worker to be replaced in the job's result).
    pub(crate) device_broken: bool,
}

impl Settled {
    /// Settled without a job having run.
    pub(crate) fn without_job(settlement: Settlement) -> Self {
        Settled {
            settlement,
            outcome: None,
            device_broken: false,
        }
    }
}

/// A queue that hands out jobs one delivery at a time.
#[async_trait::async_trait]
pub trait JobSource: Send + Sync + 'static {
    /// What `settle` needs to find the delivery again.
    type Ticket: Send + Sync + 'static;

    /// Wait for the next delivery. `Ok(None)` when none came (an empty long poll) or `stop`
    /// fired; an implementation returns promptly once `stop` fires.
    async fn next(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Delivery<Self::Ticket>>, SourceError>;

    /// Give the delivery's job its door's settings (cancel flag, deadline, output, progress
    /// channel), in the job's own task. An error fails the job without running it (reported and
    /// settled like any failed job). The default runs the body as it came.
    async fn prepare(&self, req: &mut JobRequest, ticket: &Self::Ticket) -> Result<(), JobError> {
        let _ = (req, ticket);
        Ok(())
    }

    /// True when a delivery's retryable failure hands the job out again (so it is announced as
    /// `job.retrying`, its end still to come). The default: a failure is the job's end.
    fn retries_failure(&self, attempt: u32) -> bool {
        let _ = attempt;
        false
    }

    /// True when a delivery is settled only once its job's webhooks went out (delivered or
    /// given up), its pipeline slot free meanwhile: settling removes the delivery for good (an
    /// SQS delete), so a crash before the completion webhook went out must leave it to be
    /// handed out again (its replay re-sends the webhook). The default settles at once.
    fn settles_after_webhooks(&self) -> bool {
        false
    }

    /// Settle a delivery (see [`Settled`]).
    async fn settle(
        &self,
        id: &str,
        ticket: Self::Ticket,
        settled: Settled,
    ) -> Result<(), SourceError>;

    /// Once the loop has stopped: hand back whatever was taken but never handed out (a batch
    /// of jobs taken at once, a queue of waiting jobs). The default holds nothing back.
    async fn drain(&self) {}
}

/// A queue operation that failed. The detail is for logs; it never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("receiving from the queue failed: {0}")]
    Receive(String),
    #[error("settling message {id} ({action}) failed: {detail}")]
    Settle {
        id: String,
        action: &'static str,
        detail: String,
    },
}

/// The settlement a job's outcome calls for: success and failures that retrying cannot fix
/// (invalid input: the worker has already sent the failure webhook) are acknowledged, so they
/// never loop to the dead-letter queue; retryable failures come back after a growing delay.
pub(crate) fn after_outcome(outcome: &JobOutcome, attempt: u32, backoff: &Backoff) -> Settlement {
    match &outcome.error {
        Some(e) if e.retryable => Settlement::RetryLater(backoff.delay(attempt)),
        _ => Settlement::Ack,
    }
}

/// The settlement for a message that carries no job.
pub(crate) fn after_body_error(error: &BodyError, attempt: u32, backoff: &Backoff) -> Settlement {
    match error {
        BodyError::Poison(_) => Settlement::DeadLetter,
        BodyError::Unavailable(_) => Settlement::RetryLater(backoff.delay(attempt)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, JobError};
    use crate::job::JobStatus;

    const BACKOFF: Backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));

    #[test]
    fn after_outcome_acks_success_and_terminal_failures_and_retries_the_rest() {
        let mut ok = JobOutcome::failed("j", JobError::internal("x"));
        ok.status = JobStatus::Succeeded;
        ok.error = None;
        assert_eq!(after_outcome(&ok, 1, &BACKOFF), Settlement::Ack);
        let invalid = JobOutcome::failed("j", JobError::invalid("width", "bad"));
        assert_eq!(after_outcome(&invalid, 1, &BACKOFF), Settlement::Ack);
        let flaky = JobOutcome::failed("j", JobError::new(ErrorCode::InputFetchFailed, "503"));
        assert_eq!(
            after_outcome(&flaky, 2, &BACKOFF),
            Settlement::RetryLater(Duration::from_secs(20))
        );
    }

    #[test]
    fn after_body_error_dead_letters_poison_and_retries_unavailable() {
        let poison = BodyError::Poison("not JSON".into());
        assert_eq!(
            after_body_error(&poison, 1, &BACKOFF),
            Settlement::DeadLetter
        );
        let gone = BodyError::Unavailable("s3 timeout".into());
        assert_eq!(
            after_body_error(&gone, 1, &BACKOFF),
            Settlement::RetryLater(Duration::from_secs(10))
        );
    }
}
