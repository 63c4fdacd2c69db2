//! `merchgen bench --random-weights --lora RANK`: what a job's LoRAs cost on the random-weight
//! FLUX transformer of the chosen scale, through the engine's own LoRA code (`LoraState`): two
//! random rank-`RANK` LoRAs in kohya naming over every attention and MLP layer of every block
//! (what trainers target), applied the first time (read, parsed, stacked, merged or set as side
//! paths), switched A→B→A, and taken off; then, with `--steps` above 0, one denoising step with
//! and without LoRA B in the same run (the side path's per-step cost on quantized weights; merged
//! weights cost nothing per step). Text embeddings are random: only the transformer is timed.

use super::random::{ms, setup, Scratch};
use super::random_gguf;
use super::report::median;
use crate::cli::PipelineBench;
use crate::config::Config;
use crate::engine::files::lora_cache::file_sha256;
use crate::engine::flux::lora::LoraState;
use crate::engine::flux::weights;
use crate::engine::LoraInput;
use crate::engine::{self, flux::noise};
use anyhow::Result;
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::sampling;
use serde_json::json;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

/// Switches timed (A→B and B→A alternately) and unapplies.
const ROUNDS: usize = 3;

/// A random kohya LoRA of `rank` over `layers` (BFL module, in, out) in bf16, written to `path`.
fn write_lora(path: &Path, layers: &[(String, usize, usize)], rank: usize) -> Result<()> {
    let mut tensors = HashMap::new();
    for (module, input, output) in layers {
        let down = (Tensor::randn(0f32, 1.0, (rank, *input), &Device::Cpu)?
            * (1.0 / (*input as f64).sqrt()))?
        .to_dtype(DType::BF16)?;
        let up = (Tensor::randn(0f32, 1.0, (*output, rank), &Device::Cpu)? * 0.01)?
            .to_dtype(DType::BF16)?;
        let name = format!("lora_unet_{}", module.replace('.', "_"));
        tensors.insert(format!("{name}.lora_down.weight"), down);
        tensors.insert(format!("{name}.lora_up.weight"), up);
        tensors.insert(
            format!("{name}.alpha"),
            Tensor::new(rank as f32, &Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&tensors, path)?;
    Ok(())
}

pub(super) fn run(config: &Config, p: &PipelineBench, rank: usize) -> Result<serde_json::Value> {
    let s = setup(config, p)?;
    let scratch = Scratch::new()?;
    let flux_path = scratch.0.join("transformer-q4_0.gguf");
    eprintln!(
        "bench lora: {} FLUX on {}, {} weights, rank {rank}: writing the transformer",
        p.scale,
        engine::device::name(&s.device),
        if s.dense { "dense" } else { "quantized" }
    );
    random_gguf::write(&flux_path, &s.flux_shapes, GgmlDType::Q4_0, 1)?;
    let mut model =
        weights::load_transformer(&flux_path, &s.sizes.flux, s.dense, s.dense_dtype, &s.device)?;
    let layers: Vec<(String, usize, usize)> = model
        .linears_mut()
        .into_iter()
        .filter(|(n, _)| {
            (n.starts_with("double_blocks.") || n.starts_with("single_blocks."))
                && !n.contains("mod")
        })
        .map(|(n, l)| (n, l.in_dim(), l.out_dim()))
        .collect();
    let files = [
        scratch.0.join("lora-a.safetensors"),
        scratch.0.join("lora-b.safetensors"),
    ];
    for f in &files {
        write_lora(f, &layers, rank)?;
    }
    let lora_bytes = std::fs::metadata(&files[0])?.len();
    let input = |i: usize| -> Result<Vec<LoraInput>> {
        Ok(vec![LoraInput {
            index: 0,
            path: files[i].clone(),
            sha256: file_sha256(&files[i])?,
            scale: 1.0,
            skip_text_encoder: false,
        }])
    };
    let (a, b) = (input(0)?, input(1)?);
    let mut state = LoraState::default();
    let timed = |state: &mut LoraState, model: &mut weights::Transformer, set: &[LoraInput]| {
        let t = Instant::now();
        let parts = state.ensure(model, set, &s.device)?;
        s.device.synchronize()?;
        anyhow::Ok((ms(t), parts))
    };
    let (first_ms, first) = timed(&mut state, &mut model, &a)?;
    eprintln!(
        "bench lora: first apply {first_ms:.0} ms (read and parse {} ms, apply {} ms)",
        first.load_ms, first.apply_ms
    );
    // B is read once here; the timed switches then find both parsed, as a worker alternating
    // between two LoRAs does.
    timed(&mut state, &mut model, &b)?;
    // Each round: switch to the other LoRA (timed), take it off (timed), put it back (untimed),
    // so every timed switch is a real one.
    let (mut switch, mut off) = (Vec::new(), Vec::new());
    let mut on_b = true;
    for _ in 0..ROUNDS {
        let next = if on_b { &a } else { &b };
        switch.push(timed(&mut state, &mut model, next)?.0);
        off.push(timed(&mut state, &mut model, &[])?.0);
        timed(&mut state, &mut model, next)?;
        on_b = !on_b;
    }
    eprintln!(
        "bench lora: switch {:.0} ms, take off {:.0} ms (medians of {ROUNDS})",
        median(&switch),
        median(&off)
    );
    let mut steps = json!(null);
    if p.steps > 0 {
        let (with, without) = step_costs(&mut model, &mut state, &b, p, &s.sizes.flux, &s.device)?;
        let overhead = median(&with) / median(&without) - 1.0;
        eprintln!(
            "bench lora: one step {:.0} ms without, {:.0} ms with the LoRA ({:+.1} %)",
            median(&without),
            median(&with),
            overhead * 100.0
        );
        steps = json!({"step_ms_without": without, "step_ms_with": with,
            "step_ms_without_median": median(&without), "step_ms_with_median": median(&with),
            "step_overhead": overhead, "width": p.width, "height": p.height});
    }
    Ok(json!({
        "bench": "lora", "scale": p.scale, "device": engine::device::name(&s.device),
        "weights": if s.dense { "bf16" } else { "quantized" }, "rank": rank,
        "layers": layers.len(), "lora_file_bytes": lora_bytes,
        "first_apply_ms": first_ms, "first_read_parse_ms": first.load_ms, "first_apply_only_ms": first.apply_ms,
        "switch_ms": switch, "switch_ms_median": median(&switch),
        "unapply_ms": off, "unapply_ms_median": median(&off), "steps": steps,
    }))
}

/// One denoising step at the bench's size, alternately without and with `lora`
/// (`p.iterations` of each after one warm-up of each).
fn step_costs(
    model: &mut weights::Transformer,
    state: &mut LoraState,
    lora: &[LoraInput],
    p: &PipelineBench,
    cfg: &candle_transformers::models::flux::model::Config,
    device: &Device,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let act = model.act_dtype();
    let txt = Tensor::randn(0f32, 1.0, (1, 256, cfg.context_in_dim), device)?.to_dtype(act)?;
    let vec = Tensor::randn(0f32, 1.0, (1, cfg.vec_in_dim), device)?.to_dtype(act)?;
    let latents = noise::initial_latents(
        1,
        p.images as usize,
        p.height as usize,
        p.width as usize,
        device,
    )?
    .to_dtype(act)?;
    let st = sampling::State::new(&txt, &vec, &latents)?;
    let guidance = Tensor::full(3.5f32, p.images as usize, device)?;
    let g = cfg.guidance_embed.then_some(&guidance);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for i in 0..=p.iterations {
        for (set, out) in [(&[][..], &mut without), (lora, &mut with)] {
            state.ensure(model, set, device)?;
            let t = Instant::now();
            let img =
                engine::flux::euler_step(model.as_forward(), &st, &st.img, (1.0, 0.75), g, act)?;
            device.synchronize()?;
            drop(img);
            if i > 0 {
                out.push(ms(t));
            }
        }
    }
    Ok((with, without))
}
