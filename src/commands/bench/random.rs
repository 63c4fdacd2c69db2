//! `merchgen bench --random-weights`: FLUX.1-schnell with random weights at its real size (or
//! tiny, to check the harness on a CPU), in either weight mode, through the loading code real
//! models use. The transformer is written as a Q4_0 GGUF on the spot and loaded with
//! `weights::load_transformer` (dequantized once for `bf16`, kept quantized for `quantized`, so
//! the quantized matmul kernels run); T5-XXL is a Q8_0 GGUF run by candle's quantized T5, as the
//! pipeline runs it; CLIP-L and the VAE are dense random weights. Nothing is downloaded.

use super::memory::PeakMemory;
use super::report::{self, flux_flops_per_step, median, RandomReport, StageTimes};
use super::{random_gguf, random_vb};
use crate::cli::PipelineBench;
use crate::config::Config;
use crate::engine::flux::infer::Shapes;
use crate::engine::flux::text::t5_quantized::QuantizedT5;
use crate::engine::flux::weights::{self, Transformer};
use crate::engine::gguf::QVars;
use crate::engine::{self, flux::noise};
use anyhow::{bail, Context, Result};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Module, Tensor};
use candle_transformers::models::flux::{self, autoencoder::AutoEncoder, sampling};
use candle_transformers::models::{clip, t5};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

/// Model sizes of one scale.
pub(super) struct Sizes {
    pub(super) flux: flux::model::Config,
    pub(super) vae: flux::autoencoder::Config,
    /// A Hugging Face T5 `config.json`, read by both of candle's T5 modules.
    pub(super) t5: serde_json::Value,
    pub(super) clip: clip::text_model::ClipTextConfig,
    /// T5 tokens (256 for schnell) and CLIP tokens (77 at most).
    pub(super) text_tokens: usize,
    pub(super) clip_tokens: usize,
}

impl Sizes {
    fn for_scale(scale: &str) -> Result<Self> {
        let t5 = |vocab: usize,
                  d_model: usize,
                  d_kv: usize,
                  d_ff: usize,
                  layers: usize,
                  heads: usize| {
            json!({
                "vocab_size": vocab, "d_model": d_model, "d_kv": d_kv, "d_ff": d_ff,
                "num_layers": layers, "num_heads": heads, "relative_attention_num_buckets": 32,
                "relative_attention_max_distance": 128, "dropout_rate": 0.0, "layer_norm_epsilon": 1e-6,
                "initializer_factor": 1.0, "feed_forward_proj": "gated-gelu", "is_encoder_decoder": true,
                "tie_word_embeddings": false, "pad_token_id": 0, "eos_token_id": 1,
                "decoder_start_token_id": 0, "use_cache": true
            })
        };
        let clip = |vocab, embed_dim, layers, heads| clip::text_model::ClipTextConfig {
            vocab_size: vocab,
            embed_dim,
            activation: clip::text_model::Activation::QuickGelu,
            intermediate_size: 4 * embed_dim,
            max_position_embeddings: 77,
            pad_with: None,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            projection_dim: embed_dim,
        };
        Ok(match scale {
            // FLUX.1-schnell, its VAE, google/t5-v1_1-xxl's encoder and CLIP-L (openai/clip-vit-large-patch14).
            "full" => Sizes {
                flux: flux::model::Config::schnell(),
                vae: flux::autoencoder::Config::schnell(),
                t5: t5(32128, 4096, 64, 10240, 24, 64),
                clip: clip(49408, 768, 12, 12),
                text_tokens: 256,
                clip_tokens: 77,
            },
            "tiny" => Sizes {
                flux: tiny_flux_config(),
                vae: tiny_vae_config(),
                t5: t5(256, 64, 16, 128, 2, 4),
                clip: clip(1000, 64, 2, 4),
                text_tokens: 32,
                clip_tokens: 16,
            },
            other => bail!("--scale must be `full` or `tiny`, not {other}"),
        })
    }
}

/// A scratch folder for the GGUF files, removed when dropped.
pub(super) struct Scratch(pub(super) PathBuf);

impl Scratch {
    pub(super) fn new() -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("merchgen-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating {} (set TMPDIR to move it)", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Everything loaded, ready to run.
struct Models {
    transformer: Transformer,
    t5: QuantizedT5,
    clip: clip::text_model::ClipTextTransformer,
    vae: AutoEncoder,
    t5_ids: Tensor,
    clip_ids: Tensor,
    act_dtype: DType,
    dense_dtype: DType,
    guidance_embed: bool,
}

/// Milliseconds since `t`, to the microsecond.
pub(super) fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6).round() / 1e3
}

