//! Tensor names of the FLUX transformer and VAE: Hugging Face diffusers naming to and from the
//! original Black Forest Labs (BFL) naming that candle's FLUX code reads. The rules are diffusers'
//! own conversions inverted, from its single-file loading utilities
//! (`loaders/single_file_utils.py`): `convert_flux_transformer_checkpoint_to_diffusers` (fused
//! q/k/v, single-block `linear1` = q, k, v, mlp, and `norm_out` storing scale and shift in the
//! opposite order from `final_layer.adaLN_modulation.1`) and `convert_ldm_vae_checkpoint` (up
//! blocks numbered in reverse, mid attention as linear layers instead of 1x1 convolutions).
//! One rule table serves both directions, proved by a round trip (`tests/names_round_trip.rs`).
//! Pure tensor reshuffling: no file I/O, no devices.

use candle_core::Tensor;
use std::collections::{BTreeSet, HashMap};

/// Tensors by name.
pub type Tensors = HashMap<String, Tensor>;

/// Why a set of tensors could not be renamed.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("{count} tensors have no known name mapping, e.g. {examples:?}")]
    Unknown { count: usize, examples: Vec<String> },
    #[error("`{target}` needs {missing:?}, which are missing")]
    Partial {
        target: String,
        missing: Vec<String>,
    },
    #[error("`{0}` is missing")]
    Missing(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// How one BFL tensor is made of its diffusers tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// The same tensor under another name.
    Same,
    /// Equal parts concatenated along the output dimension (fused q, k, v).
    Cat3,
    /// q, k, v (each `hidden` rows) and the MLP input, concatenated (single-block `linear1`).
    CatLinear1,
    /// The two halves swapped: BFL stores (shift, scale), diffusers (scale, shift).
    SwapHalves,
    /// A 1x1 convolution in BFL, a linear layer in diffusers (VAE mid attention).
    Conv1x1,
}

#[derive(Debug, Clone)]
struct Rule {
    bfl: String,
    diffusers: Vec<String>,
    join: Join,
}

/// Rules for a layer with `.weight` and `.bias`; `join` applies to the weight and, except for a
/// 1x1 convolution, to the bias too.
fn layer(rules: &mut Vec<Rule>, bfl: &str, diffusers: &[String], join: Join) {
    for suffix in ["weight", "bias"] {
        let join = if join == Join::Conv1x1 && suffix == "bias" {
            Join::Same
        } else {
            join
        };
        rules.push(Rule {
            bfl: format!("{bfl}.{suffix}"),
            diffusers: diffusers.iter().map(|d| format!("{d}.{suffix}")).collect(),
            join,
        });
    }
}

fn same(rules: &mut Vec<Rule>, bfl: &str, diffusers: &str) {
    layer(rules, bfl, &[diffusers.to_owned()], Join::Same);
}

/// QK-norm: BFL `*.scale`, diffusers `*.weight`.
fn qk_norm(rules: &mut Vec<Rule>, bfl: &str, diffusers: &str) {
    rules.push(Rule {
        bfl: format!("{bfl}.scale"),
        diffusers: vec![format!("{diffusers}.weight")],
        join: Join::Same,
    });
}

/// Distinct numbers following `prefix` in the names.
fn indices<'a>(names: impl Iterator<Item = &'a String>, prefix: &str) -> usize {
    let found: BTreeSet<usize> = names
        .filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse().ok())
        .collect();
    found.last().map_or(0, |last| last + 1)
}

