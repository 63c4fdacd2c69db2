//! Crash safety of `merchgen sqs`: 50 jobs (and two poison messages) on a moto queue, each with an
//! image and a mug mockup, so a job's CPU stages (mockup, encoding, uploads) overlap the next
//! job's generation (two jobs in flight, the default pipeline depth). The consumer is killed with
//! SIGKILL five times and restarted: the first kill lands exactly while one job is past its
//! generation (rendering, uploading) and the next one is generating; the others at random moments. At the end every
//! job has exactly one complete set of outputs and a `result.json` that matches them, none is
//! missing, each completion webhook arrived at least once, and the poison messages sit in the
//! dead-letter queue. Prints the figures recorded in docs/reliability.md.

use crate::support;

use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::aws::{Merchgen, Queues};
use support::http::{Reply, TestServer};

const JOBS: usize = 50;
const KILLS: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_consumer_killed_five_times_loses_and_duplicates_no_outputs() {
    let Some(endpoint) = support::aws::moto() else {
        return;
    };
    let started_at = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let bucket = support::aws::bucket(&endpoint, "merchgen-crash").await;
    let sqs = support::aws::sqs(&endpoint).await;
    // Each kill hands at most two messages (running, prefetched) back; 8 receives is far out of
    // reach for a job, and sends a poison message to the dead-letter queue in about 25 s.
    let Queues { url, dlq_url } = support::aws::queues(&sqs, "merchgen-crash", 8).await;
    let hooks = TestServer::script(vec![Reply::ok("")]).await;
    let run = support::aws::short_id();
    let ids: Vec<String> = (0..JOBS).map(|i| format!("crash-{run}-{i:02}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let job = json!({"id": id, "prompt": format!("design number {i}"), "width": 64, "height": 64,
                         "num_inference_steps": 1, "seed": i,
                         "mockups": {"products": ["mug"], "colors": ["white"], "size": 768},
                         "webhook": {"url": hooks.url("/hooks"), "events": ["started", "completed"]}});
        support::aws::send(&sqs, &url, &job.to_string()).await;
    }
    for poison in ["{\"truncated\": ", "\u{1F4A5} not a job"] {
        support::aws::send(&sqs, &url, poison).await;
    }

    let seed: u64 = rand::rng().random();
    eprintln!("kill schedule seed: {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let env = support::aws::sqs_env(&endpoint, &url, &format!("s3://{bucket}/out"));
    for k in 0..KILLS {
        let mut consumer =
            Merchgen::start(&["sqs"], &env, &dir.path().join(format!("run-{k}.log")));
        // A random moment once the consumer is taking messages (model loaded, queue checked).
        support::aws::wait_until(
            Duration::from_secs(120),
            "the consumer to start",
            || async { consumer.logs().contains("consuming the job queue") },
        )
        .await;
        let after = if k == 0 {
            // The overlap: one job rendering or uploading, the next generating.
            let seen = overlap(&consumer, Duration::from_secs(120)).await;
            assert!(
                seen.is_some(),
                "never saw one job past generation while the next generated: {}",
                consumer.logs()
            );
            eprintln!("kill 1 at the overlap: {seen:?}");
            Duration::ZERO
        } else {
            // Let this consumer finish 0 to 3 more jobs first, then kill it a random moment later
            // (up to about one job's time): kills land anywhere in a job's cycle (receiving,
            // generating, uploading, between storing result.json and deleting the message).
            let before = results(&endpoint, &bucket, &ids).await;
            let more = rng.random_range(0..=3usize);
            support::aws::wait_until(
                Duration::from_secs(120),
                "this consumer to finish its jobs",
                || async { results(&endpoint, &bucket, &ids).await >= (before + more).min(JOBS) },
            )
            .await;
            let after = Duration::from_millis(rng.random_range(0..1500));
            tokio::time::sleep(after).await;
            after
        };
        consumer.kill();
        let done = results(&endpoint, &bucket, &ids).await;
        eprintln!(
            "kill {} ({after:?} after the awaited moment): {done} of {JOBS} results stored",
            k + 1
        );
    }
    let mut last = Merchgen::start(&["sqs"], &env, &dir.path().join("final.log"));
    support::aws::wait_until(
        Duration::from_secs(240),
        "every job stored and the poison dead-lettered",
        || async {
            support::aws::counts(&sqs, &url).await == (0, 0, 0)
                && support::aws::counts(&sqs, &dlq_url).await.0 == 2
        },
    )
    .await;
    last.terminate();
    assert_eq!(
        last.exit_code(Duration::from_secs(30)).await,
        Some(0),
        "{}",
        last.logs()
    );

    // Outputs: exactly {images/0.png, mockups/mug-white.jpg, result.json} per job, and result.json
    // describes them.
    let s3 = support::aws::s3(&endpoint).await;
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("out/")
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for obj in page.unwrap().contents.unwrap_or_default() {
            let key = obj.key.unwrap();
            let mut parts = key.splitn(3, '/').skip(1);
            let (id, rest) = (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            );
            keys.entry(id).or_default().insert(rest);
        }
    }
    let expected: BTreeSet<String> = ["images/0.png", "mockups/mug-white.jpg", "result.json"]
        .map(String::from)
        .into();
    let (mut lost, mut duplicated) = (Vec::new(), Vec::new());
    for id in &ids {
        match keys.get(id) {
            Some(found) if *found == expected => check_result(&s3, &bucket, id).await,
            Some(found) if found.is_superset(&expected) => {
                duplicated.push(format!("{id}: {found:?}"))
            }
            other => lost.push(format!("{id}: {other:?}")),
        }
    }
    assert_eq!(
        keys.len(),
        JOBS,
        "no outputs beyond the jobs: {:?}",
        keys.keys().collect::<Vec<_>>()
    );

    // Webhooks: every completion at least once; reruns show as extra `job.started`.
    let events = support::aws::webhook_events(&hooks.requests());
    let tally = |kind: &str, id: &str| {
        events
            .iter()
            .filter(|(k, i, _)| k == kind && i == id)
            .count()
    };
    let missing_hooks: Vec<&String> = ids
        .iter()
        .filter(|id| tally("job.completed", id) == 0)
        .collect();
    let reruns: usize = ids
        .iter()
        .map(|id| tally("job.started", id).saturating_sub(1))
        .sum();
    let repeated_hooks: usize = ids
        .iter()
        .map(|id| tally("job.completed", id).saturating_sub(1))
        .sum();
    let dead = support::aws::bodies(&sqs, &dlq_url).await;

    eprintln!(
        "RELIABILITY jobs={JOBS} kills={KILLS} lost={} duplicated={} reruns={reruns} repeated_completion_webhooks={repeated_hooks} \
         dead_lettered={} seconds={:.0}",
        lost.len(),
        duplicated.len(),
        dead.len(),
        started_at.elapsed().as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "jobs without a complete set of outputs: {lost:?}"
    );
    assert!(
        duplicated.is_empty(),
        "jobs with more than one set of outputs: {duplicated:?}"
    );
    assert!(
        missing_hooks.is_empty(),
        "jobs whose completion webhook never arrived: {missing_hooks:?}"
    );
    assert_eq!(
        dead.len(),
        2,
        "only the poison messages are dead-lettered: {dead:?}"
    );
    assert!(dead.iter().all(|b| !b.contains("crash-")), "{dead:?}");
}

