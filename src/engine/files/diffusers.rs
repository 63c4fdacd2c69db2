//! A Hugging Face diffusers folder as a model source (`MERCHGEN_MODEL=/path` holding
//! `model_index.json`): finds the files of each component (`transformer/`, `vae/`,
//! `text_encoder/`, `text_encoder_2/`, `tokenizer/`, `tokenizer_2/`, `scheduler/`) and turns their
//! `config.json` files into the facts a `merchgen-model.json` would state: rope axes, VAE scale and
//! shift, the sigma schedule, the T5 token limit and job defaults. Sizes are checked against the
//! tensor headers. Never loads weights (`flux::loader` does, mapping diffusers names via
//! `flux::names`).

use super::resolved::{ModelError, ResolvedModel};
use crate::engine::files::manifest::{
    FluxFacts, ModelDefaults, ModelManifest, Role, Schedule, VaeFacts,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The file that marks a diffusers folder.
pub(crate) const MODEL_INDEX: &str = "model_index.json";

/// diffusers' limit on `max_sequence_length` in FluxPipeline.
const DIFFUSERS_MAX_T5_TOKENS: u32 = 512;

/// True for a folder holding `model_index.json`.
pub(crate) fn is_diffusers_folder(path: &Path) -> bool {
    path.is_dir() && path.join(MODEL_INDEX).is_file()
}

#[derive(Debug, Deserialize)]
struct TransformerConfig {
    #[serde(default)]
    guidance_embeds: bool,
    #[serde(default = "default_axes")]
    axes_dims_rope: Vec<usize>,
    num_layers: Option<usize>,
    num_single_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    attention_head_dim: Option<usize>,
}

fn default_axes() -> Vec<usize> {
    vec![16, 56, 56]
}

#[derive(Debug, Deserialize)]
struct VaeConfig {
    scaling_factor: f64,
    shift_factor: Option<f64>,
    #[serde(default)]
    block_out_channels: Vec<usize>,
}

#[derive(Debug, Deserialize)]
struct SchedulerConfig {
    #[serde(default = "one")]
    shift: f64,
    #[serde(default)]
    use_dynamic_shifting: bool,
    #[serde(default = "half")]
    base_shift: f64,
    #[serde(default = "max_shift")]
    max_shift: f64,
    #[serde(default = "base_seq")]
    base_image_seq_len: usize,
    #[serde(default = "max_seq")]
    max_image_seq_len: usize,
    time_shift_type: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

fn one() -> f64 {
    1.0
}
fn half() -> f64 {
    0.5
}
fn max_shift() -> f64 {
    1.15
}
fn base_seq() -> usize {
    256
}
fn max_seq() -> usize {
    4096
}

#[derive(Debug, Deserialize)]
struct TokenizerConfig {
    model_max_length: Option<f64>,
}

fn bad(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Manifest {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| missing(path, &e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(path, e.to_string()))
}

fn missing(path: &Path, why: &str) -> ModelError {
    ModelError::Missing {
        file: path.display().to_string(),
        where_: format!(" ({why})"),
        fetch_hint: "diffusers' `FluxPipeline.save_pretrained` (with transformers 5, which \
            writes tokenizer.json files too)"
            .to_owned(),
    }
}

/// The weights file of a component folder: `{base}.safetensors`, its shard index, or the only
/// `.gguf` / `.safetensors` file there.
fn weights_in(dir: &Path, sub: &str, base: &str) -> Result<String, ModelError> {
    for candidate in [
        format!("{base}.safetensors"),
        format!("{base}.safetensors.index.json"),
    ] {
        if dir.join(sub).join(&candidate).is_file() {
            return Ok(format!("{sub}/{candidate}"));
        }
    }
    let found: Vec<String> = std::fs::read_dir(dir.join(sub))
        .map_err(|e| missing(&dir.join(sub), &e.to_string()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".gguf") || n.ends_with(".safetensors"))
        .collect();
    match found.as_slice() {
        [one] => Ok(format!("{sub}/{one}")),
        _ => Err(missing(
            &dir.join(sub).join(format!("{base}.safetensors")),
            "no single weights file found",
        )),
    }
}

fn schedule(cfg: &SchedulerConfig, path: &Path) -> Result<Schedule, ModelError> {
    if cfg
        .time_shift_type
        .as_deref()
        .is_some_and(|t| t != "exponential")
    {
        return Err(bad(
            path,
            "only the exponential time_shift_type is supported",
        ));
    }
    for flag in [
        "use_karras_sigmas",
        "use_exponential_sigmas",
        "use_beta_sigmas",
        "invert_sigmas",
        "stochastic_sampling",
    ] {
        if cfg.rest.get(flag).and_then(serde_json::Value::as_bool) == Some(true) {
            return Err(bad(path, format!("`{flag}` is not supported")));
        }
    }
    if cfg.rest.get("shift_terminal").is_some_and(|v| !v.is_null()) {
        return Err(bad(path, "`shift_terminal` is not supported"));
    }
    Ok(if cfg.use_dynamic_shifting {
        let dev = (
            cfg.base_shift,
            cfg.max_shift,
            cfg.base_image_seq_len,
            cfg.max_image_seq_len,
        ) == (0.5, 1.15, 256, 4096);
        if dev {
            Schedule::Dev
        } else {
            Schedule::Dynamic {
                base_shift: cfg.base_shift,
                max_shift: cfg.max_shift,
                base_seq_len: cfg.base_image_seq_len,
                max_seq_len: cfg.max_image_seq_len,
            }
        }
    } else if cfg.shift == 1.0 {
        Schedule::Schnell
    } else {
        Schedule::Shifted { shift: cfg.shift }
    })
}

/// Resolve a diffusers folder into the files and facts of a model.
pub(crate) fn resolve(dir: &Path) -> Result<ResolvedModel, ModelError> {
    let index: serde_json::Value = read_json(&dir.join(MODEL_INDEX))?;
    let class = index
        .get("_class_name")
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    if !class.starts_with("Flux") {
        return Err(bad(
            &dir.join(MODEL_INDEX),
            format!("pipeline `{class}` is not a FLUX pipeline"),
        ));
    }
    let tcfg_path = dir.join("transformer/config.json");
    let tcfg: TransformerConfig = read_json(&tcfg_path)?;
    let vcfg_path = dir.join("vae/config.json");
    let vcfg: VaeConfig = read_json(&vcfg_path)?;
    let sched_path = dir.join("scheduler/scheduler_config.json");
    let sched = schedule(&read_json(&sched_path)?, &sched_path)?;
    let shift_factor = vcfg
        .shift_factor
        .ok_or_else(|| bad(&vcfg_path, "a FLUX VAE needs `shift_factor`"))?;
    let tok2: Option<TokenizerConfig> =
        read_json(&dir.join("tokenizer_2/tokenizer_config.json")).ok();
    let t5_tokens = tok2
        .and_then(|t| t.model_max_length)
        .map(|m| m.min(f64::from(DIFFUSERS_MAX_T5_TOKENS)) as u32)
        .unwrap_or(if tcfg.guidance_embeds {
            DIFFUSERS_MAX_T5_TOKENS
        } else {
            256
        });
    let files = BTreeMap::from([
        (
            Role::Transformer,
            weights_in(dir, "transformer", "diffusion_pytorch_model")?,
        ),
        (
            Role::Vae,
            weights_in(dir, "vae", "diffusion_pytorch_model")?,
        ),
        (Role::Clip, weights_in(dir, "text_encoder", "model")?),
        (Role::ClipConfig, "text_encoder/config.json".to_owned()),
        (Role::ClipTokenizer, clip_tokenizer(dir)),
        (Role::T5, weights_in(dir, "text_encoder_2", "model")?),
        (Role::T5Config, "text_encoder_2/config.json".to_owned()),
        (Role::T5Tokenizer, "tokenizer_2/tokenizer.json".to_owned()),
    ]);
    let mut paths = BTreeMap::new();
    for (role, rel) in &files {
        let path = dir.join(rel);
        if !path.is_file() {
            let why = "merchgen reads tokenizer.json (or CLIP's vocab.json with merges.txt) \
                and safetensors or GGUF weights";
            return Err(missing(&path, why));
        }
        paths.insert(*role, path);
    }
    check_transformer_sizes(&tcfg, &paths[&Role::Transformer], &tcfg_path)?;
    // diffusers' default size: 128 latent pixels times the VAE's scale.
    let side = 128 * (1u32 << vcfg.block_out_channels.len().saturating_sub(1).min(4));
    let name = dir.file_name().map_or_else(
        || "diffusers".to_owned(),
        |n| format!("diffusers:{}", n.to_string_lossy()),
    );
    let manifest = ModelManifest {
        version: 1,
        name,
        files,
        flux: FluxFacts {
            axes_dim: tcfg.axes_dims_rope.clone(),
            theta: 10_000,
            schedule: sched,
            kontext: false,
        },
        vae: VaeFacts {
            scale_factor: vcfg.scaling_factor,
            shift_factor,
        },
        defaults: ModelDefaults {
            width: side,
            height: side,
            steps: if tcfg.guidance_embeds { 28 } else { 4 },
            guidance: if tcfg.guidance_embeds { 3.5 } else { 0.0 },
            max_sequence_length: t5_tokens,
        },
        // A diffusers folder says nothing of its licence.
        license: None,
    };
    manifest.check().map_err(|e| bad(&tcfg_path, e))?;
    Ok(ResolvedModel {
        manifest,
        paths,
        source: format!("diffusers folder {}", dir.display()),
    })
}

/// `tokenizer/tokenizer.json`, else CLIP's `vocab.json` (+ `merges.txt`), as hub folders have.
fn clip_tokenizer(dir: &Path) -> String {
    let has = |f: &str| dir.join("tokenizer").join(f).is_file();
    if !has("tokenizer.json") && has("vocab.json") && has("merges.txt") {
        "tokenizer/vocab.json".to_owned()
    } else {
        "tokenizer/tokenizer.json".to_owned()
    }
}

/// Block counts and width in `config.json` must match the tensors (diffusers naming only).
fn check_transformer_sizes(
    cfg: &TransformerConfig,
    weights: &Path,
    cfg_path: &Path,
) -> Result<(), ModelError> {
    if !super::safetensors::is_safetensors(weights) {
        return Ok(());
    }
    let shapes = super::safetensors::shapes(weights).map_err(|e| bad(weights, format!("{e:#}")))?;
    let count = |prefix: &str| -> usize {
        shapes
            .keys()
            .filter_map(|n| {
                n.strip_prefix(prefix)?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .collect::<BTreeSet<_>>()
            .len()
    };
    let Some(width) = shapes
        .get("x_embedder.weight")
        .and_then(|s| s.first().copied())
    else {
        return Ok(()); // BFL names inside a diffusers folder: the tensors alone decide.
    };
    let checks = [
        ("num_layers", cfg.num_layers, count("transformer_blocks.")),
        (
            "num_single_layers",
            cfg.num_single_layers,
            count("single_transformer_blocks."),
        ),
        (
            "num_attention_heads * attention_head_dim",
            cfg.num_attention_heads
                .zip(cfg.attention_head_dim)
                .map(|(h, d)| h * d),
            width,
        ),
    ];
    for (key, stated, found) in checks {
        if stated.is_some_and(|s| s != found) {
            return Err(bad(
                cfg_path,
                format!("`{key}` says {stated:?} but the weights have {found}"),
            ));
        }
    }
    Ok(())
}