/// The GGUF files written for one run, and what writing and uncaching them gave.
pub(super) struct Written {
    pub(super) flux: PathBuf,
    pub(super) t5: PathBuf,
    pub(super) gguf_bytes: u64,
    pub(super) gguf_write_ms: f64,
    pub(super) t5_gguf_bytes: u64,
    pub(super) gguf_cache: &'static str,
}

pub(super) fn write_files(
    scratch: &Scratch,
    flux_shapes: &Shapes,
    t5_shapes: &Shapes,
) -> Result<Written> {
    let (flux, t5) = (
        scratch.0.join("transformer-q4_0.gguf"),
        scratch.0.join("t5-q8_0.gguf"),
    );
    let t = Instant::now();
    let gguf_bytes = random_gguf::write(&flux, flux_shapes, GgmlDType::Q4_0, 1)?;
    let gguf_write_ms = ms(t);
    let t5_gguf_bytes = random_gguf::write(&t5, t5_shapes, GgmlDType::Q8_0, 2)?;
    // Both files written out (fsync) before anything is timed: the kernel's writeback of a
    // freshly written file must not compete with the reads measured next.
    random_gguf::drop_page_cache(&t5);
    let gguf_cache = random_gguf::drop_page_cache(&flux);
    Ok(Written {
        flux,
        t5,
        gguf_bytes,
        gguf_write_ms,
        t5_gguf_bytes,
        gguf_cache,
    })
}

/// The device, the sizes of the chosen scale, every tensor's shape, and the weight mode.
pub(super) struct Setup {
    pub(super) device: Device,
    pub(super) sizes: Sizes,
    pub(super) flux_shapes: Shapes,
    pub(super) t5_shapes: Shapes,
    pub(super) params: u64,
    pub(super) dense_dtype: DType,
    pub(super) dense: bool,
}

pub(super) fn setup(config: &Config, p: &PipelineBench) -> Result<Setup> {
    let device = engine::device::open(&config.device)?;
    let mut sizes = Sizes::for_scale(&p.scale)?;
    sizes.flux.guidance_embed = match p.variant.as_str() {
        "schnell" => false,
        "dev" | "kontext" => true,
        other => bail!("--variant must be `schnell`, `dev` or `kontext`, not {other}"),
    };
    let flux_shapes = random_vb::probe(|vb| flux::model::Flux::new(&sizes.flux, vb).map(drop))?;
    let t5_cfg: t5::Config = serde_json::from_value(sizes.t5.clone())?;
    let t5_shapes = random_vb::probe(|vb| t5::T5EncoderModel::load(vb, &t5_cfg).map(drop))?;
    let params = random_vb::param_count(&flux_shapes);
    let dense_dtype = engine::device::dense_dtype(&device);
    let dense = weights::choose_dense(
        config.weights,
        params,
        dense_dtype,
        weights::free_device_memory(&device),
    );
    Ok(Setup {
        device,
        sizes,
        flux_shapes,
        t5_shapes,
        params,
        dense_dtype,
        dense,
    })
}

