//! `merchgen sqs` as a real process against moto's SQS and S3 on loopback, on the tiny model:
//! how each kind of message is settled (success, invalid input, poison, retryable failure, claim
//! check), poison moved to the dead-letter queue at once, a job past `MERCHGEN_JOB_TIMEOUT`
//! ending as `timeout` and in the dead-letter queue, and SIGTERM during a job (released at once
//! when the grace period is over; finished and deleted within it). `make test` provides moto; without it these tests skip (or fail,
//! under `MERCHGEN_REQUIRE_PEERS=1`).

use crate::support;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::aws::{peers, Merchgen, Queues};

async fn object(endpoint: &str, bucket: &str, key: &str) -> Option<Value> {
    let s3 = support::aws::s3(endpoint).await;
    let got = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    serde_json::from_slice(&got.body.collect().await.ok()?.into_bytes()).ok()
}

/// The `delay_secs` of every `retry_later` settlement in the JSON logs, in order.
fn retry_delays(logs: &str) -> Vec<u64> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["settlement"] == "retry_later" && v["message"] == "settled")
        .filter_map(|v| v["delay_secs"].as_u64())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_consumer_settles_each_kind_of_message() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-sqs").await;
    let sqs = support::aws::sqs(&endpoint).await;
    let Queues { url, dlq_url } = support::aws::queues(&sqs, "merchgen-kinds", 2).await;
    let peers = peers().await;
    let hook = json!({"url": peers.url("/hooks"), "events": ["completed", "failed"]});
    let run = support::aws::short_id();
    let (good, invalid, claimed) = (
        format!("good-{run}"),
        format!("invalid-{run}"),
        format!("claimed-{run}"),
    );

    send_job(&sqs, &url, json!({"id": good, "prompt": "a corgi", "width": 64, "height": 64, "num_inference_steps": 1, "webhook": hook})).await;
    send_job(
        &sqs,
        &url,
        json!({"id": invalid, "prompt": "a corgi", "width": 1000, "webhook": hook}),
    )
    .await;
    support::aws::send(&sqs, &url, "this is not JSON").await;
    let flaky = json!({"id": format!("flaky-{run}"), "design": {"url": peers.url("/flaky.png")}, "mockups": {"products": ["mug"]}}).to_string();
    support::aws::send(&sqs, &url, &flaky).await;
    // A claim check: the job itself waits in S3.
    let s3 = support::aws::s3(&endpoint).await;
    let claimed_job = json!({"id": claimed, "prompt": "a big job", "width": 64, "height": 64, "num_inference_steps": 1, "webhook": hook});
    s3.put_object()
        .bucket(&bucket)
        .key("claims/big.json")
        .body(claimed_job.to_string().into_bytes().into())
        .send()
        .await
        .unwrap();
    support::aws::send(
        &sqs,
        &url,
        &json!({"s3": format!("s3://{bucket}/claims/big.json")}).to_string(),
    )
    .await;

    // No subcommand: the door is picked from MERCHGEN_SQS_QUEUE_URL.
    let mut env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.insert(
        "MERCHGEN_METRICS_ADDR".into(),
        format!("127.0.0.1:{metrics_port}"),
    );
    let mut consumer = Merchgen::start(&[], &env, &dir.path().join("sqs.log"));
    support::aws::wait_until(
        Duration::from_secs(120),
        "an empty queue and two dead letters",
        || async {
            support::aws::counts(&sqs, &url).await == (0, 0, 0)
                && support::aws::counts(&sqs, &dlq_url).await.0 == 2
        },
    )
    .await;

    for id in [&good, &claimed] {
        let result = object(&endpoint, &bucket, &format!("out/{id}/result.json")).await;
        assert_eq!(
            result.as_ref().map(|r| r["status"].clone()),
            Some(json!("succeeded")),
            "{id}: {}",
            consumer.logs()
        );
    }
    let events = support::aws::webhook_events(&peers.requests());
    let count = |kind: &str, id: &str| {
        events
            .iter()
            .filter(|(k, i, _)| k == kind && i == id)
            .count()
    };
    assert_eq!(count("job.completed", &good), 1, "{events:?}");
    assert_eq!(count("job.completed", &claimed), 1, "{events:?}");
    assert_eq!(
        count("job.failed", &invalid),
        1,
        "the invalid job is reported once and deleted: {events:?}"
    );
    let mut dead = support::aws::bodies(&sqs, &dlq_url).await;
    dead.sort();
    let mut expected = vec!["this is not JSON".to_owned(), flaky];
    expected.sort();
    assert_eq!(
        dead, expected,
        "poison and the always-failing job end in the dead-letter queue"
    );
    assert_eq!(
        retry_delays(&consumer.logs()),
        [1, 2],
        "retry delays grow with ApproximateReceiveCount"
    );
    // The door's /metrics (MERCHGEN_METRICS_ADDR): jobs by door, status and error code.
    let metrics = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "merchgen_door_jobs_total{door=\"sqs\",status=\"succeeded\",code=\"\"} 2",
        "merchgen_door_jobs_total{door=\"sqs\",status=\"failed\",code=\"invalid_input\"} 1",
        "merchgen_stage_duration_seconds_count{stage=\"denoise\"} 2",
        "merchgen_model_load_seconds",
        "merchgen_device_memory_free_bytes",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }

    consumer.terminate();
    assert_eq!(
        consumer.exit_code(Duration::from_secs(20)).await,
        Some(0),
        "{}",
        consumer.logs()
    );
}

