//! What a model is made of: the files of each component, and the few facts the weights cannot
//! tell (rope axes, VAE scale and shift, defaults). Written as `merchgen-model.json` beside the
//! files of a local model folder; built in for the hub presets (`presets.rs`). Architecture sizes
//! themselves are read from the weights (`flux::infer`) and the encoders' `config.json` files.

use serde::{Deserialize, Serialize};

/// File name of the manifest in a model folder.
pub(crate) const MANIFEST_FILE: &str = "merchgen-model.json";

/// The components of a FLUX model, each a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Transformer,
    Vae,
    Clip,
    ClipConfig,
    ClipTokenizer,
    T5,
    T5Config,
    T5Tokenizer,
}

impl Role {
    pub(crate) const ALL: [Role; 8] = [
        Role::Transformer,
        Role::Vae,
        Role::Clip,
        Role::ClipConfig,
        Role::ClipTokenizer,
        Role::T5,
        Role::T5Config,
        Role::T5Tokenizer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Transformer => "transformer",
            Role::Vae => "vae",
            Role::Clip => "clip",
            Role::ClipConfig => "clip_config",
            Role::ClipTokenizer => "clip_tokenizer",
            Role::T5 => "t5",
            Role::T5Config => "t5_config",
            Role::T5Tokenizer => "t5_tokenizer",
        }
    }
}

/// Facts about the transformer that its weights do not carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FluxFacts {
    /// RoPE axes; must sum to the head size.
    pub axes_dim: Vec<usize>,
    pub theta: usize,
    /// `schnell` (no shift) or `dev` (resolution-dependent shift).
    pub schedule: Schedule,
    /// FLUX.1 Kontext: the transformer edits a reference photo (`mode: edit` jobs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) kontext: bool,
}

/// The sigma schedule family (`flux::schedule` computes the sigmas).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// No shift (FLUX.1-schnell).
    Schnell,
    /// Resolution-dependent shift, 0.5 at 256 tokens to 1.15 at 4096 (FLUX.1-dev).
    Dev,
    /// A fixed shift (diffusers' scheduler with `use_dynamic_shifting: false`).
    Shifted { shift: f64 },
    /// Resolution-dependent exponential shift with other end points.
    Dynamic {
        base_shift: f64,
        max_shift: f64,
        base_seq_len: usize,
        max_seq_len: usize,
    },
}

/// VAE latent scale and shift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeFacts {
    pub scale_factor: f64,
    pub shift_factor: f64,
}

/// Defaults for jobs that leave them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDefaults {
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub guidance: f64,
    /// T5 token limit (256 for schnell).
    pub max_sequence_length: u32,
}

/// `merchgen-model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelManifest {
    pub version: u32,
    /// A name for outcomes and logs, e.g. `flux-schnell-q4` or `tiny-flux`.
    pub name: String,
    /// File of each component, relative to the manifest's folder.
    pub files: std::collections::BTreeMap<Role, String>,
    pub flux: FluxFacts,
    pub vae: VaeFacts,
    pub defaults: ModelDefaults,
    /// The weights' licence, where known (logged at start-up and reported by `models list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) license: Option<License>,
}

/// The licences of the FLUX.1 weights merchgen's presets load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum License {
    /// FLUX.1-schnell: outputs and the weights may be used commercially.
    Apache2,
    /// FLUX.1-dev and FLUX.1-Kontext-dev: non-commercial use only without a licence from Black
    /// Forest Labs.
    FluxDevNonCommercial,
}

impl License {
    pub(crate) fn name(self) -> &'static str {
        match self {
            License::Apache2 => "Apache-2.0",
            License::FluxDevNonCommercial => "FLUX.1 [dev] Non-Commercial License",
        }
    }

    /// What a shop must know before it sells what the model makes.
    pub(crate) fn commercial_note(self) -> &'static str {
        match self {
            License::Apache2 => "outputs may be sold",
            License::FluxDevNonCommercial => {
                "non-commercial: selling its outputs needs a commercial licence from Black Forest Labs"
            }
        }
    }
}

impl ModelManifest {
    /// The relative file name of a role, if the manifest names it.
    pub fn file(&self, role: Role) -> Option<&str> {
        self.files.get(&role).map(String::as_str)
    }

    /// Check that every role has a file and the facts are consistent.
    pub fn check(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("unsupported manifest version {}", self.version));
        }
        if let Some(missing) = Role::ALL.iter().find(|r| !self.files.contains_key(r)) {
            return Err(format!("no file given for `{}`", missing.as_str()));
        }
        if self.flux.axes_dim.iter().any(|a| a % 2 == 1) || self.flux.axes_dim.len() != 3 {
            return Err("flux.axes_dim must be three even numbers".to_owned());
        }
        Ok(())
    }
}

/// The schnell facts shared by every FLUX.1-schnell preset.
pub(crate) fn schnell_facts() -> (FluxFacts, VaeFacts, ModelDefaults) {
    (
        FluxFacts {
            axes_dim: vec![16, 56, 56],
            theta: 10_000,
            schedule: Schedule::Schnell,
            kontext: false,
        },
        VaeFacts {
            scale_factor: 0.3611,
            shift_factor: 0.1159,
        },
        ModelDefaults {
            width: 1024,
            height: 1024,
            steps: 4,
            guidance: 0.0,
            max_sequence_length: 256,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_check_reports_missing_role() {
        let (flux, vae, defaults) = schnell_facts();
        let mut m = ModelManifest {
            version: 1,
            name: "x".into(),
            files: Role::ALL
                .iter()
                .map(|r| (*r, format!("{}.bin", r.as_str())))
                .collect(),
            flux,
            vae,
            defaults,
            license: None,
        };
        assert!(m.check().is_ok());
        m.files.remove(&Role::T5Tokenizer);
        assert!(m.check().unwrap_err().contains("t5_tokenizer"));
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("\"transformer\""));
    }
}
