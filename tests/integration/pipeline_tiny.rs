//! The whole pipeline on the tiny model: through the `Worker` (outputs, timings, redelivery) and
//! through the real `merchgen invoke` binary (exit codes, outcome JSON).

use crate::support;

use merchgen::app::Door;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::worker::JobRequest;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_runs_tiny_txt2img_and_replays_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 11, TinyLayout::Folder).unwrap();
    let out = dir.path().join("out");
    let cli = support::workers::cli(&model, &[]);
    let worker = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;

    let job = json!({"id": "tiny-1", "prompt": "a corgi astronaut", "width": 64, "height": 64, "num_images": 2, "seed": 5});
    let outcome = worker.handle(JobRequest::new(job.clone(), "d-1")).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.images.len(), 2);
    assert!(outcome.cold_start);
    for (i, img) in outcome.images.iter().enumerate() {
        assert_eq!(img.seed, 5 + i as u64);
        assert_eq!((img.width, img.height), (64, 64));
        let bytes = std::fs::read(out.join(format!("tiny-1/images/{i}.png"))).unwrap();
        assert_eq!(bytes.len() as u64, img.bytes);
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (64, 64));
    }
    let t = outcome.timings_ms.clone().unwrap();
    assert!(
        t.denoise.is_some() && t.decode.is_some() && t.encode_text.is_some() && t.upload.is_some()
    );
    assert!(t.total >= t.denoise.unwrap());
    assert!(
        out.join("tiny-1/result.json").is_file(),
        "result.json written last"
    );
    let runs = worker.engine().unwrap().generations();

    let again = worker.handle(JobRequest::new(job, "d-2")).await;
    assert!(again.replayed, "redelivery answers from result.json");
    assert_eq!(again.images, outcome.images);
    assert_eq!(
        worker.engine().unwrap().generations(),
        runs,
        "the model did not run again"
    );
    assert!(!again.cold_start || again.replayed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_invalid_job_fails_alone_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 12, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(&model, &[]);
    let out = dir.path().join("out");
    let worker = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
    let bad = worker
        .handle(JobRequest::new(
            json!({"id": "bad-1", "prompt": "x", "width": 100}),
            "d",
        ))
        .await;
    let err = bad.error.unwrap();
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("invalid_input", Some("width"))
    );
    assert_eq!(bad.id, "bad-1");
    let good = worker
        .handle(JobRequest::new(
            json!({"prompt": "x", "width": 64, "height": 64}),
            "d-good",
        ))
        .await;
    assert!(good.succeeded(), "{good:?}");
    assert_eq!(good.id, "d-good", "delivery id is the default job id");
}

fn merchgen(args: &[&str], envs: &[(&str, &str)]) -> (i32, serde_json::Value, String) {
    let out = support::binary::offline()
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let value = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        value,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// `merchgen invoke EVENT --out OUT` with these variables.
fn invoke_to(
    event: &str,
    out: &std::path::Path,
    envs: &[(&str, &str)],
) -> (i32, serde_json::Value, String) {
    merchgen(&["invoke", event, "--out", out.to_str().unwrap()], envs)
}

#[test]
fn invoke_binary_exit_codes_and_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 13, TinyLayout::Folder).unwrap();
    // The sticker style of events/txt2img.json cuts its designs out: a tiny matting model.
    let matting = merchgen::engine::matting::write_tiny(&dir.path().join("matting"), 13).unwrap();
    let u2netp = matting
        .iter()
        .find(|f| f.ends_with("u2netp.pth"))
        .expect("tiny u2netp written");
    let out = dir.path().join("out");
    let envs = [
        ("MERCHGEN_MODEL", model.to_str().unwrap()),
        ("MERCHGEN_MIN_SIDE", "64"),
        ("MERCHGEN_DEVICE", "cpu"),
        ("MERCHGEN_MATTING_MODEL", u2netp.to_str().unwrap()),
    ];
    let (code, value, stderr) = invoke_to("events/txt2img.json", &out, &envs);
    assert_eq!(code, 0, "{value} {stderr}");
    assert_eq!(value["status"], "succeeded");
    assert_eq!(value["images"].as_array().unwrap().len(), 2);
    assert_eq!(value["model"]["device"], "cpu");
    assert!(value["timings_ms"]["matting"].is_u64(), "{value}");

    let runpod = dir.path().join("runpod.json");
    std::fs::write(
        &runpod,
        json!({"id": "rp-7", "input": {"prompt": "x", "width": 64, "height": 64}}).to_string(),
    )
    .unwrap();
    let (code, value, _) = invoke_to(runpod.to_str().unwrap(), &out, &envs);
    assert_eq!((code, value["id"].as_str()), (0, Some("rp-7")));

    let (code, value, _) = merchgen(&["invoke", "events/bad-input.json"], &envs);
    assert_eq!(code, 1);
    assert_eq!(value["error"]["code"], "invalid_input");
    assert_eq!(value["error"]["field"], "colour");

    let (code, _, _) = merchgen(&["invoke", "no/such/file.json"], &envs);
    assert_eq!(code, 2);
}

