//! The tiny random-weight FLUX model in the folder layout: CLIP, T5, VAE and both tokenizers,
//! the transformer as dense safetensors and as Q8_0 and Q4_K GGUF, the dev-style (guidance
//! embedding) and Kontext variants, the tiny LoRAs, and a manifest per variant.

use super::{loras, tokenizer_files as tiny_tokenizers};
use crate::engine::files::manifest::{
    FluxFacts, ModelDefaults, ModelManifest, Role, Schedule, VaeFacts,
};
use crate::engine::files::presets::{
    TINY_MANIFEST_DENSE, TINY_MANIFEST_DEV, TINY_MANIFEST_DEV_DENSE, TINY_MANIFEST_KONTEXT,
    TINY_MANIFEST_Q4K, TINY_MANIFEST_Q8,
};
use crate::engine::flux::text::t5_names;
use anyhow::{Context, Result};
use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::{clip, flux, t5};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

/// Sizes of the tiny model. Chosen so that every linear's input is a multiple of 256 where the
/// K-quant file should quantize it, and rope axes sum to the head size.
const HIDDEN: usize = 256;
const HEADS: usize = 4;
const AXES: [usize; 3] = [8, 28, 28];
const TEXT_DIM: usize = 64;

/// Write every file of the folder layout into `dir`.
pub(super) fn write_folder(dir: &Path, seed: u64) -> Result<()> {
    let dir = dir.to_owned();
    std::fs::create_dir_all(dir.join("clip"))?;
    std::fs::create_dir_all(dir.join("t5"))?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    let (t5_tok, t5_vocab) = tiny_tokenizers::t5();
    let (clip_tok, clip_vocab) = tiny_tokenizers::clip();
    std::fs::write(
        dir.join("t5/tokenizer.json"),
        serde_json::to_vec_pretty(&t5_tok)?,
    )?;
    std::fs::write(
        dir.join("clip/tokenizer.json"),
        serde_json::to_vec_pretty(&clip_tok)?,
    )?;

    write_clip(&dir, clip_vocab, &mut rng).context("writing the tiny CLIP")?;
    write_t5(&dir, t5_vocab, &mut rng).context("writing the tiny T5")?;
    write_vae(&dir, &mut rng).context("writing the tiny VAE")?;
    let flux_tensors = random_flux(&mut rng, false)?;
    let dense: std::collections::HashMap<_, _> = flux_tensors.clone().into_iter().collect();
    candle_core::safetensors::save(&dense, dir.join("transformer.safetensors"))?;
    write_gguf(
        &dir.join("transformer-q8_0.gguf"),
        "flux",
        &flux_tensors,
        &[GgmlDType::Q8_0],
    )?;
    write_gguf(
        &dir.join("transformer-q4_k.gguf"),
        "flux",
        &flux_tensors,
        &[GgmlDType::Q4K, GgmlDType::Q8_0],
    )?;
    for (manifest_name, transformer) in [
        (TINY_MANIFEST_Q8, "transformer-q8_0.gguf"),
        (TINY_MANIFEST_Q4K, "transformer-q4_k.gguf"),
    ] {
        let m = manifest(transformer);
        std::fs::write(dir.join(manifest_name), serde_json::to_vec_pretty(&m)?)?;
    }
    let mut m = manifest("transformer.safetensors");
    m.files.insert(Role::T5, "t5/model.safetensors".to_owned());
    std::fs::write(
        dir.join(TINY_MANIFEST_DENSE),
        serde_json::to_vec_pretty(&m)?,
    )?;
    write_dev(&dir, &mut rng).context("writing the tiny FLUX.1-dev-style transformer")?;
    loras::write(&dir, HIDDEN, 4 * HIDDEN, &mut rng).context("writing the tiny LoRAs")?;
    Ok(())
}

fn manifest(transformer: &str) -> ModelManifest {
    let files = BTreeMap::from([
        (Role::Transformer, transformer.to_owned()),
        (Role::Vae, "ae.safetensors".to_owned()),
        (Role::Clip, "clip/model.safetensors".to_owned()),
        (Role::ClipConfig, "clip/config.json".to_owned()),
        (Role::ClipTokenizer, "clip/tokenizer.json".to_owned()),
        (Role::T5, "t5/model-q8_0.gguf".to_owned()),
        (Role::T5Config, "t5/config.json".to_owned()),
        (Role::T5Tokenizer, "t5/tokenizer.json".to_owned()),
    ]);
    ModelManifest {
        version: 1,
        name: format!("tiny-flux ({transformer})"),
        files,
        flux: FluxFacts {
            axes_dim: AXES.to_vec(),
            theta: 10_000,
            schedule: Schedule::Schnell,
            kontext: false,
        },
        vae: VaeFacts {
            scale_factor: 0.3611,
            shift_factor: 0.1159,
        },
        defaults: ModelDefaults {
            width: 64,
            height: 64,
            steps: 4,
            guidance: 0.0,
            max_sequence_length: 256,
        },
        license: None,
    }
}