/// Wait (up to `limit`) for a moment when the consumer's log shows one job whose generation was
/// handed to the engine and has not finished, while another job finished generating and has not
/// finished (its mockup, encoding, uploads or webhooks are running). Returns the two job ids.
async fn overlap(consumer: &Merchgen, limit: Duration) -> Option<(String, String)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(found) = find_overlap(&consumer.logs()) {
            return Some(found);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// (generating, past generation) job ids, from the consumer's JSON log lines.
fn find_overlap(logs: &str) -> Option<(String, String)> {
    let mut started = BTreeSet::new();
    let mut generated = BTreeSet::new();
    let mut finished = BTreeSet::new();
    for line in logs.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(id) = v["span"]["id"].as_str().map(str::to_owned) else {
            continue;
        };
        match (v["message"].as_str(), v["stage"].as_str()) {
            (Some("stage started"), Some("generate")) => {
                started.insert(id);
            }
            (Some("stage finished"), Some("generate")) => {
                generated.insert(id);
            }
            (Some("job finished"), _) => {
                finished.insert(id);
            }
            _ => {}
        }
    }
    let generating = started.difference(&generated).next()?;
    let past = generated
        .difference(&finished)
        .find(|id| *id != generating)?;
    Some((generating.clone(), past.clone()))
}

/// How many of the jobs have a `result.json` now.
async fn results(endpoint: &str, bucket: &str, ids: &[String]) -> usize {
    let s3 = support::aws::s3(endpoint).await;
    let mut n = 0;
    for id in ids {
        if s3
            .head_object()
            .bucket(bucket)
            .key(format!("out/{id}/result.json"))
            .send()
            .await
            .is_ok()
        {
            n += 1;
        }
    }
    n
}

/// `result.json` says succeeded and names the stored image by its SHA-256.
async fn check_result(s3: &aws_sdk_s3::Client, bucket: &str, id: &str) {
    let get = |key: String| async move {
        let obj = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        obj.body.collect().await.unwrap().into_bytes().to_vec()
    };
    let result: Value =
        serde_json::from_slice(&get(format!("out/{id}/result.json")).await).unwrap();
    assert_eq!(result["status"], "succeeded", "{id}: {result}");
    let image = get(format!("out/{id}/images/0.png")).await;
    use sha2::Digest;
    assert_eq!(
        result["images"][0]["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&image)),
        "{id}"
    );
    let mockup = get(format!("out/{id}/mockups/mug-white.jpg")).await;
    assert_eq!(
        result["mockups"][0]["key"],
        format!("out/{id}/mockups/mug-white.jpg")
    );
    assert_eq!(result["mockups"][0]["bytes"], mockup.len(), "{id}");
}