async fn send_job(sqs: &aws_sdk_sqs::Client, url: &str, job: Value) {
    support::aws::send(sqs, url, &job.to_string()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_sigterm_during_a_job_loses_nothing() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-term").await;
    let sqs = support::aws::sqs(&endpoint).await;
    let Queues { url, .. } = support::aws::queues(&sqs, "merchgen-term", 5).await;
    let peers = peers().await;
    let id = format!("slow-{}", support::aws::short_id());
    // Slow on purpose: many denoising steps, so SIGTERM lands in the middle of the job.
    let job = json!({"id": id, "prompt": "a slow job", "width": 256, "height": 256, "num_inference_steps": 30,
                     "webhook": {"url": peers.url("/hooks"), "events": ["started", "completed"]}});
    send_job(&sqs, &url, job).await;
    let mut env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    // A long visibility timeout: a message seen again soon was released, not timed out.
    env.extend(kv(&[
        ("MERCHGEN_SQS_VISIBILITY_SECS", "60"),
        ("MERCHGEN_SQS_HEARTBEAT_SECS", "20"),
    ]));
    let started = |n: usize| {
        let peers = &peers;
        let id = id.clone();
        move || {
            let id = id.clone();
            async move {
                support::aws::webhook_events(&peers.requests())
                    .iter()
                    .filter(|(k, i, _)| k == "job.started" && *i == id)
                    .count()
                    >= n
            }
        }
    };

    // No grace: SIGTERM cancels the job and makes its message visible again at once.
    env.insert("MERCHGEN_SHUTDOWN_GRACE_SECS".into(), "0".into());
    let mut first = Merchgen::start(&["sqs"], &env, &dir.path().join("first.log"));
    support::aws::wait_until(Duration::from_secs(120), "the job to start", started(1)).await;
    first.terminate();
    assert_eq!(
        first.exit_code(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        first.logs()
    );
    assert!(
        first.logs().contains("grace period over"),
        "{}",
        first.logs()
    );
    assert_eq!(
        support::aws::counts(&sqs, &url).await,
        (1, 0, 0),
        "released, not waiting out 60 s of visibility"
    );
    assert!(object(&endpoint, &bucket, &format!("out/{id}/result.json"))
        .await
        .is_none());

    // A long grace: SIGTERM lets the job finish; its message is deleted after result.json.
    env.insert("MERCHGEN_SHUTDOWN_GRACE_SECS".into(), "300".into());
    let mut second = Merchgen::start(&["sqs"], &env, &dir.path().join("second.log"));
    support::aws::wait_until(
        Duration::from_secs(120),
        "the job to start again",
        started(2),
    )
    .await;
    second.terminate();
    assert_eq!(
        second.exit_code(Duration::from_secs(240)).await,
        Some(0),
        "{}",
        second.logs()
    );
    let result = object(&endpoint, &bucket, &format!("out/{id}/result.json"))
        .await
        .unwrap_or_else(|| panic!("result.json stored\n{}", second.logs()));
    assert_eq!(result["status"], "succeeded");
    assert_eq!(
        support::aws::counts(&sqs, &url).await,
        (0, 0, 0),
        "deleted once stored"
    );
    let events = support::aws::webhook_events(&peers.requests());
    assert!(
        events.contains(&("job.completed".into(), id.clone(), false)),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_poison_is_moved_to_the_dead_letter_queue_at_once() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqs = support::aws::sqs(&endpoint).await;
    // The template's redrive policy: five receives before SQS itself would dead-letter it.
    let Queues { url, dlq_url } = support::aws::queues(&sqs, "merchgen-poison", 5).await;
    let poison_id = support::aws::send(&sqs, &url, "this is not JSON").await;
    let mut env = support::aws::sqs_env(&endpoint, &url, "inline");
    // The default visibility (120 s): a poison message left alone would cycle for ten minutes.
    env.remove("MERCHGEN_SQS_VISIBILITY_SECS");
    env.remove("MERCHGEN_SQS_HEARTBEAT_SECS");
    env.insert("MERCHGEN_MODEL".into(), "none".into());
    // A model-less worker draws just the mockup layers it is told to, in the background.
    env.insert("MERCHGEN_MOCKUP_WARMUP".into(), "mug@256".into());
    let consumer = Merchgen::start(&["sqs"], &env, &dir.path().join("sqs.log"));
    support::aws::wait_until(
        Duration::from_secs(30),
        "the poison message in the dead-letter queue",
        || async {
            support::aws::counts(&sqs, &dlq_url).await.0 == 1
                && support::aws::counts(&sqs, &url).await == (0, 0, 0)
        },
    )
    .await;
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .message_attribute_names("All")
        .visibility_timeout(600)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body.as_deref(), Some("this is not JSON"));
    let attrs = dead[0].message_attributes.clone().unwrap_or_default();
    let attr = |name: &str| {
        attrs
            .get(name)
            .and_then(|a| a.string_value.clone())
            .unwrap_or_default()
    };
    assert!(
        attr("merchgen-dead-letter-reason").contains("JSON"),
        "{attrs:?}"
    );
    assert_eq!(attr("merchgen-source-queue"), url);
    assert_eq!(attr("merchgen-source-message-id"), poison_id);
    assert_eq!(attr("merchgen-receive-count"), "1");
    support::aws::wait_until(
        Duration::from_secs(30),
        "the mockup warm-up's log line",
        || async { consumer.logs().contains("mockup layers ready") },
    )
    .await;
    let ready = consumer
        .logs()
        .lines()
        .find(|l| l.contains("mockup layers ready"))
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(ready.contains("\"products\":1"), "{ready}");
    consumer.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_job_past_its_timeout_ends_as_timeout_and_reaches_the_dead_letter_queue() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-timeout").await;
    let sqs = support::aws::sqs(&endpoint).await;
    let Queues { url, dlq_url } = support::aws::queues(&sqs, "merchgen-timeout", 1).await;
    let peers = peers().await;
    let id = format!("slow-{}", support::aws::short_id());
    // Many short steps: past the 1 s timeout on any machine, and each step (where the engine
    // checks for a cancel) well inside the 5 s wind-down even on two busy cores (a step of four
    // 512² images took 3.3 s alone in a debug build, and the job was given up under load).
    let job = json!({"id": id, "prompt": "a slow job", "width": 256, "height": 256, "num_inference_steps": 50, "num_images": 1,
                     "webhook": {"url": peers.url("/hooks"), "events": ["failed"]}});
    send_job(&sqs, &url, job.clone()).await;
    let mut env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    env.insert("MERCHGEN_JOB_TIMEOUT".into(), "1".into());
    // No mockups here: the layers' drawing would only compete with the job for the two cores.
    env.insert("MERCHGEN_MOCKUP_WARMUP".into(), "none".into());
    let consumer = Merchgen::start(&["sqs"], &env, &dir.path().join("sqs.log"));
    support::aws::wait_until(
        Duration::from_secs(120),
        "the timed-out job in the dead-letter queue",
        || async { support::aws::counts(&sqs, &dlq_url).await.0 == 1 },
    )
    .await;
    // Webhooks go out in the background: wait for the failure's.
    let sent = || {
        peers
            .requests()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("job.failed"))
    };
    let waiting = std::time::Instant::now();
    while !sent() && waiting.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        sent(),
        "no job.failed webhook within 30 s; the worker's log:\n{}",
        consumer.logs()
    );
    let failed: Vec<Value> = peers
        .requests()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["type"] == "job.failed")
        .collect();
    assert!(!failed.is_empty(), "{}", consumer.logs());
    assert_eq!(failed[0]["data"]["error"]["code"], "timeout", "{failed:?}");
    assert!(
        consumer.logs().contains("reached its deadline"),
        "{}",
        consumer.logs()
    );
    assert!(object(&endpoint, &bucket, &format!("out/{id}/result.json"))
        .await
        .is_none_or(|r| r["status"] != "succeeded"));
    consumer.terminate();
}