/// Replace every variable of `vm` with seeded random values suited to its role.
fn randomize(vm: &VarMap, rng: &mut rand_chacha::ChaCha8Rng) -> Result<BTreeMap<String, Tensor>> {
    let data = vm
        .data()
        .lock()
        .map_err(|_| anyhow::anyhow!("varmap lock poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort(); // HashMap order is random; sorted names keep the seed deterministic.
    let mut out = BTreeMap::new();
    for name in names {
        let dims = data[name].as_tensor().dims().to_vec();
        let n: usize = dims.iter().product();
        let (scale, offset) = if dims.len() == 1 {
            if name.ends_with(".bias") {
                (0.02, 0.0)
            } else {
                (0.1, 1.0) // norm gains and QK-norm scales: around 1, never 0
            }
        } else {
            let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
            (1.0 / (fan_in as f32).sqrt(), 0.0)
        };
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let v: f32 = StandardNormal.sample(&mut *rng);
                offset + scale * v
            })
            .collect();
        out.insert(name.clone(), Tensor::from_vec(values, dims, &Device::Cpu)?);
    }
    Ok(out)
}

/// A FLUX.1-dev-style transformer (with a guidance embedding) and its manifests (dev, and the
/// same weights as a Kontext model): dev's schedule
/// and defaults (guidance 3.5, 28 steps, 512 T5 tokens). Drawn after everything else, so the
/// schnell-style files stay what they were for the same seed.
fn write_dev(dir: &Path, rng: &mut rand_chacha::ChaCha8Rng) -> Result<()> {
    let tensors = random_flux(rng, true)?;
    write_gguf(
        &dir.join("transformer-dev-q8_0.gguf"),
        "flux",
        &tensors,
        &[GgmlDType::Q8_0],
    )?;
    let dense: std::collections::HashMap<_, _> = tensors.into_iter().collect();
    candle_core::safetensors::save(&dense, dir.join("transformer-dev.safetensors"))?;
    for (manifest_name, transformer, kontext) in [
        (TINY_MANIFEST_DEV, "transformer-dev-q8_0.gguf", false),
        (
            TINY_MANIFEST_DEV_DENSE,
            "transformer-dev.safetensors",
            false,
        ),
        (TINY_MANIFEST_KONTEXT, "transformer-dev-q8_0.gguf", true),
    ] {
        let mut m = manifest(transformer);
        let kind = if kontext { "kontext" } else { "dev" };
        m.name = format!("tiny-flux-{kind} ({transformer})");
        m.flux.schedule = Schedule::Dev;
        m.flux.kontext = kontext;
        m.defaults.steps = 28;
        m.defaults.guidance = 3.5;
        m.defaults.max_sequence_length = 512;
        m.license = Some(crate::engine::files::manifest::License::FluxDevNonCommercial);
        std::fs::write(dir.join(manifest_name), serde_json::to_vec_pretty(&m)?)?;
    }
    Ok(())
}

fn random_flux(
    rng: &mut rand_chacha::ChaCha8Rng,
    guidance_embed: bool,
) -> Result<BTreeMap<String, Tensor>> {
    let cfg = flux::model::Config {
        in_channels: 64,
        vec_in_dim: TEXT_DIM,
        context_in_dim: TEXT_DIM,
        hidden_size: HIDDEN,
        mlp_ratio: 4.0,
        num_heads: HEADS,
        depth: 1,
        depth_single_blocks: 1,
        axes_dim: AXES.to_vec(),
        theta: 10_000,
        qkv_bias: true,
        guidance_embed,
    };
    let vm = VarMap::new();
    flux::model::Flux::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
    randomize(&vm, rng)
}

fn write_vae(dir: &Path, rng: &mut rand_chacha::ChaCha8Rng) -> Result<()> {
    let cfg = flux::autoencoder::Config {
        resolution: 64,
        in_channels: 3,
        ch: 32,
        out_ch: 3,
        ch_mult: vec![1, 1, 1, 1],
        num_res_blocks: 1,
        z_channels: 16,
        scale_factor: 0.3611,
        shift_factor: 0.1159,
    };
    let vm = VarMap::new();
    flux::autoencoder::AutoEncoder::new(
        &cfg,
        VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )?;
    let tensors: std::collections::HashMap<_, _> = randomize(&vm, rng)?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("ae.safetensors"))?;
    Ok(())
}

