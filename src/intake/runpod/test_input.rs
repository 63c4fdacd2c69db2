//! RunPod's local test: `merchgen runpod --test-input '<json>'`, or
//! `./test_input.json` when neither that flag nor RUNPOD_WEBHOOK_GET_JOB is given. The JSON
//! holds `input` (the merchgen job) and optionally `id` (default `local_test`) and `s3Config`.
//! Prints the body job-done would carry; exit 0 on success, 1 on failure. No HTTP, no ping.

use super::settings::Settings;
use crate::app::{self, Door};
use crate::config::{Config, RunpodArgs};
use crate::intake::runpod_protocol::wire;
use crate::job::outcome::JobOutcome;
use crate::worker::JobRequest;
use serde_json::Value;

/// Where the SDK looks for a test job when none is given.
pub(crate) const TEST_INPUT_FILE: &str = "test_input.json";

/// Run one test job and return the exit status.
pub(crate) async fn run(config: &Config, args: &RunpodArgs) -> i32 {
    let test = match read_test_input(args.test_input.as_deref()) {
        Ok(test) => test,
        Err(why) => {
            eprintln!("merchgen runpod: {why}");
            return 1;
        }
    };
    let settings = match Settings::local(config, args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("merchgen runpod: {e}");
            return 2;
        }
    };
    let id = test
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("local_test")
        .to_owned();
    let input = test.get("input").cloned().unwrap_or(Value::Null);
    let outcome = match settings.output_for(test.get("s3Config")).await {
        Ok(output) => run_one(config, input, id, output).await,
        Err(e) => JobOutcome::failed(id, e),
    };
    let body = wire::result_body(&outcome, false);
    println!(
        "{}",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    );
    if outcome.succeeded() {
        0
    } else {
        1
    }
}

async fn run_one(
    config: &Config,
    input: Value,
    id: String,
    output: Option<crate::worker::OutputOverride>,
) -> JobOutcome {
    let generates = input.get("prompt").is_some() || !input.is_object();
    let engine = if generates {
        match app::start_engine(config).await {
            Ok(engine) => Some(engine),
            Err(e) => return JobOutcome::failed(id, e.into()),
        }
    } else {
        None
    };
    let destination = config.output.clone().unwrap_or_else(|| "inline".to_owned());
    let worker = match app::build_worker(config, engine, Door::Deployed, destination) {
        Ok(worker) => worker,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot build the worker");
            return JobOutcome::failed(
                id,
                crate::error::JobError::internal("the worker could not start"),
            );
        }
    };
    let mut req = JobRequest::new(input, id.clone());
    req.output = output;
    let shutdown = tokio_util::sync::CancellationToken::new();
    // The process ends after this one job: its webhooks go out first.
    let mut rules = crate::intake::runtime::RunRules::from_config(config, "runpod");
    rules.await_webhooks = true;
    let ran = Box::pin(crate::intake::runtime::run_job(
        &worker, req, &shutdown, &rules,
    ))
    .await;
    ran.into_outcome(&id)
}

/// The test job: the flag's JSON, else `./test_input.json`; it must be an object with `input`.
fn read_test_input(flag: Option<&str>) -> Result<Value, String> {
    let (text, source) = match flag {
        Some(text) => (text.to_owned(), "--test-input"),
        None => match std::fs::read_to_string(TEST_INPUT_FILE) {
            Ok(text) => (text, TEST_INPUT_FILE),
            Err(_) => {
                return Err(format!(
                    "no --test-input and no ./{TEST_INPUT_FILE} (and RUNPOD_WEBHOOK_GET_JOB is not set, so this is not a RunPod worker)"
                ))
            }
        },
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("{source} is not valid JSON: {e}"))?;
    if value.get("input").is_none() {
        return Err(format!(
            "{source} must be a JSON object with an `input` (the merchgen job)"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_input_needs_input() {
        assert!(read_test_input(Some(r#"{"input": {"prompt": "x"}}"#)).is_ok());
        assert!(read_test_input(Some(r#"{"prompt": "x"}"#))
            .unwrap_err()
            .contains("`input`"));
        assert!(read_test_input(Some("{"))
            .unwrap_err()
            .contains("not valid JSON"));
    }
}
