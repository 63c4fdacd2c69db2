//! The engine thread through its handle: a broken device is flagged only by a device error, and
//! queued compatible jobs share a pass within the batch policy while the others wait.

use super::*;
use crate::engine::ModelInfo;
use crate::engine::StepCallback;
use crate::engine::{
    BatchMember, BatchPolicy, EngineError, GenerateOutput, GenerateRequest, Generator, LoadReport,
};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Fails every generation with the given error text.
struct Failing(LoadReport, &'static str);

impl Generator for Failing {
    fn load_report(&self) -> &LoadReport {
        &self.0
    }
    fn generate(
        &mut self,
        _: &GenerateRequest,
        _: &AtomicBool,
        _: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        Err(EngineError::Failed(self.1.to_owned()))
    }
}

fn report() -> LoadReport {
    let info = ModelInfo {
        preset: "fake".into(),
        weights: "none".into(),
        device: "cpu".into(),
        load_bytes: None,
        peak_host_memory_bytes: None,
    };
    LoadReport {
        info,
        load_ms: 0,
        bytes: 0,
        source: "test".into(),
        defaults: Default::default(),
        footprint: None,
        free_after_load: None,
        warm_up_ms: None,
    }
}

fn request() -> GenerateRequest {
    GenerateRequest {
        prompt: "x".into(),
        width: 16,
        height: 16,
        steps: 1,
        guidance: 0.0,
        seed: 1,
        num_images: 1,
        max_sequence_length: 8,
        init: None,
        noise: None,
        dump_latents: None,
        max_batch: None,
        true_cfg: None,
        loras: Vec::new(),
    }
}

async fn handle_failing_with(text: &'static str) -> EngineHandle {
    let engine = EngineHandle::start(
        move || Ok(Loaded::generator(Failing(report(), text))),
        EngineOptions::default(),
    )
    .await
    .unwrap();
    let result = engine
        .generate(request(), Arc::new(AtomicBool::new(false)), None)
        .await;
    assert!(result.is_err());
    engine
}

#[tokio::test]
async fn device_broken_set_by_cuda_error_only() {
    assert!(
        handle_failing_with("DriverError(CUDA_ERROR_ILLEGAL_ADDRESS)")
            .await
            .device_broken()
    );
    assert!(!handle_failing_with("shape mismatch").await.device_broken());
}

/// Records the prompts of every pass; fails members whose prompt is `fail`.
struct Recorder {
    report: LoadReport,
    passes: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl Recorder {
    fn output(req: &GenerateRequest) -> Result<GenerateOutput, EngineError> {
        if req.prompt == "fail" {
            return Err(EngineError::Failed(
                "this member cannot be generated".into(),
            ));
        }
        let images = (0..req.num_images)
            .map(|i| crate::engine::GeneratedImage {
                image: RgbaImage::new(req.width, req.height),
                seed: req.seed + u64::from(i),
            })
            .collect();
        Ok(GenerateOutput {
            images,
            timings: Default::default(),
        })
    }
}

impl Generator for Recorder {
    fn load_report(&self) -> &LoadReport {
        &self.report
    }
    fn generate(
        &mut self,
        req: &GenerateRequest,
        _: &AtomicBool,
        _: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        self.passes.lock().unwrap().push(vec![req.prompt.clone()]);
        Self::output(req)
    }
    fn batch_images(&self) -> usize {
        4
    }
    fn generate_batch(
        &mut self,
        members: &mut [BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        let prompts = members.iter().map(|m| m.req.prompt.clone()).collect();
        self.passes.lock().unwrap().push(prompts);
        members.iter().map(|m| Self::output(m.req)).collect()
    }
}

async fn recorder(policy: BatchPolicy) -> (EngineHandle, Arc<std::sync::Mutex<Vec<Vec<String>>>>) {
    let passes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let generator = Recorder {
        report: report(),
        passes: passes.clone(),
    };
    let engine = EngineHandle::start(
        move || Ok(Loaded::generator(generator)),
        EngineOptions { batch: policy },
    )
    .await
    .unwrap();
    (engine, passes)
}

fn job(prompt: &str, side: u32, images: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: prompt.into(),
        width: side,
        height: side,
        num_images: images,
        ..request()
    }
}

const WAIT: BatchPolicy = BatchPolicy {
    max_images: 4,
    wait: Duration::from_millis(500),
};

async fn run_all(
    engine: &EngineHandle,
    jobs: Vec<(GenerateRequest, bool)>,
) -> Vec<Result<GenerateOutput, EngineError>> {
    // The test runtime runs one task at a time, in spawn order: the commands queue in order.
    let calls: Vec<_> = jobs
        .into_iter()
        .map(|(req, cancelled)| {
            let engine = engine.clone();
            tokio::spawn(async move {
                engine
                    .generate(req, Arc::new(AtomicBool::new(cancelled)), None)
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for call in calls {
        results.push(call.await.unwrap());
    }
    results
}

#[tokio::test]
async fn queued_compatible_jobs_share_a_pass_and_the_others_wait_their_turn() {
    let (engine, passes) = recorder(WAIT).await;
    let results = run_all(
        &engine,
        vec![
            (job("a", 16, 1), false),
            (job("b", 16, 2), false),
            (job("c", 16, 1), false),
            (job("other size", 32, 1), false),
        ],
    )
    .await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(results[1].as_ref().unwrap().images.len(), 2);
    assert_eq!(
        *passes.lock().unwrap(),
        vec![vec!["a", "b", "c"], vec!["other size"]]
    );
    assert_eq!(engine.batched_jobs(), 3);
}

#[tokio::test]
async fn a_batch_holds_no_more_images_than_allowed_and_no_cancelled_job() {
    let (engine, passes) = recorder(WAIT).await;
    let mut admitted = job("admitted for 2", 16, 1);
    admitted.max_batch = Some(2);
    let results = run_all(
        &engine,
        vec![
            (job("a", 16, 2), false),
            (job("cancelled", 16, 1), true),
            (job("b", 16, 2), false),
            (job("c", 16, 2), false),
            (admitted, false),
        ],
    )
    .await;
    assert!(matches!(results[1], Err(EngineError::Cancelled)));
    // Which jobs meet in a pass depends on when they reach the engine; the limits never do.
    let passes = passes.lock().unwrap().clone();
    let images = |p: &Vec<String>| -> usize {
        p.iter()
            .map(|j| if j == "admitted for 2" { 1 } else { 2 })
            .sum()
    };
    assert!(passes.iter().all(|p| images(p) <= 4), "{passes:?}");
    assert!(passes.iter().all(|p| !p.contains(&"cancelled".to_owned())));
    assert!(
        passes
            .iter()
            .filter(|p| p.contains(&"admitted for 2".to_owned()))
            .all(|p| images(p) <= 2),
        "{passes:?}"
    );
    assert!(results.iter().enumerate().all(|(i, r)| i == 1 || r.is_ok()));
}

#[tokio::test]
async fn a_member_that_fails_in_a_batch_fails_alone() {
    let (engine, passes) = recorder(WAIT).await;
    let results = run_all(
        &engine,
        vec![
            (job("a", 16, 1), false),
            (job("fail", 16, 1), false),
            (job("b", 16, 1), false),
        ],
    )
    .await;
    assert_eq!(passes.lock().unwrap().len(), 1, "one shared pass");
    assert!(results[0].is_ok() && results[2].is_ok());
    assert!(matches!(results[1], Err(EngineError::Failed(_))));
}

#[tokio::test]
async fn without_a_batch_policy_every_job_runs_alone() {
    let (engine, passes) = recorder(BatchPolicy::NONE).await;
    let results = run_all(
        &engine,
        vec![(job("a", 16, 1), false), (job("b", 16, 1), false)],
    )
    .await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(*passes.lock().unwrap(), vec![vec!["a"], vec!["b"]]);
    assert_eq!(engine.batched_jobs(), 0);
}
