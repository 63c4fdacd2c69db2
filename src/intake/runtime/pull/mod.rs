//! The consumer loop of every pull-based door (SQS, the endpoint API's queue, RunPod's
//! job-take): up to `depth` jobs at once (the engine thread still generates one at a time, so a
//! second job in flight keeps the device busy while the first one's CPU stages run), with the
//! next delivery prefetched where a receive is slow (`prefetch`: an SQS long poll). Each job gets
//! its door's settings (`JobSource::prepare`), runs through `run::run_job` (deadline, grace,
//! cancel) and is settled by what came of it (see `source`). On the shutdown token it takes no
//! more work, and a job stopped by shutdown, like a delivery received but not started, is
//! released at once; a job given up past its deadline is abandoned (a queue's redrive policy
//! dead-letters it); once the device broke it stops taking work and says so in its report.
//! Whatever the source took but never handed out is drained last.
//!
//! It knows the `JobSource` and `JobRunner` seams; nothing about a queue, a door or the GPU.

use super::run::{self, Ending, GaveUp, Ran, RunRules};
use super::runner::JobRunner;
use super::source::{self, Delivery, JobSource, Settled, Settlement};
use crate::backoff::Backoff;
use crate::worker::JobRequest;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Pauses between failed receives of a queue (an outage must not end the worker, nor spin).
pub const RECEIVE_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(500), Duration::from_secs(32));

/// How the loop behaves.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The door's name in logs (`sqs`, `serve`, `runpod`).
    pub door: &'static str,
    /// Deadline, grace period and wind-down of each job.
    pub rules: RunRules,
    /// Retry delays of retryable failures.
    pub backoff: Backoff,
    /// Pauses after failed receives.
    pub receive_backoff: Backoff,
    /// Jobs in flight at most (`MERCHGEN_PIPELINE_DEPTH`): with 2, the engine generates the next
    /// job while the last one renders mockups, encodes and uploads; 1 runs one job at a time.
    pub depth: usize,
    /// Receive the next delivery while `depth` jobs run (a slow long poll never keeps the
    /// device waiting), rather than once a job slot is free (a source that hands a job out
    /// marks it taken, so it should not take one it cannot start).
    pub prefetch: bool,
}

/// What the loop did, for its last log line and for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PullReport {
    pub jobs: u64,
    pub acked: u64,
    pub retried: u64,
    pub released: u64,
    pub dead_lettered: u64,
    pub(crate) abandoned: u64,
    pub(crate) settle_errors: u64,
    /// The loop stopped because the device may be unusable (the door exits non-zero).
    pub(crate) device_broken: bool,
}

/// Consume `source` until `stop` fires, then wind down as described in the module header.
pub async fn run<S: JobSource>(
    source: Arc<S>,
    runner: Arc<dyn JobRunner>,
    stop: CancellationToken,
    opts: PullOptions,
) -> PullReport {
    let depth = opts.depth.max(1);
    let prefetch = opts.prefetch;
    let shared = Arc::new(Consumer {
        source: Arc::clone(&source),
        runner,
        stop: stop.clone(),
        opts,
        device_broken: AtomicBool::new(false),
    });
    let mut report = PullReport::default();
    // Jobs whose slot is free may still be waiting for their webhooks before they are settled.
    let mut running: JoinSet<PullReport> = JoinSet::new();
    let slots = Arc::new(Semaphore::new(depth));
    let mut pending = prefetch.then(|| receive(&shared));
    loop {
        // At most `depth` jobs at once: wait for a slot, counting jobs as they end.
        let slot = loop {
            tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => break slot,
                Some(done) = running.join_next(), if !running.is_empty() => collect(&mut report, Some(done)),
            }
        };
        let Ok(slot) = slot else { break };
        report.device_broken |= shared.device_broken.load(Ordering::SeqCst);
        if report.device_broken || stop.is_cancelled() {
            break;
        }
        let mut handle = pending.take().unwrap_or_else(|| receive(&shared));
        // Receive, while finished jobs are counted as they end.
        let delivery = loop {
            tokio::select! {
                delivery = &mut handle => break received(delivery),
                Some(done) = running.join_next(), if !running.is_empty() => collect(&mut report, Some(done)),
            }
        };
        let Some(delivery) = delivery else {
            break;
        };
        if stop.is_cancelled() || report.device_broken {
            report.add(shared.release(delivery).await);
            break;
        }
        // Receive the next delivery while this job runs, so the GPU never waits on a poll.
        pending = prefetch.then(|| receive(&shared));
        let job = Arc::clone(&shared);
        running.spawn(async move { job.process(delivery, slot).await });
    }
    // Jobs still running finish (or wind down at shutdown) and are settled.
    while let Some(done) = running.join_next().await {
        collect(&mut report, Some(done));
    }
    // A delivery prefetched while the last job ran goes straight back.
    if let Some(handle) = pending {
        if let Some(delivery) = join(handle).await {
            report.add(shared.release(delivery).await);
        }
    }
    source.drain().await;
    tracing::info!(
        door = shared.opts.door,
        jobs = report.jobs,
        acked = report.acked,
        retried = report.retried,
        released = report.released,
        dead_lettered = report.dead_lettered,
        abandoned = report.abandoned,
        device_broken = report.device_broken,
        "consumer stopped"
    );
    report
}

