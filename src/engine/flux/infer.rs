//! Architecture sizes read from the weights themselves (tensor names and shapes), so a tiny
//! model and the real one go through the same code. Only rope axes, theta and VAE scale/shift
//! come from the manifest, because no tensor carries them.

use crate::engine::files::manifest::{FluxFacts, VaeFacts};
use candle_transformers::models::flux;

pub(crate) use crate::engine::files::safetensors::Shapes;

/// Why sizes could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the architecture from the weights: {0}")]
pub struct InferError(pub String);

fn dim(shapes: &Shapes, name: &str, i: usize) -> Result<usize, InferError> {
    shapes
        .get(name)
        .and_then(|s| s.get(i).copied())
        .ok_or_else(|| InferError(format!("tensor `{name}` (dimension {i}) is missing")))
}

/// Distinct values of the number after `prefix` (`double_blocks.` -> 0, 1, ...).
fn count_indexed(shapes: &Shapes, prefix: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    for name in shapes.keys() {
        if let Some(rest) = name.strip_prefix(prefix) {
            if let Some(Ok(i)) = rest.split('.').next().map(str::parse::<usize>) {
                seen.insert(i);
            }
        }
    }
    seen.len()
}

/// FLUX transformer config from BFL-named tensors.
pub fn flux_config(shapes: &Shapes, facts: &FluxFacts) -> Result<flux::model::Config, InferError> {
    let hidden_size = dim(shapes, "img_in.weight", 0)?;
    let head_dim = dim(shapes, "double_blocks.0.img_attn.norm.query_norm.scale", 0)
        .or_else(|_| dim(shapes, "single_blocks.0.norm.query_norm.scale", 0))?;
    if head_dim == 0 || hidden_size % head_dim != 0 {
        return Err(InferError(format!(
            "hidden size {hidden_size} is not a multiple of head size {head_dim}"
        )));
    }
    let axes_sum: usize = facts.axes_dim.iter().sum();
    if axes_sum != head_dim {
        return Err(InferError(format!(
            "rope axes {:?} sum to {axes_sum}, but the head size in the weights is {head_dim}",
            facts.axes_dim
        )));
    }
    let mlp_hidden = dim(shapes, "double_blocks.0.img_mlp.0.weight", 0)?;
    Ok(flux::model::Config {
        in_channels: dim(shapes, "img_in.weight", 1)?,
        vec_in_dim: dim(shapes, "vector_in.in_layer.weight", 1)?,
        context_in_dim: dim(shapes, "txt_in.weight", 1)?,
        hidden_size,
        mlp_ratio: mlp_hidden as f64 / hidden_size as f64,
        num_heads: hidden_size / head_dim,
        depth: count_indexed(shapes, "double_blocks."),
        depth_single_blocks: count_indexed(shapes, "single_blocks."),
        axes_dim: facts.axes_dim.clone(),
        theta: facts.theta,
        qkv_bias: shapes.contains_key("double_blocks.0.img_attn.qkv.bias"),
        guidance_embed: shapes.contains_key("guidance_in.in_layer.weight"),
    })
}

/// FLUX VAE config from `ae.safetensors` names.
pub(crate) fn vae_config(
    shapes: &Shapes,
    facts: &VaeFacts,
) -> Result<flux::autoencoder::Config, InferError> {
    let ch = dim(shapes, "encoder.conv_in.weight", 0)?;
    let levels = count_indexed(shapes, "encoder.down.");
    if levels == 0 || ch == 0 {
        return Err(InferError("the VAE has no encoder levels".to_owned()));
    }
    let ch_mult = (0..levels)
        .map(|i| dim(shapes, &format!("encoder.down.{i}.block.0.conv2.weight"), 0).map(|c| c / ch))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(flux::autoencoder::Config {
        resolution: 256,
        in_channels: dim(shapes, "encoder.conv_in.weight", 1)?,
        ch,
        out_ch: dim(shapes, "decoder.conv_out.weight", 0)?,
        ch_mult,
        num_res_blocks: count_indexed(shapes, "encoder.down.0.block."),
        z_channels: dim(shapes, "decoder.conv_in.weight", 1)?,
        scale_factor: facts.scale_factor,
        shift_factor: facts.shift_factor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::files::manifest::Schedule;

    #[test]
    fn flux_config_axes_mismatch_is_explained() {
        let shapes: Shapes = [
            ("img_in.weight".to_owned(), vec![64, 64]),
            (
                "double_blocks.0.img_attn.norm.query_norm.scale".to_owned(),
                vec![32],
            ),
        ]
        .into();
        let facts = FluxFacts {
            axes_dim: vec![16, 56, 56],
            theta: 10_000,
            schedule: Schedule::Schnell,
            kontext: false,
        };
        let err = flux_config(&shapes, &facts).unwrap_err().to_string();
        assert!(err.contains("head size in the weights is 32"), "{err}");
    }
}
