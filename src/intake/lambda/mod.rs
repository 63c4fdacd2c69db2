//! The Lambda door (`merchgen lambda`, or no subcommand under the Lambda Runtime API): the model
//! loads once in the init phase; then `lambda_runtime` 1.x polls for invocations and hands each
//! to `handler::LambdaDoor`. A model that cannot load is reported to `/runtime/init/error`, so
//! Lambda retries the init instead of serving failures. Graceful shutdown is registered (Lambda
//! only sends SIGTERM to runtimes with an extension), and logs are JSON when the function's
//! `LoggingConfig` says so (`AWS_LAMBDA_LOG_FORMAT=json`, see `telemetry`).
//!
//! Push-based: no `JobSource` here; the Lambda service owns the queue and its retries.

pub mod handler;

use crate::app::{self, Door};
use crate::config::Config;
use crate::intake::sqs::claim_check::ClaimCheck;
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
    let door = match init(config).await {
        Ok(door) => Arc::new(door),
        Err(message) => {
            tracing::error!(error = %message, "init failed");
            report_init_error(&message).await;
            return 1;
        }
    };
    lambda_runtime::spawn_graceful_shutdown_handler(|| async {
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

/// The init phase: load the model, build the worker.
async fn init(config: &Config) -> Result<LambdaDoor, String> {
    let engine = app::start_engine(config)
        .await
        .map_err(|e| format!("the model could not be loaded: {e}"))?;
    let destination = config.output.clone().unwrap_or_else(|| "inline".to_owned());
    let worker = app::build_worker(config, Some(engine), Door::Deployed, destination)
        .map_err(|e| format!("{e:#}"))?;
    Ok(LambdaDoor::new(
        worker,
        ClaimCheck::new(config.output_config()),
    ))
}

/// Tell Lambda the init failed (`POST /2018-06-01/runtime/init/error`); best effort.
async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({"errorType": "merchgen.InitError", "errorMessage": message});
    let sent = reqwest::Client::builder().no_proxy().build().map(|c| {
        c.post(format!("http://{api}/2018-06-01/runtime/init/error"))
            .header("Lambda-Runtime-Function-Error-Type", "merchgen.InitError")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    });
    match sent {
        Ok(request) => {
            if let Err(e) = request.await {
                tracing::warn!(error = %e, "could not report the init error to the Runtime API");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not build a client for the Runtime API"),
    }
}
