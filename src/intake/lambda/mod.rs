//! The Lambda door (`merchgen lambda`, or no subcommand under the Lambda Runtime API): the model
//! loads once in the init phase; then `lambda_runtime` 1.x polls for invocations and hands each
//! to `handler::LambdaDoor`. A model that cannot load is reported to `/runtime/init/error`, so
//! Lambda retries the init instead of serving failures. Graceful shutdown is registered when the
//! Runtime API has an Extensions API (Lambda only sends SIGTERM to runtimes with an extension;
//! `runtime_api`), and logs are JSON when the function's `LoggingConfig` says so
//! (`AWS_LAMBDA_LOG_FORMAT=json`, see `telemetry`).
//!
//! With `MERCHGEN_MODEL=none` no model is loaded (a CPU function: mockup-only and print-file
//! jobs); generation jobs then fail with `model_unavailable`, not retryable, so that they are
//! routed to a GPU queue rather than cycled through this one.
//!
//! Push-based: no `JobSource` here; the Lambda service owns the queue and its retries.

pub(crate) mod deadline;
pub(crate) mod handler;
pub(crate) mod runtime_api;

use crate::app::{self, Door};
use crate::config::Config;
use crate::intake::claim_check::ClaimCheck;
use crate::intake::runtime::RunRules;
use crate::intake::sqs_batch::BatchRunner;
use handler::LambdaDoor;
use std::sync::Arc;

/// Variables `lambda_runtime` needs (it panics without them).
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

/// Run as a Lambda function until the environment is shut down. Returns the exit code.
pub async fn run(config: &Config) -> i32 {
    if let Some(missing) = RUNTIME_VARS.iter().find(|v| std::env::var_os(v).is_none()) {
        eprintln!("merchgen lambda: {missing} is not set; this door runs under the Lambda Runtime API (locally: `cargo lambda watch`, or `merchgen invoke FILE`)");
        return 2;
    }
    crate::metrics::serve_on(config.metrics_addr).await;
    app::prewarm_mockups(config);
    let door = match init(config).await {
        Ok(door) => Arc::new(door),
        Err(message) => {
            tracing::error!(error = %message, "init failed");
            runtime_api::report_init_error(&message).await;
            return 1;
        }
    };
    runtime_api::graceful_shutdown(|| async {
        tracing::info!("Lambda is shutting this environment down");
    })
    .await;
    let handler = lambda_runtime::service_fn(move |event| {
        let door = Arc::clone(&door);
        async move { door.handle(event).await }
    });
    match lambda_runtime::run(handler).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = %e, "the Lambda runtime loop ended");
            1
        }
    }
}

/// The init phase: load the model (none under `MERCHGEN_MODEL=none`), build the worker.
async fn init(config: &Config) -> Result<LambdaDoor, String> {
    let engine = app::start_engine_unless_none(config)
        .await
        .map_err(|e| format!("the model could not be loaded: {e}"))?;
    let destination = config.output.clone().unwrap_or_else(|| "inline".to_owned());
    let worker = app::build_worker(config, engine, Door::Deployed, destination)
        .map_err(|e| format!("{e:#}"))?;
    let mut runner = BatchRunner::new(
        worker,
        ClaimCheck::new(config.s3_settings(), config.limits().input_s3_allow),
        RunRules::from_config(config, "lambda"),
    );
    runner.max_receives = config.sqs_max_receives;
    Ok(LambdaDoor::new(runner))
}
