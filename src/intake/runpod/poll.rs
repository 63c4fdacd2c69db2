//! The RunPod worker loop: the heartbeat and the job-stop poll beside the doors' one consumer
//! loop over the platform's job-take (`source`). SIGTERM stops taking; the jobs in flight get
//! their grace. Once the device broke, the job's result asks RunPod to replace this worker
//! (`stopPod`) and the door exits 1.

use super::inflight::InFlight;
use super::settings::Settings;
use super::source::RunpodSource;
use super::{ping, stop};
use crate::backoff::Backoff;
use crate::intake::runtime::pull::{self, PullOptions};
use crate::worker::Worker;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Exit status when the worker asked to be replaced (`stopPod`).
pub const EXIT_REPLACE: i32 = 1;

/// Take and run jobs until shutdown (exit 0) or until the device broke (exit 1, after
/// posting the result with `stopPod`).
pub async fn run(worker: Arc<Worker>, settings: Arc<Settings>, shutdown: CancellationToken) -> i32 {
    let inflight = InFlight::default();
    let background = CancellationToken::new();
    let pinger = ping::spawn(settings.clone(), inflight.clone(), background.clone());
    let stopper = stop::spawn(settings.clone(), inflight.clone(), background.clone());
    tracing::info!(worker_id = %settings.worker_id, heartbeat = settings.heartbeat, job_stop = stopper.is_some(), "RunPod worker taking jobs");
    let source = Arc::new(RunpodSource::new(
        settings.clone(),
        inflight,
        shutdown.clone(),
    ));
    let options = PullOptions {
        door: "runpod",
        rules: settings.rules,
        // The platform retries (or not) a failed job itself.
        backoff: Backoff::NONE,
        receive_backoff: settings.error_backoff(),
        depth: settings.depth,
        prefetch: false,
    };
    let report = pull::run(source, worker, shutdown, options).await;
    background.cancel();
    let _ = pinger.await;
    if let Some(stopper) = stopper {
        let _ = stopper.await;
    }
    let code = if report.device_broken {
        tracing::error!(
            "the device may be unusable: asked RunPod to replace this worker (stopPod); exiting"
        );
        EXIT_REPLACE
    } else {
        0
    };
    tracing::info!(code, "RunPod worker stopped");
    code
}
