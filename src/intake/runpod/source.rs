//! RunPod's job-take as a `JobSource`, so taken jobs run through the doors' one consumer loop
//! (`runtime::pull`, up to `MERCHGEN_PIPELINE_DEPTH` in flight, no job taken before a slot is
//! free). `next` hands out a job left from a batch take, else asks the platform (204/400: no
//! job; 429: a pause; other failures: the loop's backoff); `prepare` gives the job its cancel
//! flag (job-stop reaches it), its `policy.executionTimeout`, its bucket and its progress
//! poster; `settle` posts the result until the platform accepts it (with `stopPod` when the
//! device broke), nothing for a job the platform stopped, and a `cancelled` result for a job
//! taken but never started. Jobs of a batch still waiting when the loop stops are reported
//! `cancelled` too (`drain`), so none is lost silently.

use super::done;
use super::inflight::{InFlight, Tracked};
use super::progress;
use super::settings::Settings;
use super::take::{self, Take, TakenJob};
use crate::error::{ErrorCode, JobError};
use crate::intake::runpod_protocol::wire;
use crate::intake::runtime::source::{Delivery, JobSource, Settled, SourceError};
use crate::job::outcome::JobOutcome;
use crate::worker::JobRequest;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Shortest time between two job-take calls, so a platform answering "no job" at once (rather
/// than long-polling) is not hammered.
const MIN_TAKE_INTERVAL: Duration = Duration::from_millis(100);

/// How long the progress poster may take to finish after the job (its posts are bounded too).
const PROGRESS_DRAIN: Duration = Duration::from_secs(5);

/// The platform's jobs, as this worker takes and settles them.
pub(crate) struct RunpodSource {
    settings: Arc<Settings>,
    inflight: InFlight,
    shutdown: CancellationToken,
    /// Jobs taken in a batch, not handed out yet.
    taken: Mutex<VecDeque<TakenJob>>,
}

/// What settling a taken job needs.
pub(crate) struct RunpodTicket {
    tracked: Tracked,
    job: TakenJob,
    /// The job's progress poster, started by `prepare`.
    poster: Mutex<Option<JoinHandle<u32>>>,
}

impl RunpodSource {
    pub(crate) fn new(
        settings: Arc<Settings>,
        inflight: InFlight,
        shutdown: CancellationToken,
    ) -> Self {
        RunpodSource {
            settings,
            inflight,
            shutdown,
            taken: Mutex::default(),
        }
    }

    fn taken(&self) -> std::sync::MutexGuard<'_, VecDeque<TakenJob>> {
        self.taken.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hand out `job`, tracked as in flight (the heartbeat and job-stop see it).
    fn deliver(&self, job: TakenJob) -> Delivery<RunpodTicket> {
        let tracked = self.inflight.add(&job.id);
        Delivery {
            id: job.id.clone(),
            attempt: 1,
            received: Instant::now(),
            body: Ok(job.input.clone()),
            ticket: RunpodTicket {
                tracked,
                job,
                poster: Mutex::default(),
            },
        }
    }

    /// Until when a result may be retried: `MERCHGEN_RUNPOD_DONE_RETRY_SECS`, and no longer
    /// than the settle window once shutdown started (or for a job that never started).
    fn post_deadline(&self, started: bool) -> Instant {
        let now = Instant::now();
        let deadline = now + self.settings.done_retry;
        if self.shutdown.is_cancelled() || !started {
            return deadline.min(now + self.settings.rules.settle_window());
        }
        deadline
    }

    /// Report a job taken but not started as `cancelled` (retryable), unless the platform
    /// stopped it; stop tracking it.
    async fn cancel_unstarted(&self, id: &str, tracked: &Tracked) {
        if !tracked.was_stopped() {
            let error = JobError::new(
                ErrorCode::Cancelled,
                "the worker shut down before the job started; send it again",
            );
            let body = wire::result_body(&JobOutcome::failed(id, error), false);
            done::post(&self.settings, id, &body, self.post_deadline(false)).await;
        }
        self.inflight.remove(id);
    }
}

#[async_trait::async_trait]
impl JobSource for RunpodSource {
    type Ticket = RunpodTicket;

    async fn next(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Delivery<RunpodTicket>>, SourceError> {
        if let Some(job) = self.taken().pop_front() {
            return Ok(Some(self.deliver(job)));
        }
        let settings = &self.settings;
        let url = settings
            .urls
            .take(settings.take_batch, !self.inflight.is_empty());
        let started = Instant::now();
        let answer = tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            answer = settings.client.get(&url, settings.take_timeout) => answer,
        };
        let pause = match take::interpret(answer) {
            Take::Jobs(jobs) => {
                tracing::info!(count = jobs.len(), "took jobs");
                let mut jobs = VecDeque::from(jobs);
                let first = jobs.pop_front().expect("a take holds at least one job");
                // Tracked at once: the heartbeat reports every job taken.
                for job in &jobs {
                    self.inflight.add(&job.id);
                }
                self.taken().extend(jobs);
                return Ok(Some(self.deliver(first)));
            }
            Take::NoJob => MIN_TAKE_INTERVAL.saturating_sub(started.elapsed()),
            Take::Throttled => {
                tracing::warn!(
                    pause_ms = settings.throttle.as_millis() as u64,
                    "job-take throttled (429)"
                );
                settings.throttle
            }
            Take::Failed(error) => return Err(SourceError::Receive(format!("job-take: {error}"))),
        };
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(pause) => {}
        }
        Ok(None)
    }

    async fn prepare(&self, req: &mut JobRequest, ticket: &RunpodTicket) -> Result<(), JobError> {
        if ticket.tracked.was_stopped() {
            tracing::info!("stopped by the platform before it started");
            return Err(JobError::new(
                ErrorCode::Cancelled,
                "stopped by the platform",
            ));
        }
        req.output = self
            .settings
            .output_for(ticket.job.s3_config.as_ref())
            .await?;
        req.cancel = ticket.tracked.cancel.clone();
        req.deadline = ticket.job.execution_timeout.map(|t| req.received + t);
        // Every step is counted (job-stop logs how far the job got); posted only when wanted.
        let wanted = progress::wanted(self.settings.progress, &ticket.job.input);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        req.progress = Some(tx);
        let poster = progress::spawn(self.settings.clone(), ticket.tracked.clone(), rx, wanted);
        *ticket.poster.lock().unwrap_or_else(|p| p.into_inner()) = Some(poster);
        Ok(())
    }

    async fn settle(
        &self,
        id: &str,
        ticket: RunpodTicket,
        settled: Settled,
    ) -> Result<(), SourceError> {
        let RunpodTicket {
            tracked, poster, ..
        } = ticket;
        // Every progress post lands before the result, so the status never steps backwards.
        let poster = poster.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(mut poster) = poster {
            if tokio::time::timeout(PROGRESS_DRAIN, &mut poster)
                .await
                .is_err()
            {
                poster.abort();
            }
        }
        let Some(outcome) = settled.outcome else {
            self.cancel_unstarted(id, &tracked).await;
            return Ok(());
        };
        if tracked.was_stopped() {
            let (steps_done, steps_at_stop) = tracked.steps();
            tracing::info!(
                steps_at_stop,
                steps_done,
                "stopped by the platform; no result is posted"
            );
        } else {
            let body = wire::result_body(&outcome, settled.device_broken);
            done::post(&self.settings, id, &body, self.post_deadline(true)).await;
        }
        self.inflight.remove(id);
        Ok(())
    }

    async fn drain(&self) {
        let left: Vec<TakenJob> = self.taken().drain(..).collect();
        for job in left {
            let tracked = self.inflight.add(&job.id);
            self.cancel_unstarted(&job.id, &tracked).await;
        }
    }
}
