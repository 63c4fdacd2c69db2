//! `merchgen bench pipeline`: a run of jobs, each with six mockups, through the pull doors'
//! consumer loop (an in-memory queue standing in for SQS) into the configured destination
//! (`MERCHGEN_OUTPUT`: the local S3 server in `bench/pipeline.sh`, else a temporary folder),
//! once per pipeline depth in one process: depth 1 is one job at a time (every stage after the
//! other), depth 2 and 3 let the engine generate the next job while the last one renders,
//! encodes and uploads.
//!
//! `--simulate-gpu-ms N` swaps the engine for a benchmark-only stand-in that holds the engine
//! thread N ms per denoising step without using the CPU, as a GPU would, so that on a CPU-only
//! box generation and mockups do not fight for the same cores. It exists only here: no job,
//! door or setting can reach it. Without the flag the configured model runs (the tiny one in
//! `bench/pipeline.sh`), to show the real engine goes through the same path.

use crate::app::{self, Door};
use crate::cli::JobsBench;
use crate::config::Config;
use crate::engine::thread::{EngineOptions, Loaded};
use crate::engine::ModelInfo;
use crate::engine::{
    BatchPolicy, EngineError, EngineHandle, GenerateOutput, GenerateRequest, GeneratedImage,
    Generator, LoadReport, StageTimings, StepCallback,
};
use crate::intake::runtime::memory_source::MemorySource;
use crate::intake::runtime::pull::{self, PullOptions};
use crate::intake::runtime::RunRules;
use crate::worker::Worker;
use anyhow::Result;
use image::RgbaImage;
use rand::{RngCore, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The stand-in GPU: sleeps on the engine thread, uses no CPU, returns seeded noise images.
struct SimulatedGpu {
    step: Duration,
    /// Each image beyond the first in a pass adds this fraction of `step`.
    batch_extra: f64,
    report: LoadReport,
}

impl SimulatedGpu {
    fn new(step: Duration, batch_extra: f64) -> Self {
        SimulatedGpu {
            step,
            batch_extra,
            report: LoadReport {
                info: ModelInfo {
                    preset: "simulated-gpu (benchmark only)".into(),
                    weights: "none".into(),
                    device: "simulated".into(),
                    load_bytes: None,
                    peak_host_memory_bytes: None,
                },
                load_ms: 0,
                bytes: 0,
                source: "merchgen bench pipeline --simulate-gpu-ms".into(),
                defaults: Default::default(),
                footprint: None,
                free_after_load: None,
                warm_up_ms: None,
            },
        }
    }
}

impl Generator for SimulatedGpu {
    fn load_report(&self) -> &LoadReport {
        &self.report
    }

    fn generate(
        &mut self,
        req: &GenerateRequest,
        cancel: &AtomicBool,
        on_step: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        let started = Instant::now();
        for step in 1..=req.steps {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            std::thread::sleep(self.step);
            on_step(step, req.steps);
        }
        Ok(noise_output(req, started))
    }

    fn batch_images(&self) -> usize {
        64
    }

    fn generate_batch(
        &mut self,
        members: &mut [crate::engine::BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        let started = Instant::now();
        let images: u32 = members.iter().map(|m| m.req.num_images).sum();
        let step = self
            .step
            .mul_f64(1.0 + self.batch_extra * f64::from(images.saturating_sub(1)));
        let steps = members.first().map_or(0, |m| m.req.steps);
        for done in 1..=steps {
            std::thread::sleep(step);
            for m in members.iter_mut() {
                (m.on_step)(done, steps);
            }
        }
        members
            .iter()
            .map(|m| {
                if m.cancel.load(Ordering::Relaxed) {
                    Err(EngineError::Cancelled)
                } else {
                    Ok(noise_output(m.req, started))
                }
            })
            .collect()
    }
}

/// Seeded noise images for a request, as the stand-in's output.
fn noise_output(req: &GenerateRequest, started: Instant) -> GenerateOutput {
    let images = (0..req.num_images)
        .map(|i| {
            let seed = req.seed + u64::from(i);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut image = RgbaImage::new(req.width, req.height);
            rng.fill_bytes(&mut image);
            image.pixels_mut().for_each(|p| p.0[3] = 255);
            GeneratedImage { image, seed }
        })
        .collect();
    GenerateOutput {
        images,
        timings: StageTimings {
            denoise_ms: started.elapsed().as_millis() as u64,
            ..StageTimings::default()
        },
    }
}

pub async fn run(config: &Config, b: &JobsBench) -> i32 {
    match bench(config, b).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("merchgen bench pipeline: {e:#}");
            1
        }
    }
}

/// The engine the runs go through: the stand-in or the configured model, batching by `policy`.
async fn engine(config: &Config, b: &JobsBench, policy: BatchPolicy) -> Result<EngineHandle> {
    Ok(match b.simulate_gpu_ms {
        Some(ms) => {
            let gpu = SimulatedGpu::new(Duration::from_millis(ms), b.simulate_batch_extra);
            EngineHandle::start(
                move || Ok(Loaded::generator(gpu)),
                EngineOptions { batch: policy },
            )
            .await?
        }
        None => {
            // The configured model: every job alone, or batching by `policy`.
            let mut config = config.clone();
            config.max_batch = policy.max_images;
            config.batch_wait_ms = policy.wait.as_millis() as u64;
            app::start_engine(&config).await?
        }
    })
}