fn write_clip(dir: &Path, vocab: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Result<()> {
    let cfg = clip::text_model::ClipTextConfig {
        vocab_size: vocab,
        embed_dim: TEXT_DIM,
        activation: clip::text_model::Activation::QuickGelu,
        intermediate_size: 2 * TEXT_DIM,
        max_position_embeddings: 77,
        pad_with: None,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        projection_dim: TEXT_DIM,
    };
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    clip::text_model::ClipTextTransformer::new(vb.pp("text_model"), &cfg)?;
    let tensors: std::collections::HashMap<_, _> = randomize(&vm, rng)?.into_iter().collect();
    candle_core::safetensors::save(&tensors, dir.join("clip/model.safetensors"))?;
    // The Hugging Face CLIPTextConfig keys, as FLUX's text_encoder/config.json has them.
    let config = json!({
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
        "vocab_size": vocab, "hidden_size": TEXT_DIM, "intermediate_size": 2 * TEXT_DIM,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
        "hidden_act": "quick_gelu", "projection_dim": TEXT_DIM, "layer_norm_eps": 1e-5,
        "bos_token_id": vocab - 2, "eos_token_id": vocab - 1, "pad_token_id": 0
    });
    std::fs::write(
        dir.join("clip/config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    Ok(())
}

fn write_t5(dir: &Path, vocab: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Result<()> {
    let config = json!({
        "architectures": ["T5EncoderModel"], "model_type": "t5",
        "vocab_size": vocab, "d_model": TEXT_DIM, "d_kv": 16, "d_ff": 2 * TEXT_DIM,
        "num_layers": 2, "num_heads": 4, "relative_attention_num_buckets": 32,
        "relative_attention_max_distance": 128, "dropout_rate": 0.0, "layer_norm_epsilon": 1e-6,
        "initializer_factor": 1.0, "feed_forward_proj": "gated-gelu", "is_encoder_decoder": true,
        "tie_word_embeddings": false, "pad_token_id": 0, "eos_token_id": 1,
        "decoder_start_token_id": 0, "use_cache": true
    });
    let cfg: t5::Config = serde_json::from_value(config.clone())?;
    let vm = VarMap::new();
    t5::T5EncoderModel::load(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu), &cfg)?;
    // candle's dense T5 names its embedding `encoder.embed_tokens` when it builds a fresh model;
    // real checkpoints call the shared table `shared`.
    let hf: BTreeMap<String, Tensor> = randomize(&vm, rng)?
        .into_iter()
        .map(|(name, t)| {
            (
                if name == "encoder.embed_tokens.weight" {
                    "shared.weight".to_owned()
                } else {
                    name
                },
                t,
            )
        })
        .collect();
    let dense: std::collections::HashMap<_, _> = hf.clone().into_iter().collect();
    candle_core::safetensors::save(&dense, dir.join("t5/model.safetensors"))?;
    let renamed = hf
        .into_iter()
        .map(|(name, t)| {
            t5_names::to_llama(&name)
                .map(|n| (n, t))
                .with_context(|| format!("no llama.cpp name for T5 tensor {name}"))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    write_gguf(
        &dir.join("t5/model-q8_0.gguf"),
        "t5encoder",
        &renamed,
        &[GgmlDType::Q8_0],
    )?;
    std::fs::write(
        dir.join("t5/config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    Ok(())
}

/// Write tensors as GGUF: each 2-D+ tensor in the first of `types` whose block divides its inner
/// dimension (llama.cpp's fallback rule), 1-D tensors and the rest in F32.
fn write_gguf(
    path: &Path,
    arch: &str,
    tensors: &BTreeMap<String, Tensor>,
    types: &[GgmlDType],
) -> Result<()> {
    let mut qtensors = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let inner = *t.dims().last().unwrap_or(&0);
        let dtype = if t.rank() < 2 {
            GgmlDType::F32
        } else {
            types
                .iter()
                .copied()
                .find(|d| inner % d.block_size() == 0)
                .unwrap_or(GgmlDType::F32)
        };
        qtensors.push((name.as_str(), QTensor::quantize(t, dtype)?));
    }
    let arch_value = gguf_file::Value::String(arch.to_owned());
    let meta = [("general.architecture", &arch_value)];
    let refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(n, q)| (*n, q)).collect();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    gguf_file::write(&mut file, &meta, &refs)?;
    Ok(())
}
