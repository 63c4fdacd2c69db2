//! The RunPod serverless door (`merchgen runpod`), speaking RunPod's worker protocol as
//! runpod-python 1.12 does: `urls` builds the platform URLs,
//! `client` makes the calls with the SDK's headers, `take` reads job-take answers, `source` is
//! the job-take as a `JobSource` (taking, preparing and settling each job), `poll` runs it
//! through the doors' one consumer loop beside the heartbeat, `done` posts results until accepted,
//! `progress` posts denoising steps, `ping` is the heartbeat, `stop` the job-stop long poll,
//! `inflight` tracks taken jobs, `wire` the bodies, `bucket` RunPod's bucket settings, and
//! `test_input` RunPod's `--test_input` mode. Nothing here knows about the device.

pub(crate) mod client;
pub(crate) mod done;
pub(crate) mod inflight;
pub(crate) mod ping;
pub mod poll;
pub(crate) mod progress;
pub mod settings;
pub(crate) mod source;
pub(crate) mod stop;
pub(crate) mod take;
pub(crate) mod test_input;
pub(crate) mod urls;

use crate::app::{self, Door};
use crate::config::{Config, RunpodArgs};
use settings::Settings;
use std::sync::Arc;

/// `merchgen runpod`: the local test when `--test-input` is given or RUNPOD_WEBHOOK_GET_JOB is
/// not set (as the SDK decides), else the worker loop. Returns the exit status.
pub async fn run(config: &Config, args: &RunpodArgs) -> i32 {
    if args.test_input.is_some() || args.job_take_url.as_deref().is_none_or(str::is_empty) {
        return test_input::run(config, args).await;
    }
    let settings = match Settings::platform(config, args) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("merchgen runpod: {e}");
            return 2;
        }
    };
    let shutdown = crate::shutdown::on_signals();
    crate::metrics::serve_on(config.metrics_addr).await;
    app::prewarm_mockups(config);
    tracing::info!(worker_id = %settings.worker_id, "RunPod worker starting: loading the model");
    let engine = tokio::select! {
        _ = shutdown.cancelled() => return 0,
        engine = app::start_engine(config) => engine,
    };
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!(error = %e, "the model could not be loaded");
            ping::report_unhealthy(&settings, "model_load", &e.to_string()).await;
            return 1;
        }
    };
    let destination = config.output.clone().unwrap_or_else(|| "inline".to_owned());
    let worker = match app::build_worker(config, Some(engine), Door::Deployed, destination) {
        Ok(worker) => worker,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot build the worker");
            ping::report_unhealthy(&settings, "worker_start", &format!("{e:#}")).await;
            return 1;
        }
    };
    let worker = Arc::new(worker);
    let grace = settings.rules.grace;
    let code = poll::run(worker.clone(), settings, shutdown).await;
    worker.drain_webhooks(grace).await;
    code
}

/// `merchgen` with no subcommand on RunPod: the door's settings from the environment alone.
pub async fn run_from_env(config: &Config) -> i32 {
    match RunpodArgs::from_env() {
        Ok(args) => run(config, &args).await,
        Err(e) => {
            eprintln!("merchgen: {e}");
            2
        }
    }
}