/// Run the benchmark and report.
pub(super) fn run(config: &Config, p: &PipelineBench) -> Result<RandomReport> {
    let Setup {
        device,
        sizes,
        flux_shapes,
        t5_shapes,
        params,
        dense_dtype,
        dense,
    } = setup(config, p)?;
    let scratch = Scratch::new()?;
    eprintln!(
        "bench: {} FLUX on {}, {} weights: writing {} random weights as GGUF in {}",
        p.scale,
        engine::device::name(&device),
        if dense { "dense" } else { "quantized" },
        report::count(params),
        scratch.0.display()
    );
    let written = write_files(&scratch, &flux_shapes, &t5_shapes)?;

    let memory = PeakMemory::start(&device);
    let t = Instant::now();
    let transformer =
        weights::load_transformer(&written.flux, &sizes.flux, dense, dense_dtype, &device)?;
    device.synchronize()?;
    let load_ms = ms(t);
    eprintln!("bench: transformer loaded in {load_ms:.0} ms; loading T5, CLIP and the VAE");
    let mut models = load_rest(transformer, &written.t5, &sizes, dense, &device)?;
    drop(scratch);

    let mut runs = Vec::with_capacity(p.iterations as usize + 1);
    for i in 0..=p.iterations {
        let times = one_run(&mut models, p, &device).with_context(|| format!("run {i}"))?;
        let label = if i == 0 {
            "warm-up".to_owned()
        } else {
            format!("run {i}")
        };
        eprintln!("bench: {label}: {}", times.summary());
        runs.push(times);
    }
    let memory = memory.finish();
    let base = RandomReport {
        bench: "random_weights",
        version: env!("CARGO_PKG_VERSION"),
        cuda_build: cfg!(feature = "cuda"),
        scale: p.scale.clone(),
        device: engine::device::name(&device),
        weights: if dense { "bf16" } else { "quantized" },
        weights_label: if dense {
            format!(
                "{}-from-q4_0",
                crate::engine::files::safetensors::dtype_name(dense_dtype)
            )
        } else {
            "q4_0".to_owned()
        },
        activation_dtype: crate::engine::files::safetensors::dtype_name(models.act_dtype)
            .to_owned(),
        width: p.width,
        height: p.height,
        steps: p.steps,
        images: p.images,
        iterations: p.iterations,
        text_tokens: sizes.text_tokens,
        transformer_params: params,
        model_tflop_per_step: flux_flops_per_step(
            &sizes.flux,
            sizes.text_tokens,
            p.width,
            p.height,
            p.images,
        ) / 1e12,
        gguf_bytes: written.gguf_bytes,
        gguf_write_ms: written.gguf_write_ms,
        gguf_load_ms: load_ms,
        gguf_load_gb_per_s: written.gguf_bytes as f64 / 1e9 / (load_ms / 1e3).max(1e-9),
        gguf_cache: written.gguf_cache,
        t5_gguf_bytes: written.t5_gguf_bytes,
        t5_ms: 0.0,
        clip_ms: 0.0,
        step_ms_median: 0.0,
        step_ms_mean: 0.0,
        step_ms: Vec::new(),
        denoise_ms: 0.0,
        achieved_tflops: 0.0,
        vae_decode_ms: 0.0,
        warmup: StageTimes::default(),
        memory,
    };
    Ok(with_runs(base, runs))
}

/// Fill in the stage figures: the first run is the warm-up, the rest are summarised by medians.
fn with_runs(mut r: RandomReport, mut runs: Vec<StageTimes>) -> RandomReport {
    if runs.is_empty() {
        return r;
    }
    r.warmup = runs.remove(0);
    let pick = |f: fn(&StageTimes) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
    r.t5_ms = pick(|t| t.t5_ms);
    r.clip_ms = pick(|t| t.clip_ms);
    r.vae_decode_ms = pick(|t| t.vae_decode_ms);
    r.denoise_ms = pick(|t| t.step_ms.iter().sum());
    r.step_ms = runs
        .iter()
        .flat_map(|t| t.step_ms.iter().copied())
        .collect();
    r.step_ms_median = median(&r.step_ms);
    r.step_ms_mean = r.step_ms.iter().sum::<f64>() / r.step_ms.len().max(1) as f64;
    if r.step_ms_median > 0.0 {
        r.achieved_tflops = r.model_tflop_per_step / (r.step_ms_median / 1e3);
    }
    r
}

/// The quantized T5 encoder from its GGUF (this bench writes Hugging Face names; the loader takes
/// llama.cpp names too, renamed as tensors come in at no cost).
pub(super) fn load_t5(
    path: &std::path::Path,
    sizes: &Sizes,
    device: &Device,
) -> Result<QuantizedT5> {
    // The engine's own T5 loader: mapped GGUF, llama.cpp names renamed on the way in.
    let cfg: t5::Config = serde_json::from_value(sizes.t5.clone())?;
    let vb = QVars::from_gguf_dequantizing(
        path,
        device,
        engine::flux::text::t5_names::to_hf,
        QuantizedT5::used_dequantized,
    )?;
    Ok(QuantizedT5::new(&cfg, &vb)?)
}