/// Count a finished job, and hand the memory its buffers held back to the system.
fn collect(report: &mut PullReport, done: Option<Result<PullReport, tokio::task::JoinError>>) {
    if done.is_some() {
        crate::memory::release();
    }
    match done {
        Some(Ok(one)) => report.add(one),
        Some(Err(e)) => tracing::error!(error = %e, "a job task failed"),
        None => {}
    }
}

impl PullReport {
    fn add(&mut self, other: PullReport) {
        self.jobs += other.jobs;
        self.acked += other.acked;
        self.retried += other.retried;
        self.released += other.released;
        self.dead_lettered += other.dead_lettered;
        self.abandoned += other.abandoned;
        self.settle_errors += other.settle_errors;
        self.device_broken |= other.device_broken;
    }
}

/// What processing and settling a delivery needs; shared by the jobs in flight.
struct Consumer<S: JobSource> {
    source: Arc<S>,
    runner: Arc<dyn JobRunner>,
    stop: CancellationToken,
    opts: PullOptions,
    /// Set as soon as a job reports a broken device (before it is settled).
    device_broken: AtomicBool,
}

impl<S: JobSource> Consumer<S> {
    /// Run one delivery's job (or judge its body) and settle it, inside the delivery's span;
    /// returns what it did. The job's `slot` is given back once it ran, before its settlement
    /// waits for its webhooks (see `JobSource::settles_after_webhooks`).
    async fn process(
        &self,
        delivery: Delivery<S::Ticket>,
        slot: OwnedSemaphorePermit,
    ) -> PullReport {
        let mut report = PullReport::default();
        let span = tracing::info_span!("delivery", door = self.opts.door, message_id = %delivery.id, attempt = delivery.attempt);
        let Delivery {
            id,
            attempt,
            received,
            body,
            ticket,
        } = delivery;
        let settled = match body {
            Ok(body) => {
                let mut req = JobRequest::new(body, id.clone());
                req.received = received;
                req.attempt = attempt;
                req.retried_on_failure = self.source.retries_failure(attempt);
                report.jobs += 1;
                self.run(req, &ticket, attempt)
                    .instrument(span.clone())
                    .await
            }
            Err(e) => {
                tracing::warn!(parent: &span, reason = %e, "message carries no job");
                Settled::without_job(source::after_body_error(&e, attempt, &self.opts.backoff))
            }
        };
        report.device_broken |= settled.device_broken;
        if settled.device_broken {
            self.device_broken.store(true, Ordering::SeqCst);
        }
        let waits_for_webhooks = self.source.settles_after_webhooks();
        if let Some(outcome) = settled.outcome.as_ref().filter(|_| waits_for_webhooks) {
            // The next job may run while this one's webhooks go out.
            drop(slot);
            self.webhooks_out(&outcome.id)
                .instrument(span.clone())
                .await;
        }
        self.settle(&id, ticket, settled, &mut report)
            .instrument(span)
            .await;
        report
    }

    /// Wait until job `job_id`'s webhooks went out, at most `WEBHOOK_WAIT` (and at most the
    /// grace period once shutdown starts).
    async fn webhooks_out(&self, job_id: &str) {
        let limit = if self.stop.is_cancelled() {
            self.opts.rules.grace
        } else {
            run::WEBHOOK_WAIT
        };
        let settled = tokio::select! {
            settled = self.runner.webhooks_settled(job_id, limit) => settled,
            () = async {
                self.stop.cancelled().await;
                tokio::time::sleep(self.opts.rules.grace).await;
            } => false,
        };
        if !settled {
            tracing::warn!(
                job_id,
                "webhook deliveries still pending; settling the job anyway"
            );
        }
    }

