//! `merchgen models tiny --layout diffusers`: the tiny model as a Hugging Face diffusers folder
//! (`model_index.json`, per-component `config.json`, diffusers tensor names, the transformer in two
//! shards with an index), converted from the folder layout's dense BFL files through `flux::names`.
//! Same seed, same weights as the folder layout's `merchgen-model.dense.json`, so a test can prove
//! that mapping and loading change nothing.

use super::flux;
use crate::engine::files::manifest::ModelManifest;
use crate::engine::files::presets::TINY_MANIFEST_DENSE;
use crate::engine::flux::names::{self, Tensors};
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Write the diffusers folder at `out` (a folder-layout copy is written and removed on the way).
pub(crate) fn write(out: &Path, seed: u64) -> Result<PathBuf> {
    let scratch = out.join(".tiny-bfl");
    flux::write_folder(&scratch, seed)?;
    convert(&scratch, out).context("writing the diffusers layout")?;
    std::fs::remove_dir_all(&scratch)?;
    Ok(out.to_owned())
}

fn load(path: &Path) -> Result<Tensors> {
    Ok(candle_core::safetensors::load(path, &Device::Cpu)?)
}

fn dim(t: &Tensors, name: &str, i: usize) -> Result<usize> {
    Ok(t.get(name)
        .with_context(|| format!("{name} missing"))?
        .dim(i)?)
}

fn count(t: &Tensors, prefix: &str) -> usize {
    let found: std::collections::BTreeSet<usize> = t
        .keys()
        .filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse().ok())
        .collect();
    found.len()
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(std::fs::write(path, serde_json::to_vec_pretty(value)?)?)
}

/// Convert a tiny folder-layout model (`bfl`) into a diffusers folder at `out`.
pub(crate) fn convert(bfl: &Path, out: &Path) -> Result<()> {
    let manifest: ModelManifest =
        serde_json::from_slice(&std::fs::read(bfl.join(TINY_MANIFEST_DENSE))?)?;
    let flux = load(&bfl.join("transformer.safetensors"))?;
    write_json(
        &out.join("transformer/config.json"),
        &transformer_config(&flux, &manifest)?,
    )?;
    write_shards(
        &names::transformer_to_diffusers(flux)?,
        &out.join("transformer"),
    )?;

    let vae = load(&bfl.join("ae.safetensors"))?;
    write_json(&out.join("vae/config.json"), &vae_config(&vae, &manifest)?)?;
    let vae: std::collections::HashMap<_, _> = names::vae_to_diffusers(vae)?;
    candle_core::safetensors::save(&vae, out.join("vae/diffusion_pytorch_model.safetensors"))?;

    for (from, to) in [
        ("clip/model.safetensors", "text_encoder/model.safetensors"),
        ("clip/config.json", "text_encoder/config.json"),
        ("t5/model.safetensors", "text_encoder_2/model.safetensors"),
        ("t5/config.json", "text_encoder_2/config.json"),
        ("clip/tokenizer.json", "tokenizer/tokenizer.json"),
        ("t5/tokenizer.json", "tokenizer_2/tokenizer.json"),
    ] {
        std::fs::create_dir_all(out.join(to).parent().expect("relative path with a folder"))?;
        std::fs::copy(bfl.join(from), out.join(to)).with_context(|| format!("copying {from}"))?;
    }
    let max_len = manifest.defaults.max_sequence_length;
    write_json(
        &out.join("tokenizer_2/tokenizer_config.json"),
        &json!({"model_max_length": max_len}),
    )?;
    write_json(
        &out.join("tokenizer/tokenizer_config.json"),
        &json!({"model_max_length": 77}),
    )?;
    write_json(
        &out.join("scheduler/scheduler_config.json"),
        &json!({"_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000, "shift": 1.0,
                "use_dynamic_shifting": false, "base_shift": 0.5, "max_shift": 1.15,
                "base_image_seq_len": 256, "max_image_seq_len": 4096}),
    )?;
    write_json(
        &out.join("model_index.json"),
        &json!({"_class_name": "FluxPipeline", "_diffusers_version": "0.42.1",
                "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"],
                "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
                "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"]}),
    )
}

fn transformer_config(t: &Tensors, m: &ModelManifest) -> Result<serde_json::Value> {
    let hidden = dim(t, "img_in.weight", 0)?;
    let head = dim(t, "double_blocks.0.img_attn.norm.query_norm.scale", 0)?;
    Ok(json!({
        "_class_name": "FluxTransformer2DModel", "patch_size": 1,
        "in_channels": dim(t, "img_in.weight", 1)?, "out_channels": null,
        "num_layers": count(t, "double_blocks."), "num_single_layers": count(t, "single_blocks."),
        "attention_head_dim": head, "num_attention_heads": hidden / head,
        "joint_attention_dim": dim(t, "txt_in.weight", 1)?,
        "pooled_projection_dim": dim(t, "vector_in.in_layer.weight", 1)?,
        "guidance_embeds": t.contains_key("guidance_in.in_layer.weight"),
        "axes_dims_rope": m.flux.axes_dim,
    }))
}

fn vae_config(t: &Tensors, m: &ModelManifest) -> Result<serde_json::Value> {
    let levels = count(t, "encoder.down.");
    let channels = (0..levels)
        .map(|i| dim(t, &format!("encoder.down.{i}.block.0.conv2.weight"), 0))
        .collect::<Result<Vec<_>>>()?;
    Ok(json!({
        "_class_name": "AutoencoderKL", "in_channels": dim(t, "encoder.conv_in.weight", 1)?,
        "out_channels": dim(t, "decoder.conv_out.weight", 0)?,
        "down_block_types": vec!["DownEncoderBlock2D"; levels], "up_block_types": vec!["UpDecoderBlock2D"; levels],
        "block_out_channels": channels, "layers_per_block": count(t, "encoder.down.0.block."),
        "act_fn": "silu", "latent_channels": dim(t, "decoder.conv_in.weight", 1)?, "norm_num_groups": 32,
        "sample_size": 64, "scaling_factor": m.vae.scale_factor, "shift_factor": m.vae.shift_factor,
        "use_quant_conv": false, "use_post_quant_conv": false, "mid_block_add_attention": true, "force_upcast": true,
    }))
}

/// Two shards and `diffusion_pytorch_model.safetensors.index.json`, as diffusers saves large models.
fn write_shards(t: &Tensors, dir: &Path) -> Result<()> {
    let mut names: Vec<&String> = t.keys().collect();
    names.sort();
    let half = names.len().div_ceil(2);
    let mut weight_map = BTreeMap::new();
    let mut total = 0usize;
    for (i, chunk) in names.chunks(half.max(1)).enumerate() {
        let file = format!("diffusion_pytorch_model-{:05}-of-00002.safetensors", i + 1);
        let shard: std::collections::HashMap<String, Tensor> = chunk
            .iter()
            .map(|n| ((*n).clone(), t[*n].clone()))
            .collect();
        for (n, tensor) in &shard {
            total += tensor.elem_count() * tensor.dtype().size_in_bytes();
            weight_map.insert(n.clone(), file.clone());
        }
        candle_core::safetensors::save(&shard, dir.join(&file))?;
    }
    write_json(
        &dir.join("diffusion_pytorch_model.safetensors.index.json"),
        &json!({"metadata": {"total_size": total}, "weight_map": weight_map}),
    )
}