#[test]
fn invoke_with_missing_model_offline_is_model_unavailable_and_names_demo() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("HF_HUB_CACHE", dir.path().to_str().unwrap()),
        ("MERCHGEN_MODEL", "flux-schnell-q4"),
    ];
    let (code, value, stderr) = merchgen(&["invoke", "events/txt2img.json"], &envs);
    assert_eq!(code, 1);
    assert_eq!(value["error"]["code"], "model_unavailable");
    assert!(
        value["error"]["message"]
            .as_str()
            .unwrap()
            .contains("merchgen models fetch"),
        "{value}"
    );
    assert!(stderr.contains("make demo"), "{stderr}");
}

#[test]
fn invoke_mockup_only_event_renders_every_product_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // No model is configured: a mockup-only job must not need one.
    let envs = [("HF_HUB_CACHE", dir.path().to_str().unwrap())];
    let (code, value, stderr) = invoke_to("events/mockup-only.json", &out, &envs);
    assert_eq!(code, 0, "{value} {stderr}");
    let mockups = value["mockups"].as_array().unwrap();
    assert_eq!(mockups.len(), 12, "six products in two colours");
    for m in mockups {
        let key = m["key"].as_str().unwrap();
        let bytes = std::fs::read(out.join(key)).unwrap();
        let img = image::load_from_memory(&bytes).unwrap();
        assert_eq!(
            (img.width(), img.height()),
            (
                m["width"].as_u64().unwrap() as u32,
                m["height"].as_u64().unwrap() as u32
            )
        );
    }
    assert!(
        value.get("images").is_none(),
        "mockup-only jobs generate nothing"
    );
}

#[test]
fn a_bad_mockup_warmup_setting_stops_the_start_and_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let envs = [
        ("HF_HUB_CACHE", dir.path().to_str().unwrap()),
        ("MERCHGEN_MOCKUP_WARMUP", "tshirt,mug@huge"),
    ];
    let out = dir.path().join("out");
    let (code, _, stderr) = invoke_to("events/mockup-only.json", &out, &envs);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("MERCHGEN_MOCKUP_WARMUP") && stderr.contains("mug@huge"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_generation_with_mockups_and_bad_product() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 14, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(&model, &[]);
    let out = dir.path().join("out");
    let worker = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
    let job = json!({"prompt": "x", "width": 64, "height": 64, "mockups": {"products": ["mug", "tshirt"], "colors": ["black"], "size": 256, "print_files": true}});
    let outcome = worker.handle(JobRequest::new(job, "m-1")).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let kinds: Vec<(&str, &str)> = outcome
        .mockups
        .iter()
        .map(|m| (m.product.as_str(), m.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("mug", "mockup"),
            ("mug", "print_file"),
            ("tshirt", "mockup"),
            ("tshirt", "print_file")
        ]
    );
    assert!(outcome
        .mockups
        .iter()
        .filter(|m| m.kind == "mockup")
        .all(|m| m.width.max(m.height) == 256));
    assert!(outcome.timings_ms.unwrap().mockups.is_some());
    let bad = worker.handle(JobRequest::new(json!({"prompt": "x", "width": 64, "height": 64, "mockups": {"products": ["mug", "sock"]}}), "m-2")).await;
    let err = bad.error.unwrap();
    assert_eq!(err.field.as_deref(), Some("mockups.products[1]"));
    assert!(err.message.contains("tshirt"), "{}", err.message);
}

/// Webhooks are delivered in the background: a receiver that takes 10 s per answer does not
/// slow a run of jobs. Measured against a fast receiver in the same test, with a generous bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_webhook_receiver_does_not_slow_the_jobs() {
    use std::time::{Duration, Instant};
    use support::http::{Reply, TestServer};
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("m"), 41, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(
        &model,
        &[
            "--fetch-allow",
            "127.0.0.0/8",
            "--webhook-timeout-secs",
            "30",
        ],
    );
    let worker = support::workers::worker(&cli, Door::Deployed, "inline").await;
    let fast = TestServer::script(vec![Reply::ok("")]).await;
    let slow = TestServer::script(vec![Reply {
        delay: Some(Duration::from_secs(10)),
        ..Reply::ok("")
    }])
    .await;
    let run = |url: String, tag: &'static str| {
        let worker = &worker;
        async move {
            let started = Instant::now();
            for i in 0..3 {
                let job = json!({"id": format!("{tag}-{i}"), "prompt": "a corgi", "width": 64, "height": 64,
                                 "num_inference_steps": 1, "seed": 3,
                                 "webhook": {"url": url, "events": ["started", "completed"]}});
                let outcome = worker.handle(JobRequest::new(job, "d")).await;
                assert!(outcome.succeeded(), "{outcome:?}");
            }
            started.elapsed()
        }
    };
    let with_fast = run(fast.url("/hooks"), "fast").await;
    assert_eq!(worker.drain_webhooks(Duration::from_secs(30)).await, 0);
    assert_eq!(
        fast.requests().len(),
        6,
        "started and completed of three jobs"
    );
    let with_slow = run(slow.url("/hooks"), "slow").await;
    assert!(
        with_slow < with_fast * 3 + Duration::from_secs(3),
        "three jobs took {with_slow:?} with a 10 s receiver, {with_fast:?} with a fast one"
    );
    assert!(
        worker.drain_webhooks(Duration::ZERO).await > 0,
        "deliveries still queued"
    );
}