    /// Prepare and run one job; what became of it.
    async fn run(&self, mut req: JobRequest, ticket: &S::Ticket, attempt: u32) -> Settled {
        let id = req.delivery_id.clone();
        if let Err(e) = self.source.prepare(&mut req, ticket).await {
            tracing::warn!(code = %e.code, message = %e.message, "the delivery cannot run");
            let outcome = crate::job::outcome::JobOutcome::failed(id, e);
            return Settled {
                settlement: source::after_outcome(&outcome, attempt, &self.opts.backoff),
                outcome: Some(outcome),
                device_broken: false,
            };
        }
        // Boxed: the pipeline's future is deep.
        let ran = Box::pin(run::run_job(
            self.runner.as_ref(),
            req,
            &self.stop,
            &self.opts.rules,
        ))
        .await;
        let settlement = settlement_after(&ran, attempt, &self.opts.backoff);
        Settled {
            settlement,
            device_broken: ran.stop_taking,
            outcome: Some(ran.into_outcome(&id)),
        }
    }

    /// Hand a delivery back at once (shutdown, or the device broke).
    async fn release(&self, delivery: Delivery<S::Ticket>) -> PullReport {
        let mut report = PullReport::default();
        let span =
            tracing::info_span!("delivery", door = self.opts.door, message_id = %delivery.id);
        let settled = Settled::without_job(Settlement::Release);
        self.settle(&delivery.id, delivery.ticket, settled, &mut report)
            .instrument(span)
            .await;
        report
    }

    async fn settle(&self, id: &str, ticket: S::Ticket, settled: Settled, report: &mut PullReport) {
        let settlement = settled.settlement;
        let delay_secs = match settlement {
            Settlement::RetryLater(d) => Some(d.as_secs()),
            _ => None,
        };
        if let Err(e) = self.source.settle(id, ticket, settled).await {
            // Not fatal: the message reappears after its visibility timeout, and a job that
            // already succeeded is answered from its result.json.
            report.settle_errors += 1;
            tracing::error!(settlement = settlement.as_str(), error = %e, "could not settle the delivery");
            return;
        }
        tracing::info!(settlement = settlement.as_str(), delay_secs, "settled");
        let count = match settlement {
            Settlement::Ack => &mut report.acked,
            Settlement::RetryLater(_) => &mut report.retried,
            Settlement::Release => &mut report.released,
            Settlement::DeadLetter => &mut report.dead_lettered,
            Settlement::Abandon => &mut report.abandoned,
        };
        *count += 1;
    }
}

/// Receive in the background until a delivery arrives or `stop` fires (then `None`). Receive
/// errors are logged and retried with the receive backoff: an outage must not end the worker.
fn receive<S: JobSource>(consumer: &Arc<Consumer<S>>) -> JoinHandle<Option<Delivery<S::Ticket>>> {
    let (source, stop) = (Arc::clone(&consumer.source), consumer.stop.clone());
    let backoff = consumer.opts.receive_backoff;
    tokio::spawn(async move {
        let mut failures: u32 = 0;
        while !stop.is_cancelled() {
            match source.next(&stop).await {
                Ok(Some(delivery)) => return Some(delivery),
                Ok(None) => failures = 0,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff.delay(failures);
                    tracing::warn!(error = %e, failures, retry_in_ms = wait.as_millis() as u64, "receive failed");
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
    received(handle.await)
}

/// The delivery of a finished receive task (none when the task failed, logged).
fn received<T>(joined: Result<Option<T>, tokio::task::JoinError>) -> Option<T> {
    joined.unwrap_or_else(|e| {
        tracing::error!(error = %e, "the receive task failed");
        None
    })
}

/// The settlement of a delivery whose job ran.
fn settlement_after(ran: &Ran, attempt: u32, backoff: &Backoff) -> Settlement {
    match &ran.ending {
        Ending::Finished(outcome) => match source::after_outcome(outcome, attempt, backoff) {
            // A job stopped by shutdown goes to another worker now, not after a retry delay.
            Settlement::RetryLater(_) if ran.shutting_down => Settlement::Release,
            settlement => settlement,
        },
        Ending::GaveUp(GaveUp::Shutdown) => Settlement::Release,
        Ending::GaveUp(GaveUp::Deadline) => Settlement::Abandon,
    }
}

#[cfg(test)]
mod tests;
