//! One taken job, start to settlement: the `JobRequest` (cancel flag, progress channel, the
//! job's bucket, its `policy.executionTimeout` as deadline), the run through the door runtime
//! (deadline, shutdown grace period), then the result post, with `stopPod` when the device
//! broke. A job the platform stopped (job-stop) ends within one denoising step and posts
//! nothing, as the SDK does.

use super::done;
use super::inflight::{InFlight, Tracked};
use super::progress;
use super::settings::Settings;
use super::take::TakenJob;
use crate::intake::runpod_protocol::wire;
use crate::intake::runtime;
use crate::job::outcome::JobOutcome;
use crate::worker::{JobRequest, Worker};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How long the progress poster may take to finish after the job (its posts are bounded too).
const PROGRESS_DRAIN: Duration = Duration::from_secs(5);

/// What the door shares with each job.
pub struct Context {
    pub worker: Arc<Worker>,
    pub settings: Arc<Settings>,
    pub inflight: InFlight,
    pub shutdown: CancellationToken,
}

/// How a job was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The result was posted (`accepted`: the platform took it); `stop_pod` was asked for.
    Posted { accepted: bool, stop_pod: bool },
    /// The platform stopped the job; nothing was posted.
    Stopped,
}

/// Run one job and settle it.
pub async fn run(ctx: &Context, job: TakenJob) -> Settled {
    let tracked = ctx.inflight.add(&job.id);
    let span = tracing::info_span!("runpod_job", job_id = %job.id);
    let settled = settle(ctx, job, &tracked).instrument(span).await;
    ctx.inflight.remove(&tracked.id);
    settled
}

async fn settle(ctx: &Context, job: TakenJob, tracked: &Tracked) -> Settled {
    if tracked.was_stopped() {
        tracing::info!("stopped by the platform before it started");
        return Settled::Stopped;
    }
    let (outcome, stop_pod) = execute(ctx, job, tracked).await;
    if tracked.was_stopped() {
        let (steps_done, steps_at_stop) = tracked.steps();
        tracing::info!(
            steps_at_stop,
            steps_done,
            "stopped by the platform; no result is posted"
        );
        return Settled::Stopped;
    }
    let body = wire::result_body(&outcome, stop_pod);
    let mut deadline = Instant::now() + ctx.settings.done_retry;
    if ctx.shutdown.is_cancelled() {
        deadline =
            deadline.min(Instant::now() + ctx.settings.rules.grace.max(Duration::from_secs(5)));
    }
    let accepted = done::post(&ctx.settings, &tracked.id, &body, deadline).await;
    Settled::Posted { accepted, stop_pod }
}

/// Build the request, run it through the door runtime, drain progress. Also whether the device
/// broke (the door then asks for this worker to be replaced).
async fn execute(ctx: &Context, job: TakenJob, tracked: &Tracked) -> (JobOutcome, bool) {
    let output = match ctx.settings.output_for(job.s3_config.as_ref()).await {
        Ok(output) => output,
        Err(e) => return (JobOutcome::failed(job.id, e), false),
    };
    let wants_progress = progress::wanted(ctx.settings.progress, &job.input);
    let id = job.id.clone();
    let mut req = JobRequest::new(job.input, job.id);
    req.cancel = tracked.cancel.clone();
    req.output = output;
    req.deadline = job.execution_timeout.map(|t| req.received + t);
    // Every step is counted (job-stop logs how far the job got); posted only when wanted.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    req.progress = Some(tx);
    let poster = progress::spawn(ctx.settings.clone(), tracked.clone(), rx, wants_progress);
    // Boxed: the pipeline's future is deep, and nesting it in the door's would overflow the
    // compiler's layout depth for every crate that awaits the door.
    let ran = Box::pin(runtime::run_job(
        ctx.worker.as_ref(),
        req,
        &ctx.shutdown,
        &ctx.settings.rules,
    ))
    .await;
    // Every progress post lands before the result, so the status never steps backwards.
    let mut poster = poster;
    if tokio::time::timeout(PROGRESS_DRAIN, &mut poster)
        .await
        .is_err()
    {
        poster.abort();
    }
    let stop_pod = ran.stop_taking;
    (ran.into_outcome(&id), stop_pod)
}
