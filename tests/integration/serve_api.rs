//! `merchgen serve` driven by a plain HTTP client: RunPod's endpoint API through every route
//! and status (IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED, CANCELLED, TIMED_OUT, gone after its
//! ttl), the key check, the bounded queue (429), the request webhook, `/healthz` and `/metrics`;
//! then SIGTERM. Runs the real binary on the tiny model.

use crate::support;

use axum::body::Bytes;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::intake::serve::{metrics::Metrics, routes, store::Store, webhook::StatusWebhook};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::serve::{request, Server};

const KEY: &str = "sk-merchgen-test";
const WAIT: Duration = Duration::from_secs(60);

fn quick(seed: u64) -> Value {
    json!({"prompt": "a corgi", "width": 64, "height": 64, "num_inference_steps": 1, "seed": seed})
}

/// A job that runs long enough to be seen running, queued behind, cancelled or timed out.
fn slow() -> Value {
    json!({"prompt": "slow", "width": 64, "height": 64, "num_inference_steps": 50})
}

/// A webhook receiver on loopback that records bodies.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: Bytes| {
            let s = s.clone();
            async move {
                s.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_endpoint_api_routes_statuses_queue_webhook_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 51, TinyLayout::Folder).unwrap();
    let env = [
        ("MERCHGEN_API_KEY", KEY),
        ("MERCHGEN_SERVE_QUEUE_CAPACITY", "2"),
        ("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8"),
        // One job at a time, so the queue's states below are exact (depth: the next test).
        ("MERCHGEN_PIPELINE_DEPTH", "1"),
    ];
    let server = Server::start(&model, dir.path(), &env).await;
    let bearer = format!("Bearer {KEY}");
    let (raw, auth) = (Some(KEY), Some(bearer.as_str()));

    // Authorization: raw or Bearer; /healthz and /metrics are open.
    assert_eq!(
        server
            .post("/v2/ep/run", None, Some(&json!({"input": quick(1)})))
            .await
            .0,
        401
    );
    assert_eq!(
        server
            .post(
                "/v2/ep/run",
                Some("Bearer nope"),
                Some(&json!({"input": quick(1)}))
            )
            .await
            .0,
        401
    );
    assert_eq!(
        server.get("/healthz", None).await,
        (200, json!({"status": "ready"}))
    );

    // runsync: done within the wait, with RunPod's fields.
    let (code, body) = server
        .post("/v2/ep/runsync", raw, Some(&json!({"input": quick(7)})))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "COMPLETED", "{body}");
    assert!(body["id"].as_str().unwrap().starts_with("sync-"));
    assert!(
        body["delayTime"].is_u64()
            && body["executionTime"].is_u64()
            && body["workerId"].is_string(),
        "{body}"
    );
    assert_eq!(body["output"]["status"], "succeeded");
    assert_eq!(body["output"]["images"][0]["seed"], 7);

    // run + status: IN_QUEUE at once, then COMPLETED; the webhook gets the final status body.
    let (hook, seen) = receiver().await;
    let (code, queued) = server
        .post(
            "/v2/ep/run",
            auth,
            Some(&json!({"input": quick(8), "webhook": hook})),
        )
        .await;
    assert_eq!(
        (code, queued["status"].as_str()),
        (200, Some("IN_QUEUE")),
        "{queued}"
    );
    let id = queued["id"].as_str().unwrap().to_owned();
    let done = server
        .until_status(&id, KEY, WAIT, |s| s == "COMPLETED")
        .await;
    assert_eq!(
        done["output"]["id"],
        id.as_str(),
        "the job id is the delivery id"
    );
    let (code, synced) = server
        .get(&format!("/v2/ep/status-sync/{id}?wait=1000"), raw)
        .await;
    assert_eq!((code, synced["status"].as_str()), (200, Some("COMPLETED")));
    let end = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap().is_empty() && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hooks = seen.lock().unwrap().clone();
    assert_eq!(hooks.len(), 1, "one webhook per job");
    assert_eq!(
        (hooks[0]["id"].as_str(), hooks[0]["status"].as_str()),
        (Some(id.as_str()), Some("COMPLETED"))
    );

    // FAILED carries the error string with merchgen's code.
    let (_, bad) = server
        .post(
            "/v2/ep/run",
            raw,
            Some(&json!({"input": {"prompt": "x", "width": 100}})),
        )
        .await;
    let failed = server
        .until_status(bad["id"].as_str().unwrap(), KEY, WAIT, |s| s == "FAILED")
        .await;
    let error: Value = serde_json::from_str(failed["error"].as_str().unwrap()).unwrap();
    assert_eq!(error["code"], "invalid_input");
    assert!(failed.get("output").is_none());

    // A running job, two waiting, the third refused with 429; health counts them.
    let (_, running) = server
        .post("/v2/ep/run", raw, Some(&json!({"input": slow()})))
        .await;
    let running = running["id"].as_str().unwrap().to_owned();
    server
        .until_status(&running, KEY, WAIT, |s| s == "IN_PROGRESS")
        .await;
    let (_, q1) = server
        .post("/v2/ep/run", raw, Some(&json!({"input": quick(1)})))
        .await;
    let (_, q2) = server
        .post(
            "/v2/ep/run",
            raw,
            Some(&json!({"input": quick(2), "policy": {"ttl": 300}})),
        )
        .await;
    let (code, full) = server
        .post("/v2/ep/run", raw, Some(&json!({"input": quick(3)})))
        .await;
    assert_eq!(code, 429, "{full}");
    let (_, health) = server.get("/v2/ep/health", raw).await;
    assert_eq!(
        (
            health["jobs"]["inQueue"].as_u64(),
            health["jobs"]["inProgress"].as_u64()
        ),
        (Some(2), Some(1)),
        "{health}"
    );
    assert_eq!(health["workers"]["running"], 1);

    // policy.ttl: gone (404) once expired, even unstarted.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        server
            .get(
                &format!("/v2/ep/status/{}", q2["id"].as_str().unwrap()),
                raw
            )
            .await
            .0,
        404
    );

    // cancel a waiting job, purge the rest, cancel the running one.
    let (code, c1) = server
        .post(
            &format!("/v2/ep/cancel/{}", q1["id"].as_str().unwrap()),
            raw,
            None,
        )
        .await;
    assert_eq!((code, c1["status"].as_str()), (200, Some("CANCELLED")));
    let (_, q4) = server
        .post("/v2/ep/run", raw, Some(&json!({"input": quick(4)})))
        .await;
    let (_, purged) = server.post("/v2/ep/purge-queue", raw, None).await;
    assert_eq!(purged, json!({"removed": 1, "status": "completed"}));
    assert_eq!(
        server
            .get(
                &format!("/v2/ep/status/{}", q4["id"].as_str().unwrap()),
                raw
            )
            .await
            .1["status"],
        "CANCELLED"
    );
    let (_, c2) = server
        .post(&format!("/v2/ep/cancel/{running}"), raw, None)
        .await;
    assert_eq!(c2["status"], "CANCELLED");

    // policy.executionTimeout: TIMED_OUT with the timeout code (waits for the cancelled job to stop).
    let (_, slow_one) = server
        .post(
            "/v2/ep/run",
            raw,
            Some(&json!({"input": slow(), "policy": {"executionTimeout": 300}})),
        )
        .await;
    let timed = server
        .until_status(slow_one["id"].as_str().unwrap(), KEY, WAIT, |s| {
            s == "TIMED_OUT"
        })
        .await;
    let error: Value = serde_json::from_str(timed["error"].as_str().unwrap()).unwrap();
    assert_eq!(error["code"], "timeout");
    assert!(
        timed["executionTime"].as_u64().unwrap() < 5_000,
        "stopped between steps: {timed}"
    );
    assert_eq!(
        server.get(&format!("/v2/ep/status/{running}"), raw).await.1["status"],
        "CANCELLED",
        "cancel is final"
    );

    // runsync that outlasts its wait answers with the current status.
    let started = Instant::now();
    let (_, partial) = server
        .post(
            "/v2/ep/runsync?wait=1000",
            raw,
            Some(&json!({"input": slow()})),
        )
        .await;
    assert!(
        matches!(partial["status"].as_str(), Some("IN_QUEUE" | "IN_PROGRESS")),
        "{partial}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    server
        .post(
            &format!("/v2/ep/cancel/{}", partial["id"].as_str().unwrap()),
            raw,
            None,
        )
        .await;

    // Bad bodies and unknown jobs.
    assert_eq!(
        server
            .post("/v2/ep/run", raw, Some(&json!({"prompt": "no input"})))
            .await
            .0,
        400
    );
    assert_eq!(
        server
            .post(
                "/v2/ep/run",
                raw,
                Some(&json!({"input": {}, "policy": {"ttl": "soon"}}))
            )
            .await
            .0,
        400
    );
    assert_eq!(server.get("/v2/ep/status/nope", raw).await.0, 404);
    assert_eq!(server.post("/v2/ep/cancel/nope", raw, None).await.0, 404);

    let metrics = server.text("/metrics").await;
    for needle in [
        "merchgen_jobs_total{status=\"completed\"} 2",
        "merchgen_jobs_total{status=\"failed\"} 1",
        "merchgen_jobs_total{status=\"timed_out\"} 1",
        "merchgen_jobs_total{status=\"expired\"} 1",
        "merchgen_jobs_rejected_total 1",
        "merchgen_model_ready 1",
        "merchgen_cold_start_seconds ",
        "merchgen_stage_duration_seconds_count{stage=\"denoise\"}",
        "# TYPE merchgen_queue_depth gauge",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle:?} missing from\n{metrics}"
        );
    }
    let cancelled: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("merchgen_jobs_total{status=\"cancelled\"} "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(cancelled >= 4, "{metrics}");
    assert_eq!(server.stop(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_healthz_is_503_until_the_model_is_ready_and_jobs_wait() {
    let state = Arc::new(routes::AppState {
        store: Arc::new(Store::new(4, Duration::from_secs(60))),
        metrics: Arc::new(Metrics::default()),
        hooks: StatusWebhook::new(Default::default()).unwrap(),
        keys: Arc::new(merchgen::intake::serve::keys::ApiKeys::open()),
        ready: false.into(),
        runsync_wait: Duration::from_secs(1),
        execution_timeout: Duration::from_secs(60),
        ttl: Duration::from_secs(60),
        shutdown: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = axum::serve(listener, routes::router(state.clone(), Default::default()));
    tokio::spawn(async move { server.await });
    let get = |p: &str| {
        let url = format!("{base}{p}");
        async move { request(reqwest::Method::GET, &url, None, None).await }
    };

    assert_eq!(get("/healthz").await, (503, json!({"status": "loading"})));
    let (code, queued) = request(
        reqwest::Method::POST,
        &format!("{base}/v2/ep/run"),
        None,
        Some(&json!({"input": quick(1)})),
    )
    .await;
    assert_eq!(
        (code, queued["status"].as_str()),
        (200, Some("IN_QUEUE")),
        "accepted before the model is ready"
    );
    assert_eq!(get("/v2/ep/health").await.1["workers"]["initializing"], 1);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("merchgen_model_ready 0") && metrics.contains("merchgen_queue_depth 1"),
        "{metrics}"
    );
    state.ready.store(true, Ordering::Relaxed);
    assert_eq!(get("/healthz").await, (200, json!({"status": "ready"})));
}

/// With `MERCHGEN_PIPELINE_DEPTH` above one, `serve` keeps that many jobs in flight: a quick job
/// is taken (IN_PROGRESS) while a slow one still generates, and compatible jobs in flight with a
/// batch wait share one forward pass; every job still completes on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_jobs_in_flight_and_batches_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 53, TinyLayout::Folder).unwrap();
    let env = [
        ("MERCHGEN_PIPELINE_DEPTH", "3"),
        ("MERCHGEN_BATCH_WAIT_MS", "3000"),
    ];
    let server = Server::start(&model, dir.path(), &env).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    let (_, slow_one) = server
        .post("/v2/ep/run", None, Some(&json!({"input": slow()})))
        .await;
    let slow_one = id(&slow_one);
    server
        .until_status(&slow_one, "", WAIT, |s| s == "IN_PROGRESS")
        .await;
    let (_, quick_one) = server
        .post("/v2/ep/run", None, Some(&json!({"input": quick(7)})))
        .await;
    let quick_one = id(&quick_one);
    server
        .until_status(&quick_one, "", WAIT, |s| s != "IN_QUEUE")
        .await;
    // At depth 1 the quick job would leave the queue only once the slow one had finished.
    let (_, health) = server.get("/v2/ep/health", None).await;
    let slow_status = server
        .get(&format!("/v2/ep/status/{slow_one}"), None)
        .await
        .1;
    assert_eq!(
        slow_status["status"], "IN_PROGRESS",
        "the quick job was taken while the slow one still ran"
    );
    assert_eq!(health["jobs"]["inProgress"], 2, "{health}");
    for job in [&slow_one, &quick_one] {
        server
            .until_status(job, "", WAIT, |s| s == "COMPLETED")
            .await;
    }

    // Three compatible jobs submitted together: one batched pass.
    let mut ids = Vec::new();
    for seed in 20..23 {
        let (_, job) = server
            .post("/v2/ep/run", None, Some(&json!({"input": quick(seed)})))
            .await;
        ids.push(id(&job));
    }
    for job in &ids {
        let done = server
            .until_status(job, "", WAIT, |s| s == "COMPLETED")
            .await;
        assert_eq!(done["output"]["images"].as_array().map(Vec::len), Some(1));
    }
    let logs = server.logs();
    let batched = logs
        .lines()
        .map(crate::support::logs::strip_ansi)
        .any(|l| l.contains("generating queued jobs in one batch") && l.contains("jobs=3 "));
    assert!(batched, "no batch of the three jobs in the log:\n{logs}");
    assert_eq!(server.stop(), 0);
}