fn transformer_rules(double: usize, single: usize) -> Vec<Rule> {
    let mut r = Vec::new();
    same(&mut r, "img_in", "x_embedder");
    same(&mut r, "txt_in", "context_embedder");
    for (bfl, d) in [
        ("time_in", "timestep"),
        ("vector_in", "text"),
        ("guidance_in", "guidance"),
    ] {
        same(
            &mut r,
            &format!("{bfl}.in_layer"),
            &format!("time_text_embed.{d}_embedder.linear_1"),
        );
        same(
            &mut r,
            &format!("{bfl}.out_layer"),
            &format!("time_text_embed.{d}_embedder.linear_2"),
        );
    }
    same(&mut r, "final_layer.linear", "proj_out");
    layer(
        &mut r,
        "final_layer.adaLN_modulation.1",
        &["norm_out.linear".to_owned()],
        Join::SwapHalves,
    );
    for i in 0..double {
        let (b, d) = (
            format!("double_blocks.{i}"),
            format!("transformer_blocks.{i}"),
        );
        let parts = |names: [&str; 3]| names.map(|n| format!("{d}.attn.{n}"));
        same(
            &mut r,
            &format!("{b}.img_mod.lin"),
            &format!("{d}.norm1.linear"),
        );
        same(
            &mut r,
            &format!("{b}.txt_mod.lin"),
            &format!("{d}.norm1_context.linear"),
        );
        layer(
            &mut r,
            &format!("{b}.img_attn.qkv"),
            &parts(["to_q", "to_k", "to_v"]),
            Join::Cat3,
        );
        layer(
            &mut r,
            &format!("{b}.txt_attn.qkv"),
            &parts(["add_q_proj", "add_k_proj", "add_v_proj"]),
            Join::Cat3,
        );
        same(
            &mut r,
            &format!("{b}.img_attn.proj"),
            &format!("{d}.attn.to_out.0"),
        );
        same(
            &mut r,
            &format!("{b}.txt_attn.proj"),
            &format!("{d}.attn.to_add_out"),
        );
        same(
            &mut r,
            &format!("{b}.img_mlp.0"),
            &format!("{d}.ff.net.0.proj"),
        );
        same(&mut r, &format!("{b}.img_mlp.2"), &format!("{d}.ff.net.2"));
        same(
            &mut r,
            &format!("{b}.txt_mlp.0"),
            &format!("{d}.ff_context.net.0.proj"),
        );
        same(
            &mut r,
            &format!("{b}.txt_mlp.2"),
            &format!("{d}.ff_context.net.2"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.img_attn.norm.query_norm"),
            &format!("{d}.attn.norm_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.img_attn.norm.key_norm"),
            &format!("{d}.attn.norm_k"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.txt_attn.norm.query_norm"),
            &format!("{d}.attn.norm_added_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.txt_attn.norm.key_norm"),
            &format!("{d}.attn.norm_added_k"),
        );
    }
    for i in 0..single {
        let (b, d) = (
            format!("single_blocks.{i}"),
            format!("single_transformer_blocks.{i}"),
        );
        let linear1 =
            ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"].map(|n| format!("{d}.{n}"));
        layer(&mut r, &format!("{b}.linear1"), &linear1, Join::CatLinear1);
        same(&mut r, &format!("{b}.linear2"), &format!("{d}.proj_out"));
        same(
            &mut r,
            &format!("{b}.modulation.lin"),
            &format!("{d}.norm.linear"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.norm.query_norm"),
            &format!("{d}.attn.norm_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.norm.key_norm"),
            &format!("{d}.attn.norm_k"),
        );
    }
    r
}

fn resnet(r: &mut Vec<Rule>, bfl: &str, d: &str) {
    for n in ["norm1", "conv1", "norm2", "conv2"] {
        same(r, &format!("{bfl}.{n}"), &format!("{d}.{n}"));
    }
    same(
        r,
        &format!("{bfl}.nin_shortcut"),
        &format!("{d}.conv_shortcut"),
    );
}

/// VAE rules for `levels` resolution levels with `enc`/`dec` resnets per level.
fn vae_rules(levels: usize, enc: usize, dec: usize) -> Vec<Rule> {
    let mut r = Vec::new();
    for (side, blocks, down) in [("encoder", enc, true), ("decoder", dec, false)] {
        same(
            &mut r,
            &format!("{side}.conv_in"),
            &format!("{side}.conv_in"),
        );
        same(
            &mut r,
            &format!("{side}.conv_out"),
            &format!("{side}.conv_out"),
        );
        same(
            &mut r,
            &format!("{side}.norm_out"),
            &format!("{side}.conv_norm_out"),
        );
        for (i, n) in ["block_1", "block_2"].iter().enumerate() {
            resnet(
                &mut r,
                &format!("{side}.mid.{n}"),
                &format!("{side}.mid_block.resnets.{i}"),
            );
        }
        let attn = format!("{side}.mid_block.attentions.0");
        same(
            &mut r,
            &format!("{side}.mid.attn_1.norm"),
            &format!("{attn}.group_norm"),
        );
        for (bfl, d) in [
            ("q", "to_q"),
            ("k", "to_k"),
            ("v", "to_v"),
            ("proj_out", "to_out.0"),
        ] {
            layer(
                &mut r,
                &format!("{side}.mid.attn_1.{bfl}"),
                &[format!("{attn}.{d}")],
                Join::Conv1x1,
            );
        }
        for i in 0..levels {
            // diffusers numbers the decoder's up blocks from the lowest resolution.
            let (bfl, d) = if down {
                (
                    format!("encoder.down.{i}"),
                    format!("encoder.down_blocks.{i}"),
                )
            } else {
                (
                    format!("decoder.up.{i}"),
                    format!("decoder.up_blocks.{}", levels - 1 - i),
                )
            };
            for j in 0..blocks {
                resnet(
                    &mut r,
                    &format!("{bfl}.block.{j}"),
                    &format!("{d}.resnets.{j}"),
                );
            }
            let (bfl_sample, d_sample) = if down {
                ("downsample", "downsamplers")
            } else {
                ("upsample", "upsamplers")
            };
            same(
                &mut r,
                &format!("{bfl}.{bfl_sample}.conv"),
                &format!("{d}.{d_sample}.0.conv"),
            );
        }
    }
    r
}

/// True when the names are diffusers' FLUX transformer names.
pub fn is_diffusers_transformer<'a>(mut names: impl Iterator<Item = &'a String>) -> bool {
    names.any(|n| n.starts_with("x_embedder.") || n.starts_with("transformer_blocks."))
}

/// True when the names are diffusers' AutoencoderKL names.
pub fn is_diffusers_vae<'a>(mut names: impl Iterator<Item = &'a String>) -> bool {
    names.any(|n| n.starts_with("encoder.down_blocks.") || n.starts_with("decoder.up_blocks."))
}

/// diffusers `FluxTransformer2DModel` tensors to BFL names.
pub fn transformer_to_bfl(t: Tensors) -> Result<Tensors, NameError> {
    let rules = transformer_rules(
        indices(t.keys(), "transformer_blocks."),
        indices(t.keys(), "single_transformer_blocks."),
    );
    join_all(&rules, t)
}

/// BFL transformer tensors to diffusers names.
pub fn transformer_to_diffusers(t: Tensors) -> Result<Tensors, NameError> {
    let hidden = t
        .get("img_in.weight")
        .ok_or_else(|| NameError::Missing("img_in.weight".into()))?
        .dim(0)?;
    let rules = transformer_rules(
        indices(t.keys(), "double_blocks."),
        indices(t.keys(), "single_blocks."),
    );
    split_all(&rules, t, hidden)
}

/// diffusers `AutoencoderKL` tensors to BFL `ae.safetensors` names.
pub fn vae_to_bfl(t: Tensors) -> Result<Tensors, NameError> {
    let levels = indices(t.keys(), "encoder.down_blocks.");
    let enc = indices(t.keys(), "encoder.down_blocks.0.resnets.");
    let dec = indices(t.keys(), "decoder.up_blocks.0.resnets.");
    join_all(&vae_rules(levels, enc, dec), t)
}

/// BFL `ae.safetensors` tensors to diffusers names.
pub fn vae_to_diffusers(t: Tensors) -> Result<Tensors, NameError> {
    let levels = indices(t.keys(), "encoder.down.");
    let enc = indices(t.keys(), "encoder.down.0.block.");
    let dec = indices(t.keys(), "decoder.up.0.block.");
    split_all(&vae_rules(levels, enc, dec), t, 0)
}

fn join_all(rules: &[Rule], mut src: Tensors) -> Result<Tensors, NameError> {
    let mut out = Tensors::with_capacity(src.len());
    for rule in rules {
        let missing: Vec<String> = rule
            .diffusers
            .iter()
            .filter(|d| !src.contains_key(*d))
            .cloned()
            .collect();
        if missing.len() == rule.diffusers.len() {
            continue; // an optional layer (guidance, shortcut, last level's sampler)
        }
        if !missing.is_empty() {
            return Err(NameError::Partial {
                target: rule.bfl.clone(),
                missing,
            });
        }
        let parts: Vec<Tensor> = rule
            .diffusers
            .iter()
            .filter_map(|d| src.remove(d))
            .collect();
        let joined = match rule.join {
            Join::Same => parts[0].clone(),
            Join::Cat3 | Join::CatLinear1 => Tensor::cat(&parts, 0)?,
            Join::SwapHalves => swap_halves(&parts[0])?,
            Join::Conv1x1 => {
                let (o, i) = parts[0].dims2()?;
                parts[0].reshape((o, i, 1, 1))?
            }
        };
        out.insert(rule.bfl.clone(), joined);
    }
    leftovers(src)?;
    Ok(out)
}

fn split_all(rules: &[Rule], mut src: Tensors, hidden: usize) -> Result<Tensors, NameError> {
    let mut out = Tensors::with_capacity(src.len() + rules.len());
    for rule in rules {
        let Some(t) = src.remove(&rule.bfl) else {
            continue;
        };
        let parts = match rule.join {
            Join::Same => vec![t],
            Join::Cat3 => t.chunk(3, 0)?,
            Join::CatLinear1 => {
                let rest = t.dim(0)? - 3 * hidden;
                [
                    (0, hidden),
                    (hidden, hidden),
                    (2 * hidden, hidden),
                    (3 * hidden, rest),
                ]
                .iter()
                .map(|&(start, len)| t.narrow(0, start, len))
                .collect::<Result<Vec<_>, _>>()?
            }
            Join::SwapHalves => vec![swap_halves(&t)?],
            Join::Conv1x1 => {
                let (o, i, _, _) = t.dims4()?;
                vec![t.reshape((o, i))?]
            }
        };
        for (name, part) in rule.diffusers.iter().zip(parts) {
            out.insert(name.clone(), part.contiguous()?);
        }
    }
    leftovers(src)?;
    Ok(out)
}

fn swap_halves(t: &Tensor) -> candle_core::Result<Tensor> {
    let halves = t.chunk(2, 0)?;
    Tensor::cat(&[&halves[1], &halves[0]], 0)
}

fn leftovers(src: Tensors) -> Result<(), NameError> {
    if src.is_empty() {
        return Ok(());
    }
    let mut examples: Vec<String> = src.into_keys().collect();
    examples.sort();
    let count = examples.len();
    examples.truncate(5);
    Err(NameError::Unknown { count, examples })
}
