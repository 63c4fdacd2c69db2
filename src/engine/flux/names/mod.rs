//! Tensor names of the FLUX transformer and VAE: Hugging Face diffusers naming to and from the
//! original Black Forest Labs (BFL) naming that candle's FLUX code reads. The rules are diffusers'
//! own conversions inverted, from its single-file loading utilities
//! (`loaders/single_file_utils.py`): `convert_flux_transformer_checkpoint_to_diffusers` (fused
//! q/k/v, single-block `linear1` = q, k, v, mlp, and `norm_out` storing scale and shift in the
//! opposite order from `final_layer.adaLN_modulation.1`) and `convert_ldm_vae_checkpoint` (up
//! blocks numbered in reverse, mid attention as linear layers instead of 1x1 convolutions).
//! One rule table (`names/rules.rs`) serves both directions, proved by a round trip
//! (`tests/integration/names_round_trip.rs`).
//! Pure tensor reshuffling: no file I/O, no devices.

use candle_core::Tensor;
use std::collections::{BTreeSet, HashMap};

pub use crate::engine::files::safetensors::Tensors;

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

mod rules;

use rules::{transformer_rules, vae_rules, Join, Rule};

/// Where the output rows of a diffusers transformer module land in the BFL module made of it
/// (for LoRAs, which name diffusers modules: `engine::flux::lora`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// All rows, in order.
    Whole,
    /// Part `i` of `parts` equal parts (q, k, v of a fused `qkv`).
    Equal { index: usize, parts: usize },
    /// Single-block `linear1`: q, k, v (`hidden` rows each), then the MLP input.
    Linear1 { index: usize },
    /// The halves swapped (diffusers' `norm_out` is scale then shift; BFL's shift then scale).
    SwappedHalves,
}

/// Each diffusers transformer module (no `.weight` suffix) of a model with `double` and `single`
/// blocks, with its BFL module and placement.
pub(crate) fn diffusers_modules(
    double: usize,
    single: usize,
) -> HashMap<String, (String, Placement)> {
    let mut out = HashMap::new();
    for rule in transformer_rules(double, single) {
        let Some(bfl) = rule.bfl.strip_suffix(".weight") else {
            continue;
        };
        for (index, d) in rule.diffusers.iter().enumerate() {
            let Some(module) = d.strip_suffix(".weight") else {
                continue;
            };
            let placement = match rule.join {
                Join::Same | Join::Conv1x1 => Placement::Whole,
                Join::Cat3 => Placement::Equal { index, parts: 3 },
                Join::CatLinear1 => Placement::Linear1 { index },
                Join::SwapHalves => Placement::SwappedHalves,
            };
            out.insert(module.to_owned(), (bfl.to_owned(), placement));
        }
    }
    out
}

/// Distinct numbers following `prefix` in the names.
fn indices<'a>(names: impl Iterator<Item = &'a String>, prefix: &str) -> usize {
    let found: BTreeSet<usize> = names
        .filter_map(|n| n.strip_prefix(prefix)?.split('.').next()?.parse().ok())
        .collect();
    found.last().map_or(0, |last| last + 1)
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