fn kv(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The (type, data) of the webhooks job `id` got, in order.
fn events_of(peers: &support::http::TestServer, id: &str) -> Vec<(String, Value)> {
    peers
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/hooks"))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["data"]["id"] == id)
        .map(|b| {
            (
                b["type"].as_str().unwrap_or_default().to_owned(),
                b["data"].clone(),
            )
        })
        .collect()
}

/// A failure the queue will hand out again is announced as `job.retrying` (with the attempt and
/// the error), and the job's end once, as `job.failed`, on the queue's last receive
/// (`maxReceiveCount` from its redrive policy). (Before: `job.failed` on every attempt.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_retried_failure_is_announced_as_retrying_and_its_end_once() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-retrying").await;
    let sqs = support::aws::sqs(&endpoint).await;
    let Queues { url, dlq_url } = support::aws::queues(&sqs, "merchgen-retrying", 2).await;
    let peers = peers().await;
    let id = format!("flaky-{}", support::aws::short_id());
    // The default subscription: completed, failed and retrying.
    let job = json!({"id": id, "design": {"url": peers.url("/flaky.png")},
                     "mockups": {"products": ["mug"]}, "webhook": {"url": peers.url("/hooks")}});
    send_job(&sqs, &url, job).await;
    let mut env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    env.insert("MERCHGEN_MOCKUP_WARMUP".into(), "none".into());
    let consumer = Merchgen::start(&["sqs"], &env, &dir.path().join("sqs.log"));
    support::aws::wait_until(
        Duration::from_secs(120),
        "the job in the dead-letter queue",
        || async { support::aws::counts(&sqs, &dlq_url).await.0 == 1 },
    )
    .await;
    support::aws::wait_until(Duration::from_secs(30), "the job.failed webhook", || {
        let got = events_of(&peers, &id);
        async move { got.iter().any(|(kind, _)| kind == "job.failed") }
    })
    .await;
    let events = events_of(&peers, &id);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["job.retrying", "job.failed"], "{}", consumer.logs());
    assert_eq!(events[0].1["attempt"], 1);
    assert_eq!(events[0].1["error"]["code"], "input_fetch_failed");
    assert_eq!(events[1].1["error"]["code"], "input_fetch_failed");
    consumer.terminate();
}

