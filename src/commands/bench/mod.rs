//! `merchgen bench`: per-stage timings. With a model: load, text encoding, each denoising step,
//! VAE decode and PNG encoding through the real pipeline. With `--random-weights`: FLUX.1 with
//! random weights at full size or tiny, in either weight mode (`random`), to measure speed on a
//! GPU without real weights. `--json` prints one JSON line for scripts.
//! `merchgen bench mockups`: the mockup renderer. `merchgen bench finishing`: matting, x4
//! upscale and a print file on one design. `merchgen bench print`: the print-shop deliverables.

pub(crate) mod finishing;
pub mod jobs;
mod lora;
mod memory;
mod print;
mod random;
mod random_gguf;
mod random_load;
mod random_vb;
mod report;

use crate::cli::{BenchWhat, PipelineBench};
use crate::config::Config;
use crate::encode::{self, EncodeOptions};
use crate::engine::files::hub;
use crate::engine::{self, flux::FluxPipeline, flux::LoadOptions, GenerateRequest, Generator};
use anyhow::{Context, Result};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub fn run(config: &Config, what: Option<&BenchWhat>, p: &PipelineBench) -> i32 {
    let result = match what {
        Some(BenchWhat::Mockups { size, iterations }) => bench_mockups(*size, *iterations),
        Some(BenchWhat::Finishing(b)) => finishing::run(config, b),
        Some(BenchWhat::Print(b)) => print::run(b),
        // Async: `main` runs it (`jobs::run`); never reached.
        Some(BenchWhat::Pipeline(_)) => Err(anyhow::anyhow!("run through `jobs::run`")),
        None if p.random_weights && p.lora.is_some() => {
            lora::run(config, p, p.lora.unwrap_or(32)).map(|report| println!("{report}"))
        }
        None if p.random_weights && p.load_only => {
            random_load::load_only(config, p).map(|report| {
                println!("{report}");
            })
        }
        None if p.random_weights => bench_random(config, p),
        None => bench_model(config, p),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("merchgen bench: {e:#}");
            1
        }
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn bench_model(config: &Config, p: &PipelineBench) -> Result<()> {
    let device = engine::device::open(&config.device)?;
    let t = Instant::now();
    let model = hub::resolve(&config.model, &config.hub_settings(), true)?;
    let mut pipeline = FluxPipeline::load(
        &model,
        &device,
        &LoadOptions {
            weights: config.weights,
            max_batch: config.max_batch,
        },
    )?;
    let report = pipeline.load_report().clone();
    let load_ms = ms(t);
    if !p.json {
        println!(
            "model {} ({}), weights {}, device {}",
            report.info.preset, report.source, report.info.weights, report.info.device
        );
        println!("load: {load_ms:.1} ms, {:.3} GB", report.bytes as f64 / 1e9);
    }
    let req = GenerateRequest {
        prompt: "a corgi astronaut, bold outlines, sticker".into(),
        width: p.width,
        height: p.height,
        steps: p.steps,
        guidance: report.defaults.guidance,
        seed: 42,
        num_images: p.images,
        max_sequence_length: report.defaults.max_sequence_length,
        init: None,
        noise: None,
        dump_latents: None,
        max_batch: None,
        true_cfg: None,
        loras: Vec::new(),
    };
    let cancel = AtomicBool::new(false);
    let mut runs = Vec::new();
    for i in 0..=p.iterations {
        let out = pipeline
            .generate(&req, &cancel, &mut |_, _| {})
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        for g in &out.images {
            encode::encode(&g.image, &EncodeOptions::default())?;
        }
        let png_ms = ms(t);
        let label = if i == 0 {
            "warm-up".to_owned()
        } else {
            format!("run {i}")
        };
        let tm = &out.timings;
        if !p.json {
            println!(
                "{label}: {}x{} x{} steps {}: encode_text {} ms, steps {:?} ms, denoise {} ms, decode {} ms, png {png_ms:.1} ms",
                p.width, p.height, p.images, p.steps, tm.encode_text_ms, tm.step_ms, tm.denoise_ms, tm.decode_ms
            );
        }
        runs.push(serde_json::json!({"run": label, "encode_text_ms": tm.encode_text_ms, "step_ms": tm.step_ms,
            "denoise_ms": tm.denoise_ms, "decode_ms": tm.decode_ms, "png_ms": png_ms}));
    }
    if p.json {
        let line = serde_json::json!({"bench": "model", "model": report.info.preset, "source": report.source,
            "weights": report.info.weights, "device": report.info.device, "load_ms": load_ms, "load_bytes": report.bytes,
            "width": p.width, "height": p.height, "steps": p.steps, "images": p.images, "runs": runs});
        println!("{line}");
    }
    Ok(())
}

fn bench_random(config: &Config, p: &PipelineBench) -> Result<()> {
    let report = random::run(config, p)?;
    if p.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print();
    }
    Ok(())
}

fn bench_mockups(size: u32, iterations: u32) -> Result<()> {
    let path = "events/assets/design.png";
    let design = image::open(path)
        .with_context(|| format!("reading the sample design {path}"))?
        .to_rgba8();
    println!("{}", crate::mockup::bench::run(&design, size, iterations));
    Ok(())
}
