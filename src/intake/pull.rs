//! The consumer loop of every pull-based door: one job at a time with the next delivery
//! prefetched, each delivery settled by its outcome (see `source`), and a graceful stop: on the
//! shutdown token it takes no more work, lets the job in flight finish within the grace period,
//! otherwise cancels it and releases its message at once, and releases a prefetched one too.
//!
//! It knows the `JobSource` seam and `Worker::handle`; nothing about SQS or the GPU.

use super::source::{self, Backoff, Delivery, JobSource, Settlement};
use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How the loop behaves.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The door's name in logs (`sqs`).
    pub door: &'static str,
    /// Time the job in flight gets to finish after the shutdown token fires.
    pub grace: Duration,
    /// After the grace period the job is cancelled; time it gets to stop (at the next
    /// denoising step) before its message is released anyway.
    pub wind_down: Duration,
    /// Retry delays of retryable failures.
    pub backoff: Backoff,
}

/// What the loop did, for its last log line and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PullReport {
    pub jobs: u64,
    pub acked: u64,
    pub retried: u64,
    pub released: u64,
    pub dead_lettered: u64,
    pub settle_errors: u64,
}

/// Consume `source` until `stop` fires, then wind down as described in the module header.
pub async fn run<S: JobSource>(
    source: Arc<S>,
    worker: Arc<Worker>,
    stop: CancellationToken,
    opts: PullOptions,
) -> PullReport {
    let mut consumer = Consumer {
        source: Arc::clone(&source),
        worker,
        stop: stop.clone(),
        opts,
        report: PullReport::default(),
    };
    let mut pending = Some(prefetch(Arc::clone(&source), stop.clone()));
    while let Some(handle) = pending.take() {
        let Some(delivery) = join(handle).await else {
            break;
        };
        if stop.is_cancelled() {
            consumer.release(delivery).await;
            break;
        }
        // Receive the next message while this job runs, so the GPU never waits on a poll.
        pending = Some(prefetch(Arc::clone(&source), stop.clone()));
        consumer.process(delivery).await;
        if stop.is_cancelled() {
            break;
        }
    }
    // A message prefetched while the last job ran goes straight back to the queue.
    if let Some(handle) = pending {
        if let Some(delivery) = join(handle).await {
            consumer.release(delivery).await;
        }
    }
    let report = consumer.report;
    tracing::info!(
        door = consumer.opts.door,
        jobs = report.jobs,
        acked = report.acked,
        retried = report.retried,
        released = report.released,
        dead_lettered = report.dead_lettered,
        "consumer stopped"
    );
    report
}

/// What processing and settling a delivery needs.
struct Consumer<S: JobSource> {
    source: Arc<S>,
    worker: Arc<Worker>,
    stop: CancellationToken,
    opts: PullOptions,
    report: PullReport,
}

impl<S: JobSource> Consumer<S> {
    /// Run one delivery's job (or judge its body) and settle it, inside the delivery's span.
    async fn process(&mut self, delivery: Delivery<S::Ticket>) {
        let span = tracing::info_span!("delivery", door = self.opts.door, message_id = %delivery.id, attempt = delivery.attempt);
        let Delivery {
            id,
            attempt,
            received,
            body,
            ticket,
        } = delivery;
        let settlement = match body {
            Ok(body) => {
                let mut req = JobRequest::new(body, id.clone());
                req.received = received;
                self.report.jobs += 1;
                run_job(&self.worker, req, attempt, &self.stop, &self.opts)
                    .instrument(span.clone())
                    .await
            }
            Err(e) => {
                tracing::warn!(parent: &span, reason = %e, "message carries no job");
                source::after_body_error(&e, attempt, &self.opts.backoff)
            }
        };
        self.settle(&id, ticket, settlement).instrument(span).await;
    }

    /// Hand a delivery back at once (shutdown).
    async fn release(&mut self, delivery: Delivery<S::Ticket>) {
        let span =
            tracing::info_span!("delivery", door = self.opts.door, message_id = %delivery.id);
        self.settle(&delivery.id, delivery.ticket, Settlement::Release)
            .instrument(span)
            .await;
    }

    async fn settle(&mut self, id: &str, ticket: S::Ticket, settlement: Settlement) {
        let delay_secs = match settlement {
            Settlement::RetryLater(d) => Some(d.as_secs()),
            _ => None,
        };
        if let Err(e) = self.source.settle(id, ticket, settlement).await {
            // Not fatal: the message reappears after its visibility timeout, and a job that
            // already succeeded is answered from its result.json.
            self.report.settle_errors += 1;
            tracing::error!(settlement = settlement.as_str(), error = %e, "could not settle the message");
            return;
        }
        tracing::info!(settlement = settlement.as_str(), delay_secs, "settled");
        let count = match settlement {
            Settlement::Ack => &mut self.report.acked,
            Settlement::RetryLater(_) => &mut self.report.retried,
            Settlement::Release => &mut self.report.released,
            Settlement::DeadLetter => &mut self.report.dead_lettered,
        };
        *count += 1;
    }
}

/// Receive in the background until a delivery arrives or `stop` fires (then `None`). Receive
/// errors are logged and retried with a capped backoff: a queue outage must not end the worker.
fn prefetch<S: JobSource>(
    source: Arc<S>,
    stop: CancellationToken,
) -> JoinHandle<Option<Delivery<S::Ticket>>> {
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            match source.next(&stop).await {
                Ok(Some(delivery)) => return Some(delivery),
                Ok(None) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = Duration::from_millis(250u64 << failures.min(7));
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "receive failed");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = stop.cancelled() => {}
                    }
                }
            }
        }
        None
    })
}

async fn join<T>(handle: JoinHandle<Option<T>>) -> Option<T> {
    handle.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the receive task failed");
        None
    })
}

/// Run one job; on shutdown give it the grace period, then cancel it.
async fn run_job(
    worker: &Worker,
    req: JobRequest,
    attempt: u32,
    stop: &CancellationToken,
    opts: &PullOptions,
) -> Settlement {
    let cancel = Arc::clone(&req.cancel);
    let job = worker.handle(req);
    tokio::pin!(job);
    let outcome = tokio::select! {
        outcome = &mut job => outcome,
        () = stop.cancelled() => match wind_down(job, &cancel, opts).await {
            Some(outcome) => outcome,
            None => return Settlement::Release,
        },
    };
    match source::after_outcome(&outcome, attempt, &opts.backoff) {
        // A job stopped by shutdown goes to another worker now, not after a retry delay.
        Settlement::RetryLater(_) if stop.is_cancelled() => Settlement::Release,
        settlement => settlement,
    }
}

/// The shutdown path of a running job: `None` when it did not even stop after cancelling.
async fn wind_down(
    mut job: std::pin::Pin<&mut impl Future<Output = JobOutcome>>,
    cancel: &AtomicBool,
    opts: &PullOptions,
) -> Option<JobOutcome> {
    tracing::info!(
        grace_secs = opts.grace.as_secs(),
        "shutdown: letting the job in flight finish"
    );
    if let Ok(outcome) = tokio::time::timeout(opts.grace, job.as_mut()).await {
        return Some(outcome);
    }
    tracing::warn!("grace period over: cancelling the job in flight and releasing its message");
    cancel.store(true, Ordering::Relaxed);
    tokio::time::timeout(opts.wind_down, job).await.ok()
}
