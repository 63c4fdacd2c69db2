//! The Lambda door through the real `lambda_runtime` loop of the real binary, driven by a fake
//! Runtime API on loopback (`support::aws::runtime_api`): SQS batches answer `batchItemFailures`
//! with exactly the records to hand out again, a direct invocation returns the outcome, the model
//! loads once at init, an init failure is reported to `/init/error`, SIGTERM shuts down cleanly.

use crate::support;

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::aws::runtime_api::RuntimeApi;
use support::aws::{peers, Merchgen};

const ANSWER: Duration = Duration::from_secs(120);

fn record(id: &str, body: &str, receive_count: u32) -> Value {
    json!({"messageId": id, "receiptHandle": format!("rh-{id}"), "body": body,
           "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
           "messageAttributes": {}, "eventSource": "aws:sqs",
           "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1"})
}

fn failure_ids(answer: &Value) -> HashSet<String> {
    answer["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {answer}"))
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect()
}

fn start_lambda(
    api: &RuntimeApi,
    out: &str,
    extra: &[(&str, &str)],
    logs: &std::path::Path,
) -> Merchgen {
    let mut env: HashMap<String, String> = api.env().into_iter().collect();
    env.insert("MERCHGEN_OUTPUT".into(), out.into());
    // As deployed: the format follows the function's LoggingConfig (AWS_LAMBDA_LOG_FORMAT=json).
    env.insert("MERCHGEN_LOG_FORMAT".into(), "auto".into());
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    // No subcommand: the door is picked from AWS_LAMBDA_RUNTIME_API.
    Merchgen::start(&[], &env, logs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_batches_answer_only_ids_to_retry_and_direct_invokes_return_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let peers = peers().await;
    let api = RuntimeApi::start().await;
    let mut lambda = start_lambda(
        &api,
        out.to_str().unwrap(),
        &[],
        &dir.path().join("lambda.log"),
    );
    let hook = json!({"url": peers.url("/hooks"), "events": ["completed", "failed"]});

    // Good, invalid (terminal: acknowledged, failure webhook sent) and retryable-failing records.
    let good = json!({"id": "lam-good", "prompt": "a corgi", "width": 64, "height": 64, "num_inference_steps": 1, "seed": 3, "webhook": hook});
    let invalid = json!({"id": "lam-invalid", "prompt": "a corgi", "width": 1000, "webhook": hook});
    let flaky = json!({"id": "lam-flaky", "design": {"url": peers.url("/flaky.png")}, "mockups": {"products": ["mug"]}});
    let batch = json!({"Records": [record("m-good", &good.to_string(), 1), record("m-invalid", &invalid.to_string(), 1),
                                   record("m-flaky", &flaky.to_string(), 2)]});
    api.invoke("inv-1", batch);
    let answer = api.answer("inv-1", ANSWER).await;
    assert_eq!(answer.kind, "response", "{answer:?}\n{}", lambda.logs());
    assert_eq!(
        failure_ids(&answer.body),
        HashSet::from(["m-flaky".to_owned()]),
        "{}",
        answer.body
    );
    assert!(
        out.join("lam-good/result.json").is_file(),
        "outputs of the good record are stored"
    );
    assert!(out.join("lam-good/images/0.png").is_file());
    let events = support::aws::webhook_events(&peers.requests());
    assert!(
        events.contains(&("job.completed".into(), "lam-good".into(), false)),
        "{events:?}"
    );
    assert!(
        events.contains(&("job.failed".into(), "lam-invalid".into(), false)),
        "the invalid job's client is told: {events:?}"
    );

    // A direct invocation returns the outcome itself; the model was loaded at init, not now.
    let direct = json!({"id": "lam-direct", "prompt": "a fox", "width": 64, "height": 64, "num_inference_steps": 1});
    api.invoke("inv-2", direct);
    let answer = api.answer("inv-2", ANSWER).await;
    assert_eq!(
        (answer.body["id"].as_str(), answer.body["status"].as_str()),
        (Some("lam-direct"), Some("succeeded")),
        "{}",
        answer.body
    );
    assert_eq!(answer.body["cold_start"], false);
    assert!(
        answer.body["timings_ms"].get("load").is_none(),
        "{}",
        answer.body
    );

    // The sample batch (one invalid record: acknowledged) and a poison message (not JSON:
    // reported, so the queue's redrive policy dead-letters it), each failing alone.
    let sample: Value =
        serde_json::from_str(&std::fs::read_to_string("events/sqs-batch.json").unwrap()).unwrap();
    api.invoke("inv-3", sample);
    let answer = api.answer("inv-3", ANSWER).await;
    assert_eq!(failure_ids(&answer.body), HashSet::new(), "{}", answer.body);
    let poison = json!({"Records": [record("m-poison", "{not json", 1), record("m-ok", &json!({"id": "lam-ok", "prompt": "x", "num_inference_steps": 1}).to_string(), 1)]});
    api.invoke("inv-4", poison);
    let answer = api.answer("inv-4", ANSWER).await;
    assert_eq!(
        failure_ids(&answer.body),
        HashSet::from(["m-poison".to_owned()]),
        "{}",
        answer.body
    );
    assert!(out.join("lam-ok/result.json").is_file());

    // One model load for four invocations; JSON logs; a clean exit on SIGTERM.
    let logs = lambda.logs();
    assert_eq!(logs.matches("\"model loaded\"").count(), 1, "{logs}");
    assert!(
        api.extensions()
            .iter()
            .any(|e| e.contains("graceful-shutdown")),
        "{:?}",
        api.extensions()
    );
    lambda.terminate();
    assert_eq!(
        lambda.exit_code(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        lambda.logs()
    );
    let logs = lambda.logs();
    let json_lines = logs
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .count();
    assert!(json_lines >= 5, "JSON log lines expected:\n{logs}");
    assert!(logs.contains("shutting this environment down"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_claim_check_record_reads_the_job_from_s3() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let outputs = support::aws::bucket(&endpoint, "merchgen-lambda-out").await;
    // The sample event names s3://merchgen-jobs/claims/order-1042-design.json.
    let s3 = support::aws::s3(&endpoint).await;
    let _ = s3.create_bucket().bucket("merchgen-jobs").send().await;
    let job = json!({"id": format!("claim-{}", support::aws::short_id()), "prompt": "a large order", "width": 64, "height": 64, "num_inference_steps": 1});
    s3.put_object()
        .bucket("merchgen-jobs")
        .key("claims/order-1042-design.json")
        .body(job.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();

    let api = RuntimeApi::start().await;
    let s3_env = [
        ("MERCHGEN_S3_ENDPOINT", endpoint.as_str()),
        ("MERCHGEN_S3_PATH_STYLE", "true"),
    ];
    let out = format!("s3://{outputs}/runs");
    let mut lambda = start_lambda(&api, &out, &s3_env, &dir.path().join("lambda.log"));
    let event: Value =
        serde_json::from_str(&std::fs::read_to_string("events/sqs-claim-check.json").unwrap())
            .unwrap();
    api.invoke("inv-claim", event);
    let answer = api.answer("inv-claim", ANSWER).await;
    assert_eq!(
        failure_ids(&answer.body),
        HashSet::new(),
        "{}\n{}",
        answer.body,
        lambda.logs()
    );
    let key = format!("runs/{}/result.json", job["id"].as_str().unwrap());
    let stored = s3
        .get_object()
        .bucket(&outputs)
        .key(&key)
        .send()
        .await
        .unwrap();
    let result: Value =
        serde_json::from_slice(&stored.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(result["status"], "succeeded");

    // A claim check to nothing is poison: reported for the dead-letter queue.
    let missing = json!({"Records": [record("m-missing", r#"{"s3": "s3://merchgen-jobs/claims/none.json"}"#, 1)]});
    api.invoke("inv-missing", missing);
    let answer = api.answer("inv-missing", ANSWER).await;
    assert_eq!(
        failure_ids(&answer.body),
        HashSet::from(["m-missing".to_owned()]),
        "{}",
        answer.body
    );
    lambda.terminate();
    assert_eq!(lambda.exit_code(Duration::from_secs(20)).await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_model_that_cannot_load_is_an_init_error() {
    let dir = tempfile::tempdir().unwrap();
    let api = RuntimeApi::start().await;
    let missing = dir.path().join("no-model");
    let env = [("MERCHGEN_MODEL", missing.to_str().unwrap())];
    let mut lambda = start_lambda(
        &api,
        dir.path().to_str().unwrap(),
        &env,
        &dir.path().join("lambda.log"),
    );
    let answer = api.answer("init", ANSWER).await;
    assert_eq!(answer.kind, "init_error");
    assert_eq!(answer.body["errorType"], "merchgen.InitError");
    assert!(
        answer.body["errorMessage"]
            .as_str()
            .unwrap()
            .contains("model"),
        "{}",
        answer.body
    );
    assert_eq!(
        lambda.exit_code(Duration::from_secs(20)).await,
        Some(1),
        "{}",
        lambda.logs()
    );
}

/// `merchgen invoke` on an SQS event file goes through the Lambda door's record handling: the
/// claim check is read from S3, a poison record is reported for the dead-letter queue, an invalid
/// job is acknowledged, and the printed `batchItemFailures` are what Lambda would be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_runs_an_sqs_event_file_as_lambda_would() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s3 = support::aws::s3(&endpoint).await;
    let claims = support::aws::bucket(&endpoint, "merchgen-invoke-claims").await;
    let job = json!({"id": format!("inv-claim-{}", support::aws::short_id()), "prompt": "a large order",
                     "width": 64, "height": 64, "num_inference_steps": 1});
    s3.put_object()
        .bucket(&claims)
        .key("job.json")
        .body(job.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    let claim = json!({"s3": format!("s3://{claims}/job.json")}).to_string();
    let invalid = json!({"prompt": "x", "width": 100}).to_string();
    let event = json!({"Records": [record("m-claim", &claim, 1), record("m-poison", "not json", 3),
                                   record("m-invalid", &invalid, 1)]});
    let file = dir.path().join("batch.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let out = dir.path().join("out");

    let mut cmd = support::binary::on_tiny_model(&support::aws::tiny_model());
    cmd.args([
        "invoke",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .env("MERCHGEN_S3_ENDPOINT", &endpoint)
    .env("MERCHGEN_S3_PATH_STYLE", "true");
    let run = cmd.output().unwrap();
    let printed: Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        )
    });
    assert_eq!(run.status.code(), Some(1), "one record failed: {printed}");
    assert_eq!(
        failure_ids(&printed),
        HashSet::from(["m-poison".to_owned()]),
        "{printed}"
    );
    let outcomes = printed["outcomes"].as_array().unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0]["id"], job["id"], "the claim-checked job ran");
    assert_eq!(outcomes[0]["status"], "succeeded", "{printed}");
    assert_eq!(outcomes[1]["messageId"], "m-poison");
    assert_eq!(outcomes[1]["settlement"], "dead_letter");
    assert!(outcomes[1]["reason"]
        .as_str()
        .unwrap()
        .contains("not a job"));
    assert_eq!(outcomes[2]["error"]["code"], "invalid_input");
    assert_eq!(outcomes[2]["error"]["field"], "width");
    let result = out.join(job["id"].as_str().unwrap()).join("result.json");
    assert!(result.exists(), "outputs under --out: {}", result.display());
}

/// `MERCHGEN_MODEL=none` (the template's CPU function): no model is loaded, a mockup-only job
/// runs, and a generation job fails at once with `model_unavailable`, not retryable, saying to
/// route it to a GPU queue (so an SQS record is acknowledged instead of cycling).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_without_model_serves_mockups_and_refuses_generation_for_a_gpu_queue() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let api = RuntimeApi::start().await;
    let env = [("MERCHGEN_MODEL", "none")];
    let mut lambda = start_lambda(&api, "inline", &env, &dir.path().join("lambda.log"));
    let design = base64::engine::general_purpose::STANDARD.encode(support::images::png(64, 64));
    let mockup = json!({"id": "cpu-mockup", "design": {"base64": design},
                        "mockups": {"products": ["mug"], "colors": ["white"], "size": 256}});
    api.invoke("inv-mockup", mockup);
    let answer = api.answer("inv-mockup", ANSWER).await;
    assert_eq!(
        answer.body["status"],
        "succeeded",
        "{}\n{}",
        answer.body,
        lambda.logs()
    );
    assert_eq!(answer.body["mockups"].as_array().map(Vec::len), Some(1));

    let generation = json!({"id": "cpu-generate", "prompt": "a corgi"});
    api.invoke("inv-generate", generation);
    let answer = api.answer("inv-generate", ANSWER).await;
    let error = &answer.body["error"];
    assert_eq!(error["code"], "model_unavailable", "{}", answer.body);
    assert_eq!(error["retryable"], false, "{}", answer.body);
    assert!(
        error["message"].as_str().unwrap().contains("GPU"),
        "{error}"
    );
    assert!(
        !lambda.logs().contains("\"model loaded\""),
        "{}",
        lambda.logs()
    );
    lambda.kill();
}