/// A job that does not stop when cancelled at its deadline is given up by the door runtime;
/// its end is still announced (`job.failed`, `timeout`), from outside the job's own run.
/// (Before: no webhook at all; the client saw only `job.started`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_a_job_given_up_past_its_deadline_still_announces_its_end() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-givenup").await;
    let sqs = support::aws::sqs(&endpoint).await;
    let Queues { url, .. } = support::aws::queues(&sqs, "merchgen-givenup", 1).await;
    let peers = peers().await;
    let id = format!("stuck-{}", support::aws::short_id());
    // One denoising step of four 1024² images: far longer than the 1 s timeout plus the 5 s
    // wind-down, and the engine looks for a cancel only between steps.
    let job = json!({"id": id, "prompt": "one long step", "width": 1024, "height": 1024,
                     "num_inference_steps": 1, "num_images": 4,
                     "webhook": {"url": peers.url("/hooks"), "events": ["started", "retrying", "failed", "completed"]}});
    send_job(&sqs, &url, job).await;
    let mut env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    env.insert("MERCHGEN_JOB_TIMEOUT".into(), "1".into());
    env.insert("MERCHGEN_MOCKUP_WARMUP".into(), "none".into());
    let consumer = Merchgen::start(&["sqs"], &env, &dir.path().join("sqs.log"));
    support::aws::wait_until(Duration::from_secs(120), "the job.failed webhook", || {
        let got = events_of(&peers, &id);
        async move { got.iter().any(|(kind, _)| kind == "job.failed") }
    })
    .await;
    let logs = consumer.logs();
    assert!(logs.contains("did not stop: giving it up"), "{logs}");
    let events = events_of(&peers, &id);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["job.started", "job.failed"], "{logs}");
    assert_eq!(events[1].1["error"]["code"], "timeout");
    consumer.terminate();
}
