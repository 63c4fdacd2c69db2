//! The take loop with one job at a time on the device: take
//! (one job, or a batch when configured), run and settle each, repeat. 204/400 mean no job; 429
//! backs off; other failures back off with doubling pauses instead of spinning. The heartbeat
//! and job-stop poll run beside it. SIGTERM stops taking; the job in flight gets its grace.

use super::done;
use super::inflight::InFlight;
use super::job::{self, Context, Settled};
use super::settings::Settings;
use super::take::{self, Take, TakenJob};
use super::{ping, stop};
use crate::error::{ErrorCode, JobError};
use crate::intake::runpod_protocol::wire;
use crate::job::outcome::JobOutcome;
use crate::worker::Worker;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Shortest time between two job-take calls, so a platform answering "no job" at once (rather
/// than long-polling) is not hammered.
const MIN_TAKE_INTERVAL: Duration = Duration::from_millis(100);

/// Exit status when the worker asked to be replaced (`stopPod`).
pub const EXIT_REPLACE: i32 = 1;

/// Take and run jobs until shutdown (exit 0) or until the device broke (exit 1, after
/// posting the result with `stopPod`).
pub async fn run(worker: Arc<Worker>, settings: Arc<Settings>, shutdown: CancellationToken) -> i32 {
    let ctx = Arc::new(Context {
        worker,
        settings: settings.clone(),
        inflight: InFlight::default(),
        shutdown,
    });
    let background = CancellationToken::new();
    let pinger = ping::spawn(settings.clone(), ctx.inflight.clone(), background.clone());
    let stopper = stop::spawn(settings.clone(), ctx.inflight.clone(), background.clone());
    tracing::info!(worker_id = %settings.worker_id, heartbeat = settings.heartbeat, job_stop = stopper.is_some(), "RunPod worker taking jobs");

    let mut queue: VecDeque<TakenJob> = VecDeque::new();
    let code = take_and_run(&ctx, &mut queue).await;
    for job in queue.drain(..) {
        settle_unstarted(&ctx, job).await;
    }
    background.cancel();
    let _ = pinger.await;
    if let Some(stopper) = stopper {
        let _ = stopper.await;
    }
    tracing::info!(code, "RunPod worker stopped");
    code
}

/// Take jobs and run up to `settings.depth` of them at once (the engine generates one at a
/// time; a second in flight keeps it busy while the first posts and uploads); returns the exit
/// status once shutdown starts or the device broke, after the jobs in flight are settled.
async fn take_and_run(ctx: &Arc<Context>, queue: &mut VecDeque<TakenJob>) -> i32 {
    let mut running: JoinSet<Settled> = JoinSet::new();
    let code = take_loop(ctx, queue, &mut running).await;
    let mut replace = code == EXIT_REPLACE;
    while let Some(done) = running.join_next().await {
        replace |= matches!(done, Ok(Settled::Posted { stop_pod: true, .. }));
    }
    if replace {
        tracing::error!(
            "the device may be unusable: asked RunPod to replace this worker (stopPod); exiting"
        );
        return EXIT_REPLACE;
    }
    code
}

async fn take_loop(
    ctx: &Arc<Context>,
    queue: &mut VecDeque<TakenJob>,
    running: &mut JoinSet<Settled>,
) -> i32 {
    let settings = &ctx.settings;
    let mut failures = 0u32;
    loop {
        while let Some(done) = running.try_join_next() {
            if let Ok(Settled::Posted { stop_pod: true, .. }) = done {
                return EXIT_REPLACE;
            }
        }
        if ctx.shutdown.is_cancelled() {
            return 0;
        }
        if ctx.worker.device_broken() {
            return EXIT_REPLACE;
        }
        if running.len() >= settings.depth {
            tokio::select! {
                done = running.join_next() => {
                    if let Some(Ok(Settled::Posted { stop_pod: true, .. })) = done {
                        return EXIT_REPLACE;
                    }
                }
                _ = ctx.shutdown.cancelled() => return 0,
            }
            continue;
        }
        if let Some(job) = queue.pop_front() {
            let ctx = Arc::clone(ctx);
            running.spawn(async move { job::run(&ctx, job).await });
            continue;
        }
        let url = settings
            .urls
            .take(settings.take_batch, !ctx.inflight.is_empty());
        let started = Instant::now();
        let answer = tokio::select! {
            _ = ctx.shutdown.cancelled() => return 0,
            answer = settings.client.get(&url, settings.take_timeout) => answer,
        };
        let pause = match take::interpret(answer) {
            Take::Jobs(jobs) => {
                failures = 0;
                tracing::info!(count = jobs.len(), "took jobs");
                for job in jobs {
                    ctx.inflight.add(&job.id);
                    queue.push_back(job);
                }
                Duration::ZERO
            }
            Take::NoJob => {
                failures = 0;
                MIN_TAKE_INTERVAL.saturating_sub(started.elapsed())
            }
            Take::Throttled => {
                tracing::warn!(
                    pause_ms = settings.throttle.as_millis() as u64,
                    "job-take throttled (429)"
                );
                settings.throttle
            }
            Take::Failed(error) => {
                failures += 1;
                let pause = done::backoff(settings.error_backoff, failures);
                tracing::warn!(%error, failures, pause_ms = pause.as_millis() as u64, "job-take failed");
                pause
            }
        };
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return 0,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// A job taken in a batch but not started before shutdown: reported as `cancelled`
/// (retryable), so it is not lost silently.
async fn settle_unstarted(ctx: &Context, job: TakenJob) {
    let tracked = ctx.inflight.add(&job.id);
    if !tracked.was_stopped() {
        let error = JobError::new(
            ErrorCode::Cancelled,
            "the worker shut down before the job started; send it again",
        );
        let body = wire::result_body(&JobOutcome::failed(job.id.clone(), error), false);
        let deadline = Instant::now() + ctx.settings.rules.grace.max(Duration::from_secs(5));
        done::post(&ctx.settings, &job.id, &body, deadline).await;
    }
    ctx.inflight.remove(&job.id);
}
