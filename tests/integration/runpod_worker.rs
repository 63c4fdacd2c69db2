//! `merchgen runpod` as a real process against a fake RunPod platform (`support::runpod`),
//! on the tiny random-weight model: the protocol as runpod-python speaks it (URLs, query
//! strings, headers, bodies of job-take, job-done, progress, ping and job-stop), survival of
//! 500, 429, garbage and timeouts, job-done retried until accepted, job-stop ending a job within
//! one denoising step with no result posted, and SIGTERM settling the job in flight.

use crate::support;

use merchgen::engine::tiny::{self, TinyLayout};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;
use support::runpod::{query, sigterm, wait_exit, Platform, Reply};

const WAIT: Duration = Duration::from_secs(60);

/// Start `merchgen` (no subcommand: RUNPOD_WEBHOOK_GET_JOB picks the RunPod door) with the tiny
/// model, the platform's env and `extra`. Logs go to `log`.
fn spawn(model: &Path, platform: &Platform, extra: &[(&str, &str)], log: &Path) -> Child {
    let mut cmd = support::binary::on_tiny_model(model);
    cmd.envs(platform.worker_env())
        .env("MERCHGEN_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

fn tiny_model(dir: &Path, seed: u64) -> std::path::PathBuf {
    tiny::write(&dir.join("model"), seed, TinyLayout::Folder).unwrap()
}

fn job(id: &str, input: Value) -> Reply {
    Reply::Json(json!({"id": id, "input": input}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_worker_speaks_the_protocol_and_survives_platform_faults() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), 21);
    let platform = Platform::start().await;
    let hook = format!("{}/hook", platform.base());
    let job1 = json!({"prompt": "a corgi", "width": 64, "height": 64, "num_inference_steps": 2, "seed": 3,
                      "webhook": {"url": hook, "events": ["progress"]}});
    platform.script_take([
        Reply::Status(500),
        Reply::Status(429),
        Reply::Garbage,
        Reply::Hang(Duration::from_millis(1_600)),
        Reply::Status(204),
        Reply::Status(400),
        job("job-1", job1),
        Reply::Json(
            json!([{"id": "job-2", "input": {"prompt": "x", "width": 100}}, {"id": "job-3"}]),
        ),
    ]);
    // job-1's result: a 500, no answer in time, a 429, then garbage with 200 (accepted).
    platform.script_done([
        Reply::Status(500),
        Reply::Hang(Duration::from_millis(1_600)),
        Reply::Status(429),
        Reply::Garbage,
    ]);
    let log = dir.path().join("worker.log");
    let env = [
        ("MERCHGEN_RUNPOD_TAKE_TIMEOUT_SECS", "1"),
        ("MERCHGEN_RUNPOD_POST_TIMEOUT_SECS", "1"),
        ("MERCHGEN_RUNPOD_THROTTLE_MS", "600"),
        ("MERCHGEN_RUNPOD_ERROR_BACKOFF_MS", "150"),
        ("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8"),
        // The platform's scripted answers are consumed in call order: one job at a time.
        ("MERCHGEN_PIPELINE_DEPTH", "1"),
    ];
    let mut child = spawn(&model, &platform, &env, &log);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    platform
        .until(WAIT, "job-1 result accepted", |p| {
            p.results("job-1").len() >= 4
        })
        .await;
    platform
        .until(WAIT, "job-2 and job-3 results", |p| {
            !p.results("job-2").is_empty() && !p.results("job-3").is_empty()
        })
        .await;
    platform
        .until(WAIT, "an idle ping after the jobs", |p| {
            p.calls_to("ping")
                .iter()
                .rev()
                .take(1)
                .any(|c| !c.query.contains("job_id"))
        })
        .await;
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(code, 0, "clean exit on SIGTERM\n{}", logs());

    // job-take: URL, query, headers; pauses after failures instead of spinning.
    let takes = platform.calls_to("job-take");
    for t in &takes {
        assert_eq!(
            (t.method.as_str(), t.path.as_str()),
            ("GET", "/v2/ep/job-take/pod-7")
        );
        assert_eq!(
            query(t),
            [
                ("gpu".into(), "TEST GPU".into()),
                ("job_in_progress".into(), "0".into())
            ]
        );
        assert_eq!(
            t.header("authorization"),
            Some("rp-key-123"),
            "raw key, as the SDK sends it"
        );
        assert_eq!(t.header("content-type"), Some("application/json"));
    }
    assert!(takes.len() >= 8, "{:#?}", platform.summary());
    let gap = |i: usize| takes[i + 1].at.duration_since(takes[i].at);
    assert!(
        gap(0) >= Duration::from_millis(120),
        "backs off after a 500: {:?}",
        gap(0)
    );
    assert!(
        gap(1) >= Duration::from_millis(550),
        "backs off 429 by the throttle pause: {:?}",
        gap(1)
    );
    assert!(
        gap(2) >= Duration::from_millis(120),
        "backs off after garbage: {:?}",
        gap(2)
    );
    assert!(
        gap(3) >= Duration::from_millis(900),
        "a hung take times out, not sooner: {:?}",
        gap(3)
    );

    // job-done of job-1: retried with the same body until accepted.
    let results = platform.results("job-1");
    assert_eq!(results.len(), 4, "{:#?}", platform.summary());
    for r in &results {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v2/ep/job-done/pod-7/job-1")
        );
        assert_eq!(
            query(r),
            [
                ("gpu".into(), "TEST GPU".into()),
                ("isStream".into(), "false".into())
            ]
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(r.header("charset"), Some("utf-8"));
        assert_eq!(r.header("x-request-id"), Some("job-1"));
        assert_eq!(r.header("authorization"), Some("rp-key-123"));
        assert_eq!(r.body, results[0].body, "every retry posts the same result");
    }
    let output = &results[0].json()["output"];
    assert_eq!(output["status"], "succeeded", "{output}");
    assert_eq!(
        output["id"], "job-1",
        "the RunPod job id is the delivery id"
    );
    let image = &output["images"][0];
    assert_eq!(
        (image["width"].as_u64(), image["seed"].as_u64()),
        (Some(64), Some(3))
    );
    assert!(
        image["base64"].as_str().is_some_and(|b| b.len() > 100),
        "inline by default on RunPod"
    );
    assert!(results[0].json().get("error").is_none() && results[0].json().get("stopPod").is_none());

    // Progress: per step, before the result, same URL with isStream=false.
    let progress = platform.progress("job-1");
    assert!(!progress.is_empty(), "the job asked for progress");
    for p in &progress {
        let body = p.json();
        assert_eq!(body["output"]["total"], 2);
        assert!(body["output"]["step"]
            .as_u64()
            .is_some_and(|s| (1..=2).contains(&s)));
        assert_eq!(query(p)[1], ("isStream".into(), "false".into()));
        assert!(p.at <= results[0].at, "progress never follows the result");
    }

    // job-2 (invalid) and job-3 (no input) from one batch answer: error strings with the code.
    let job2 = &platform.results("job-2")[0];
    assert_eq!(job2.error().unwrap()["code"], "invalid_input");
    assert_eq!(job2.error().unwrap()["field"], "width");
    assert!(job2.json().get("output").is_none());
    assert_eq!(
        platform.results("job-3")[0].error().unwrap()["code"],
        "invalid_input"
    );
    assert!(
        platform.progress("job-2").is_empty(),
        "no progress unless the job asks"
    );

    // Heartbeat: raw key, version, the ids in flight; job-stop: the take URL, nothing added.
    let pings = platform.calls_to("ping");
    assert!(pings
        .iter()
        .all(|p| p.path == "/v2/ep/ping/pod-7" && p.header("authorization") == Some("rp-key-123")));
    assert!(pings
        .iter()
        .all(|p| query(p).contains(&("runpod_version".into(), "1.12.0".into()))));
    assert!(
        pings
            .iter()
            .any(|p| query(p).contains(&("job_id".into(), "job-1".into()))),
        "job-1 reported while in flight"
    );
    let stops = platform.calls_to("job-stop");
    assert!(!stops.is_empty());
    assert!(stops.iter().all(|s| s.path == "/v2/ep/job-stop/pod-7"
        && s.query == "gpu=TEST+GPU"
        && s.header("authorization") == Some("rp-key-123")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_job_stop_ends_the_job_within_one_step_and_sigterm_settles_the_job_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), 22);
    let platform = Platform::start().await;
    let long =
        json!({"prompt": "slow", "width": 64, "height": 64, "num_inference_steps": 50, "seed": 1});
    platform.script_take([
        job("stop-me", long.clone()),
        job(
            "after",
            json!({"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1}),
        ),
    ]);
    platform.stop_on_first_progress("stop-me");
    let log = dir.path().join("worker.log");
    let env = [
        ("MERCHGEN_RUNPOD_PROGRESS", "steps"),
        ("MERCHGEN_SHUTDOWN_GRACE_SECS", "0"),
    ];
    let mut child = spawn(&model, &platform, &env, &log);
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();

    // Two jobs are in flight at once (pipeline depth 2), so either may reach the engine first:
    // wait for both the next job's result and the stopped job's end.
    platform
        .until(WAIT, "the job after the stopped one settles", |p| {
            !p.results("after").is_empty()
                && logs().contains("stopped by the platform; no result is posted")
        })
        .await;
    // The worker logs how many steps had finished when job-stop named the job and when the
    // job ended: at most the step in flight, plus one whose report was still on its way, ran
    // after the stop. (Progress posts lag behind the engine on a busy machine, so the platform's
    // own view of the step is not the measure.)
    let log = crate::support::logs::strip_ansi(&logs());
    let line = log
        .lines()
        .find(|l| l.contains("stopped by the platform; no result is posted"))
        .unwrap_or_else(|| panic!("no stop line in the worker's log\n{log}"));
    let field = |name: &str| -> u32 {
        let at = line.find(&format!("{name}=")).unwrap() + name.len() + 1;
        line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (at_stop, done) = (field("steps_at_stop"), field("steps_done"));
    assert!(
        done <= at_stop + 2,
        "at most the step in flight ran after the stop: {at_stop} steps done at the stop, {done} at the end\n{log}"
    );
    let progress = platform.progress("stop-me");
    let total = progress[0].json()["output"]["total"].as_u64().unwrap();
    let last = progress
        .iter()
        .map(|p| p.json()["output"]["step"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(last < total, "stopped before the end ({last} of {total})");
    assert!(
        platform.results("stop-me").is_empty(),
        "a stopped job posts no result"
    );
    assert_eq!(
        platform.results("after")[0].json()["output"]["status"],
        "succeeded"
    );

    // SIGTERM with a job in flight and no grace: it is cancelled between steps and reported.
    platform.script_take([job("in-flight", long)]);
    platform
        .until(WAIT, "in-flight runs", |p| {
            !p.progress("in-flight").is_empty()
        })
        .await;
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(code, 0, "{}", logs());
    let settled = platform.results("in-flight");
    assert_eq!(settled.len(), 1, "{:#?}", platform.summary());
    let error = settled[0].error().unwrap();
    assert_eq!(
        (error["code"].as_str(), error["retryable"].as_bool()),
        (Some("cancelled"), Some(true))
    );
    let takes_after = platform
        .calls_to("job-take")
        .into_iter()
        .filter(|t| t.at > settled[0].at)
        .count();
    assert_eq!(takes_after, 0, "no job is taken after SIGTERM");
}

/// The text without ANSI colour sequences (`ESC [ ... m`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_execution_timeout_of_the_request_ends_the_job_as_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path(), 23);
    let platform = Platform::start().await;
    let slow = json!({"prompt": "slow", "width": 512, "height": 512, "num_inference_steps": 50, "num_images": 4});
    platform.script_take([
        Reply::Json(json!({"id": "too-slow", "input": slow, "policy": {"executionTimeout": 1000}})),
        job(
            "next",
            json!({"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1}),
        ),
    ]);
    let log = dir.path().join("worker.log");
    let mut child = spawn(&model, &platform, &[], &log);
    platform
        .until(WAIT, "both jobs settle", |p| {
            !p.results("too-slow").is_empty() && !p.results("next").is_empty()
        })
        .await;
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    let error = platform.results("too-slow")[0].error();
    assert_eq!(
        error.as_ref().map(|e| e["code"].clone()),
        Some(json!("timeout")),
        "{error:?}\n{logs}"
    );
    assert!(
        platform.results("next")[0].json()["output"]["status"] == "succeeded",
        "the worker goes on after a timed-out job\n{logs}"
    );
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, WAIT), 0, "{logs}");
}
