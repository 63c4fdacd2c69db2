//! The Lambda door under the Runtime APIs of local emulators, which differ from Lambda's: a
//! constant `Lambda-Runtime-Deadline-Ms` of 600000 (1970), `AWS_LAMBDA_RUNTIME_API` with a
//! scheme and a base path, no Extensions API. First cargo-lambda's own emulator (`cargo lambda
//! watch --only-lambda-apis`, from PyPI in ./.venv; it builds nothing, merchgen's built binary
//! runs against it), then each difference alone on the fake Runtime API (`support::aws`).

use crate::support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::aws::cargo_lambda::{self, Emulator};
use support::aws::runtime_api::{Options, RuntimeApi};
use support::aws::Merchgen;

/// Short: a tiny-model job answers in a second or two; a hang must fail soon.
const ANSWER: Duration = Duration::from_secs(60);

fn tiny_job(id: &str) -> Value {
    json!({"id": id, "prompt": "a corgi", "width": 64, "height": 64, "num_inference_steps": 1,
           "seed": 5, "output": {"destination": "inline"}})
}

fn start(
    env: HashMap<String, String>,
    extra: &[(&str, &str)],
    dir: &tempfile::TempDir,
) -> Merchgen {
    let mut env = env;
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Merchgen::start(&["lambda"], &env, &dir.path().join("lambda.log"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_lambda_emulator_direct_job_succeeds_despite_its_constant_deadline() {
    let Some(emulator) = Emulator::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lambda = start(emulator.env(), &[], &dir);
    let (status, body) =
        cargo_lambda::invoke(emulator.invoke_url(), tiny_job("emu-direct"), ANSWER).await;
    let logs = lambda.logs();
    assert_eq!(status, 200, "{body}\n{logs}\n{}", emulator.logs());
    let outcome: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(outcome["id"], "emu-direct", "{body}");
    assert_eq!(outcome["status"], "succeeded", "{body}\n{logs}");
    assert!(
        logs.contains("treating it as unknown") && logs.contains("600000"),
        "the absurd deadline is logged: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_lambda_emulator_waiting_invoke_gets_the_init_error() {
    let Some(emulator) = Emulator::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let waiting = tokio::spawn(cargo_lambda::invoke(
        emulator.invoke_url(),
        tiny_job("emu-init"),
        ANSWER,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let missing = dir.path().join("no-model");
    let mut lambda = start(
        emulator.env(),
        &[("MERCHGEN_MODEL", missing.to_str().unwrap())],
        &dir,
    );
    let (_, body) = waiting.await.unwrap();
    let answer: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
    assert_eq!(
        answer["errorType"],
        "merchgen.InitError",
        "{body}\n{}",
        lambda.logs()
    );
    assert_eq!(lambda.exit_code(Duration::from_secs(20)).await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_deadline_header_in_1970_does_not_cancel_the_job() {
    let api = RuntimeApi::start_with(Options {
        constant_deadline_ms: Some(600_000),
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lambda = start(api.env().into_iter().collect(), &[], &dir);
    api.invoke("inv-1970", tiny_job("deadline-1970"));
    let answer = api.answer("inv-1970", ANSWER).await;
    assert_eq!(
        answer.body["status"],
        "succeeded",
        "{}\n{}",
        answer.body,
        lambda.logs()
    );
    assert!(
        lambda.logs().contains("treating it as unknown"),
        "{}",
        lambda.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_short_deadline_ends_a_slow_job_as_timeout_before_lambda_would_kill_it() {
    // Six seconds, three of them kept free to answer: the job gets about three.
    let api = RuntimeApi::start_with(Options {
        timeout: Some(Duration::from_secs(6)),
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let lambda = start(api.env().into_iter().collect(), &[], &dir);
    // Fifty short steps (one 256² image: a fraction of a second each, far past three seconds
    // in all), so the cancelled job stops within a step and the next job, which gets the same
    // three seconds, does not wait behind a long one on a busy machine.
    let slow = json!({"id": "slow-lambda", "prompt": "a slow job", "width": 256, "height": 256,
                      "num_inference_steps": 50, "num_images": 1, "output": {"destination": "inline"}});
    api.invoke("inv-short", slow);
    let answer = api.answer("inv-short", ANSWER).await;
    assert_eq!(answer.kind, "response", "{:?}\n{}", answer, lambda.logs());
    assert_eq!(answer.body["status"], "failed", "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "timeout", "{}", answer.body);
    assert!(
        lambda.logs().contains("reached its deadline"),
        "{}",
        lambda.logs()
    );
    // The environment keeps serving after a timed-out job.
    api.invoke("inv-after", tiny_job("after-timeout"));
    let answer = api.answer("inv-after", ANSWER).await;
    assert_eq!(answer.body["status"], "succeeded", "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_runtime_api_without_extensions_api_serves_jobs_without_graceful_shutdown() {
    let api = RuntimeApi::start_with(Options {
        no_extensions_api: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut lambda = start(api.env().into_iter().collect(), &[], &dir);
    api.invoke("inv-noext", tiny_job("no-extensions"));
    let answer = api.answer("inv-noext", ANSWER).await;
    assert_eq!(
        answer.body["status"],
        "succeeded",
        "{}\n{}",
        answer.body,
        lambda.logs()
    );
    let logs = lambda.logs();
    assert!(logs.contains("running without graceful shutdown"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
    lambda.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_runtime_api_given_with_scheme_gets_the_init_error() {
    let api = RuntimeApi::start_with(Options {
        url_with_scheme: true,
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-model");
    let mut lambda = start(
        api.env().into_iter().collect(),
        &[("MERCHGEN_MODEL", missing.to_str().unwrap())],
        &dir,
    );
    let answer = api.answer("init", Duration::from_secs(30)).await;
    assert_eq!(answer.kind, "init_error");
    assert_eq!(answer.body["errorType"], "merchgen.InitError");
    assert_eq!(lambda.exit_code(Duration::from_secs(20)).await, Some(1));
}