/// Memory admission: with 1 GiB of device memory (`MERCHGEN_DEVICE_MEMORY_GB`), a 512² image
/// of the tiny model (about 1.5 GiB of activations by the estimate, mostly VAE feature maps)
/// is refused at once naming `width`, before any work; a 64² one runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_fit_in_device_memory_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("m"), 43, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(&model, &["--device-memory-gb", "1"]);
    let worker = support::workers::worker(&cli, Door::Deployed, "inline").await;
    let job = |side: u32| json!({"prompt": "a corgi", "width": side, "height": side, "num_inference_steps": 1});
    let refused = worker.handle(JobRequest::new(job(512), "big")).await;
    let error = refused.error.expect("refused");
    assert_eq!(error.code, merchgen::error::ErrorCode::InvalidInput);
    assert_eq!(error.field.as_deref(), Some("width"));
    assert!(error.message.contains("GiB"), "{}", error.message);
    assert_eq!(
        worker.engine().unwrap().generations(),
        0,
        "nothing reached the device"
    );
    let ok = worker.handle(JobRequest::new(job(64), "small")).await;
    assert!(ok.succeeded(), "{ok:?}");
}

/// Pipelined (two jobs in flight through the pull loop) and batched (three in flight, generated
/// in one forward pass) give byte-identical files to running each job alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_jobs_give_the_same_bytes_as_jobs_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("m"), 45, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(&model, &[]);
    let batching = support::workers::cli(&model, &["--batch-wait-ms", "2000"]);
    let (alone, piped, batched) = (
        dir.path().join("alone"),
        dir.path().join("piped"),
        dir.path().join("batched"),
    );
    assert_eq!(run_three(&cli, 1, alone.clone()).await, 0, "one at a time");
    run_three(&cli, 2, piped.clone()).await;
    assert_eq!(
        run_three(&batching, 3, batched.clone()).await,
        3,
        "the three jobs shared one pass"
    );
    for (name, run) in [("pipelined", &piped), ("batched", &batched)] {
        for i in 0..3 {
            for file in [
                "images/0.png",
                "mockups/mug-white.jpg",
                "mockups/tshirt-white.jpg",
            ] {
                let path = format!("p{i}/{file}");
                let a = std::fs::read(alone.join(&path)).unwrap_or_else(|e| panic!("{path}: {e}"));
                let b = std::fs::read(run.join(&path)).unwrap();
                assert!(a == b, "{path} differs between alone and {name}");
            }
        }
    }
}

/// Three jobs through the pull loop at `depth` into `out`; returns how many shared a pass.
async fn run_three(cli: &merchgen::cli::Cli, depth: usize, out: std::path::PathBuf) -> u64 {
    use merchgen::intake::runtime::memory_source::MemorySource;
    use merchgen::intake::runtime::pull::{self, PullOptions};
    use merchgen::intake::runtime::RunRules;
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    let worker =
        Arc::new(support::workers::worker(cli, Door::Deployed, out.to_str().unwrap()).await);
    let items = (0..3)
            .map(|i| {
                let job = json!({"id": format!("p{i}"), "prompt": "a corgi", "width": 64, "height": 64,
                                 "num_inference_steps": 2, "seed": 10 + i,
                                 "mockups": {"products": ["mug", "tshirt"], "colors": ["white"], "size": 256}});
                (format!("m{i}"), Ok(job))
            })
            .collect::<Vec<_>>();
    let source = Arc::new(MemorySource::with(
        items
            .iter()
            .map(|(id, b)| (id.as_str(), b.clone()))
            .collect(),
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    let opts = PullOptions {
        door: "test",
        rules: RunRules::from_config(&cli.config, "test"),
        backoff: merchgen::backoff::Backoff::NONE,
        receive_backoff: pull::RECEIVE_BACKOFF,
        depth,
        prefetch: true,
    };
    let consumer = tokio::spawn(pull::run(
        source.clone(),
        worker.clone(),
        stop.clone(),
        opts,
    ));
    let started = Instant::now();
    while source.settled().len() < 3 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    assert_eq!(consumer.await.unwrap().acked, 3);
    worker.engine().expect("a model").batched_jobs()
}
