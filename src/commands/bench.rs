//! `merchgen bench`: per-stage timings. With a model: load, text encoding, each denoising step,
//! VAE decode and PNG encoding through the real pipeline. With `--random-weights`: the FLUX.1
//! architecture built in memory (no files), to measure speed on a GPU without real weights.
//! `merchgen bench mockups`: the mockup renderer.

use crate::cli::{BenchWhat, PipelineBench};
use crate::config::Config;
use crate::encode::{self, EncodeOptions};
use crate::engine::{self, flux::FluxPipeline, flux::LoadOptions, hub, GenerateRequest, Generator};
use anyhow::{Context, Result};
use candle_core::Tensor;
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::flux;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub fn run(config: &Config, what: Option<&BenchWhat>, p: &PipelineBench) -> i32 {
    let result = match what {
        Some(BenchWhat::Mockups { size, iterations }) => bench_mockups(*size, *iterations),
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
    println!(
        "model {} ({}), weights {}, device {}",
        report.info.preset, report.source, report.info.weights, report.info.device
    );
    println!("load: {:.1} ms, {:.3} GB", ms(t), report.bytes as f64 / 1e9);
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
    };
    let cancel = AtomicBool::new(false);
    for i in 0..=p.iterations {
        let out = pipeline
            .generate(&req, &cancel, &mut |_, _| {})
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        for g in &out.images {
            encode::encode(&g.image, &EncodeOptions::default())?;
        }
        let label = if i == 0 {
            "warm-up".to_owned()
        } else {
            format!("run {i}")
        };
        println!(
            "{label}: {}x{} x{} steps {}: encode_text {} ms, steps {:?} ms, denoise {} ms, decode {} ms, png {:.1} ms",
            p.width, p.height, p.images, p.steps, out.timings.encode_text_ms, out.timings.step_ms,
            out.timings.denoise_ms, out.timings.decode_ms, ms(t)
        );
    }
    Ok(())
}

fn bench_random(config: &Config, p: &PipelineBench) -> Result<()> {
    let device = engine::device::open(&config.device)?;
    let dtype = engine::device::dense_dtype(&device);
    let (cfg, vae_cfg, txt_len) = match p.scale.as_str() {
        "full" => (
            flux::model::Config::schnell(),
            flux::autoencoder::Config::schnell(),
            256,
        ),
        "tiny" => (tiny_flux_config(), tiny_vae_config(), 32),
        other => anyhow::bail!("--scale must be `full` or `tiny`, not {other}"),
    };
    let t = Instant::now();
    let vm = VarMap::new();
    let model = flux::model::Flux::new(&cfg, VarBuilder::from_varmap(&vm, dtype, &device))?;
    let vae_vm = VarMap::new();
    let vae = flux::autoencoder::AutoEncoder::new(
        &vae_cfg,
        VarBuilder::from_varmap(&vae_vm, dtype, &device),
    )?;
    println!(
        "random {} FLUX on {} in {:?}: built in {:.0} ms",
        p.scale,
        engine::device::name(&device),
        dtype,
        ms(t)
    );
    let b = p.images as usize;
    let (h, w) = (p.height as usize, p.width as usize);
    let noise = engine::noise::initial_latents(42, b, h, w, &device)?.to_dtype(dtype)?;
    let txt =
        Tensor::randn(0f32, 1.0, (1, txt_len, cfg.context_in_dim), &device)?.to_dtype(dtype)?;
    let vec = Tensor::randn(0f32, 1.0, (1, cfg.vec_in_dim), &device)?.to_dtype(dtype)?;
    let state = flux::sampling::State::new(&txt, &vec, &noise)?;
    let timesteps = flux::sampling::get_schedule(p.steps as usize, None);
    for i in 0..=p.iterations {
        let mut img = state.img.clone();
        let mut steps = Vec::new();
        for window in timesteps.windows(2) {
            let t = Instant::now();
            let t_vec = Tensor::full(window[0] as f32, b, &device)?;
            let pred = flux::WithForward::forward(
                &model,
                &img,
                &state.img_ids,
                &state.txt,
                &state.txt_ids,
                &t_vec,
                &state.vec,
                None,
            )?;
            img = (img + (pred * (window[1] - window[0]))?)?;
            device.synchronize()?;
            steps.push(format!("{:.1}", ms(t)));
        }
        let t = Instant::now();
        let latents = flux::sampling::unpack(&img, h, w)?;
        let pixels = vae.decode(&latents)?;
        device.synchronize()?;
        let decode = ms(t);
        drop(pixels);
        let label = if i == 0 {
            "warm-up".to_owned()
        } else {
            format!("run {i}")
        };
        println!(
            "{label}: {w}x{h} x{b}: steps [{}] ms, vae decode {decode:.1} ms",
            steps.join(", ")
        );
    }
    Ok(())
}

fn tiny_flux_config() -> flux::model::Config {
    flux::model::Config {
        in_channels: 64,
        vec_in_dim: 64,
        context_in_dim: 64,
        hidden_size: 256,
        mlp_ratio: 4.0,
        num_heads: 4,
        depth: 1,
        depth_single_blocks: 1,
        axes_dim: vec![8, 28, 28],
        theta: 10_000,
        qkv_bias: true,
        guidance_embed: false,
    }
}

fn tiny_vae_config() -> flux::autoencoder::Config {
    flux::autoencoder::Config {
        ch: 32,
        ch_mult: vec![1, 1, 1, 1],
        num_res_blocks: 1,
        ..flux::autoencoder::Config::schnell()
    }
}

fn bench_mockups(size: u32, iterations: u32) -> Result<()> {
    let path = "events/assets/design.png";
    let design = image::open(path)
        .with_context(|| format!("reading the sample design {path}"))?
        .to_rgba8();
    println!("{}", crate::mockup::bench::run(&design, size, iterations));
    Ok(())
}