/// Load T5 from its GGUF and build CLIP and the VAE with random dense weights.
fn load_rest(
    transformer: Transformer,
    t5_path: &std::path::Path,
    sizes: &Sizes,
    dense: bool,
    device: &Device,
) -> Result<Models> {
    let dense_dtype = engine::device::dense_dtype(device);
    let t5 = load_t5(t5_path, sizes, device)?;
    let clip = clip::text_model::ClipTextTransformer::new(
        random_vb::random(dense_dtype, device).pp("text_model"),
        &sizes.clip,
    )?;
    let vae = AutoEncoder::new(&sizes.vae, random_vb::random(dense_dtype, device))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let t5_vocab = sizes.t5["vocab_size"].as_u64().unwrap_or(2) as u32;
    let t5_ids: Vec<u32> = (0..sizes.text_tokens)
        .map(|_| rng.random_range(2..t5_vocab))
        .collect();
    let clip_ids: Vec<u32> = (0..sizes.clip_tokens)
        .map(|_| rng.random_range(0..sizes.clip.vocab_size as u32))
        .collect();
    device.synchronize()?;
    Ok(Models {
        transformer,
        t5,
        clip,
        vae,
        t5_ids: Tensor::new(t5_ids.as_slice(), device)?.unsqueeze(0)?,
        clip_ids: Tensor::new(clip_ids.as_slice(), device)?.unsqueeze(0)?,
        act_dtype: if dense { dense_dtype } else { DType::F32 },
        dense_dtype,
        guidance_embed: sizes.flux.guidance_embed,
    })
}

/// One generation: T5, CLIP, each denoising step (Euler in f32, as the pipeline), VAE decode.
fn one_run(m: &mut Models, p: &PipelineBench, device: &Device) -> Result<StageTimes> {
    let mut times = StageTimes::default();
    let t = Instant::now();
    let txt = m.t5.forward(&m.t5_ids)?.to_dtype(m.act_dtype)?;
    device.synchronize()?;
    times.t5_ms = ms(t);
    let t = Instant::now();
    let vec = m.clip.forward(&m.clip_ids)?.to_dtype(m.act_dtype)?;
    device.synchronize()?;
    times.clip_ms = ms(t);

    let (b, h, w) = (p.images as usize, p.height as usize, p.width as usize);
    let latents = noise::initial_latents(42, b, h, w, device)?.to_dtype(m.act_dtype)?;
    let state = sampling::State::new(&txt, &vec, &latents)?;
    let mut img = state.img.to_dtype(DType::F32)?;
    // dev and Kontext: the guidance embedding; Kontext: a reference photo's tokens (as many as
    // the image's) beside the image's at every step.
    let guidance = Tensor::full(3.5f32, b, device)?;
    let guidance = m.guidance_embed.then_some(&guidance);
    let reference = if p.variant == "kontext" {
        Some(engine::flux::kontext::WithReference {
            model: m.transformer.as_forward(),
            img: state.img.clone(),
            ids: engine::flux::kontext::reference_ids(&state.img_ids)?,
        })
    } else {
        None
    };
    let model: &dyn flux::WithForward = match &reference {
        Some(r) => r,
        None => m.transformer.as_forward(),
    };
    for window in sampling::get_schedule(p.steps as usize, None).windows(2) {
        let t = Instant::now();
        img = engine::flux::euler_step(
            model,
            &state,
            &img,
            (window[0], window[1]),
            guidance,
            m.act_dtype,
        )?;
        device.synchronize()?;
        times.step_ms.push(ms(t));
    }
    let t = Instant::now();
    let latents = sampling::unpack(&img, h, w)?.to_dtype(m.dense_dtype)?;
    let pixels = m.vae.decode(&latents)?;
    device.synchronize()?;
    times.vae_decode_ms = ms(t);
    drop(pixels);
    Ok(times)
}

/// The tiny scale of the harness check: a one-block FLUX and a narrow VAE.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sizes_are_schnell_t5_xxl_and_clip_l() {
        let s = Sizes::for_scale("full").unwrap();
        let t5_cfg: t5::Config = serde_json::from_value(s.t5.clone()).unwrap();
        let t5 = random_vb::probe(|vb| t5::T5EncoderModel::load(vb, &t5_cfg).map(drop)).unwrap();
        // google/t5-v1_1-xxl's encoder: 4.76 billion parameters, in Hugging Face names.
        let params = random_vb::param_count(&t5);
        assert!((4_700_000_000..4_800_000_000).contains(&params), "{params}");
        assert!(t5.contains_key("shared.weight"));
        assert!(t5.contains_key("encoder.block.23.layer.1.DenseReluDense.wi_1.weight"));
        let clip = random_vb::probe(|vb| {
            clip::text_model::ClipTextTransformer::new(vb.pp("text_model"), &s.clip).map(drop)
        })
        .unwrap();
        let clip_params = random_vb::param_count(&clip);
        assert!(
            (120_000_000..125_000_000).contains(&clip_params),
            "CLIP-L text: {clip_params}"
        );
        assert_eq!(s.text_tokens, 256);
        assert!(Sizes::for_scale("huge").is_err());
    }
}
