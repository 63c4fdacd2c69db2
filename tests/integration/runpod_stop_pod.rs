//! A generation that fails with a CUDA error leaves the device suspect: the RunPod door posts
//! the failure with `stopPod: true` (RunPod replaces the worker) and takes no further job. No
//! GPU here, so the engine thread runs a generator that fails the way candle's CUDA backend does;
//! the door, the worker, the platform calls and the fake platform are the real ones.

use crate::support;

use clap::Parser;
use merchgen::app::{self, Door};
use merchgen::cli::{Cli, Command};
use merchgen::engine::thread::{EngineOptions, Loaded};
use merchgen::engine::ModelInfo;
use merchgen::engine::{
    EngineError, EngineHandle, GenerateOutput, GenerateRequest, Generator, LoadReport, StepCallback,
};
use merchgen::intake::runpod::{poll, settings::Settings};
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use support::runpod::{Platform, Reply};

struct CudaFault(LoadReport);

impl Generator for CudaFault {
    fn load_report(&self) -> &LoadReport {
        &self.0
    }
    fn generate(
        &mut self,
        _: &GenerateRequest,
        _: &AtomicBool,
        _: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        Err(EngineError::from_candle(
            "DriverError(CUDA_ERROR_ILLEGAL_ADDRESS, \"an illegal memory access was encountered\")",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_device_fault_posts_stop_pod_and_takes_no_more_jobs() {
    let platform = Platform::start().await;
    let job = |id: &str| {
        Reply::Json(
            json!({"id": id, "input": {"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1}}),
        )
    };
    platform.script_take([job("a"), job("b")]);
    let env = platform.worker_env();
    let var = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let cli = Cli::try_parse_from([
        "merchgen",
        "--min-side",
        "64",
        "runpod",
        "--job-take-url",
        &var("RUNPOD_WEBHOOK_GET_JOB"),
        "--job-done-url",
        &var("RUNPOD_WEBHOOK_POST_OUTPUT"),
        "--ping-url",
        &var("RUNPOD_WEBHOOK_PING"),
        "--api-key",
        "rp-key-123",
        "--pod-id",
        "pod-7",
    ])
    .unwrap();
    let Some(Command::Runpod(args)) = &cli.command else {
        panic!("runpod subcommand")
    };
    let info = ModelInfo {
        preset: "fake".into(),
        weights: "none".into(),
        device: "cuda:0".into(),
        load_bytes: None,
        peak_host_memory_bytes: None,
    };
    let report = LoadReport {
        info,
        load_ms: 0,
        bytes: 0,
        source: "test".into(),
        defaults: Default::default(),
        footprint: None,
        free_after_load: None,
        warm_up_ms: None,
    };
    let engine = EngineHandle::start(
        move || Ok(Loaded::generator(CudaFault(report))),
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let worker =
        app::build_worker(&cli.config, Some(engine), Door::Deployed, "inline".into()).unwrap();
    let settings = Settings::platform(&cli.config, args).unwrap();

    let run = tokio::spawn(poll::run(
        Arc::new(worker),
        Arc::new(settings),
        tokio_util::sync::CancellationToken::new(),
    ));
    let code = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the worker stops by itself")
        .unwrap();
    assert_eq!(code, poll::EXIT_REPLACE);

    let result = &platform.results("a")[0];
    assert_eq!(result.json()["stopPod"], true, "{}", result.json());
    assert_eq!(result.error().unwrap()["code"], "generation_failed");
    // With two jobs in flight, "b" may be taken while "a" runs; after the result of "a" (with
    // stopPod) was posted, at most the take already on its way arrives.
    let posted = result.at;
    let late = platform
        .calls_to("job-take")
        .iter()
        .filter(|c| c.at > posted)
        .count();
    assert!(
        late <= 1,
        "no job taken after the device broke ({late} takes after)"
    );
    // Such a job never succeeds on the broken device: it is reported for another worker
    // (`cancelled`, retryable, when it had not started) or failed.
    if let Some(b) = platform.results("b").first() {
        let error = b.error().unwrap_or_else(|| panic!("{}", b.json()));
        assert!(error["retryable"] == true, "{}", b.json());
    }
}