async fn bench(config: &Config, b: &JobsBench) -> Result<()> {
    let folder =
        std::env::temp_dir().join(format!("merchgen-bench-{}", uuid::Uuid::new_v4().simple()));
    let destination = config
        .output
        .clone()
        .unwrap_or_else(|| folder.display().to_string());
    let worker = |engine: EngineHandle| -> Result<Arc<Worker>> {
        let parts = app::build_parts(config, Door::Deployed, destination.clone())?;
        Ok(Arc::new(Worker::new(Some(engine), parts)))
    };
    let alone = worker(engine(config, b, BatchPolicy::NONE).await?)?;
    let products: Vec<String> = worker_products();
    let mut runs = Vec::new();
    let mut plan: Vec<(String, usize, Arc<Worker>)> = b
        .depths
        .iter()
        .map(|&d| (format!("depth {d}"), d, alone.clone()))
        .collect();
    if b.batch > 1 {
        let policy = BatchPolicy {
            max_images: b.batch,
            wait: Duration::from_millis(b.batch_wait_ms),
        };
        let batched = worker(engine(config, b, policy).await?)?;
        // Twice the batch in flight: one batch generates while the last one's jobs render,
        // encode and upload (at depth = batch the next batch could not gather until they settle).
        let depth = 2 * b.batch as usize;
        plan.push((
            format!("batched {} (depth {depth})", b.batch),
            depth,
            batched,
        ));
    }
    for (run, (label, depth, worker)) in plan.into_iter().enumerate() {
        let bodies = (0..b.jobs)
            .map(|i| {
                let body = serde_json::json!({
                    "id": format!("bench-r{run}-{i}-{}", uuid::Uuid::new_v4().simple()),
                    "prompt": "a corgi astronaut, sticker", "width": b.size, "height": b.size,
                    "num_inference_steps": b.steps, "seed": i,
                    "mockups": {"products": products, "size": b.mockup_size},
                });
                (format!("m{i}"), Ok(body))
            })
            .collect::<Vec<_>>();
        let items = bodies
            .iter()
            .map(|(id, body)| (id.as_str(), body.clone()))
            .collect();
        let source = Arc::new(MemorySource::with(items));
        let stop = CancellationToken::new();
        let opts = PullOptions {
            door: "bench",
            rules: RunRules::from_config(config, "bench"),
            backoff: crate::backoff::Backoff::NONE,
            receive_backoff: pull::RECEIVE_BACKOFF,
            depth,
            prefetch: true,
        };
        let batched_before = worker.engine().map_or(0, EngineHandle::batched_jobs);
        let started = Instant::now();
        let consumer = tokio::spawn(pull::run(
            source.clone(),
            worker.clone(),
            stop.clone(),
            opts,
        ));
        while source.settled().len() < b.jobs as usize {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let wall = started.elapsed().as_secs_f64();
        stop.cancel();
        let report = consumer.await?;
        let batched = worker.engine().map_or(0, EngineHandle::batched_jobs) - batched_before;
        runs.push(
            serde_json::json!({"run": label, "depth": depth, "wall_s": wall,
            "acked": report.acked, "jobs_batched": batched}),
        );
        if !b.json {
            println!(
                "{label}: {} jobs in {wall:.2} s ({} acknowledged, {batched} generated in shared passes)",
                b.jobs, report.acked
            );
        }
        worker.drain_webhooks(Duration::from_secs(5)).await;
    }
    let engine_s = b
        .simulate_gpu_ms
        .map(|ms| f64::from(b.jobs) * f64::from(b.steps) * ms as f64 / 1000.0);
    let batched_engine_s = b.simulate_gpu_ms.filter(|_| b.batch > 1).map(|ms| {
        let passes = f64::from(b.jobs.div_ceil(b.batch));
        let step = ms as f64 * (1.0 + b.simulate_batch_extra * f64::from(b.batch - 1));
        passes * f64::from(b.steps) * step / 1000.0
    });
    let sequential = runs
        .iter()
        .find(|r| r["run"] == "depth 1")
        .and_then(|r| r["wall_s"].as_f64());
    let summary = serde_json::json!({
        "jobs": b.jobs, "size": b.size, "steps": b.steps, "mockups_per_job": products.len(),
        "mockup_size": b.mockup_size, "simulate_gpu_ms": b.simulate_gpu_ms,
        "destination": if config.output.is_some() { destination.as_str() } else { "temporary folder" },
        "engine_s": engine_s,
        "batched_engine_s": batched_engine_s, "simulate_batch_extra": b.simulate_batch_extra,
        "cpu_stages_s": engine_s.zip(sequential).map(|(e, s)| s - e),
        "runs": runs,
    });
    if b.json {
        println!("{summary}");
    } else if let (Some(e), Some(s)) = (engine_s, sequential) {
        let cpu = s - e;
        println!(
            "engine {e:.2} s, CPU stages {cpu:.2} s (depth 1 wall less engine); goal: pipelined within 1.2 x max = {:.2} s",
            1.2 * e.max(cpu)
        );
        if let Some(be) = batched_engine_s {
            println!(
                "batched engine {be:.2} s (each extra image adds {} of a step); batched goal: within 1.2 x max(batched engine, CPU stages) = {:.2} s",
                b.simulate_batch_extra,
                1.2 * be.max(cpu)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&folder);
    Ok(())
}

fn worker_products() -> Vec<String> {
    crate::mockup::MockupLibrary::builtin()
        .products()
        .into_iter()
        .map(str::to_owned)
        .collect()
}
