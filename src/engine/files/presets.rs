//! Built-in model presets: which hub files make up each model, and the facts that go with them.

use crate::engine::files::manifest::{
    schnell_facts, License, ModelManifest, Role, Schedule, MANIFEST_FILE,
};
use std::collections::BTreeMap;

/// One file on the Hugging Face hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HubFile {
    pub repo: &'static str,
    pub revision: &'static str,
    pub path: &'static str,
}

const fn hub(repo: &'static str, revision: &'static str, path: &'static str) -> HubFile {
    HubFile {
        repo,
        revision,
        path,
    }
}

/// The commits the FLUX presets are pinned to: `models fetch` downloads exactly these snapshots
/// and a job only ever loads files from them, so a repository that changes upstream cannot change
/// what a worker runs. (Each is the snapshot that public FLUX deployments load; moving a pin is a
/// code change, reviewed like one.)
pub(crate) mod pins {
    /// `black-forest-labs/FLUX.1-schnell` (VAE, CLIP-L weights, configs, T5 tokenizer).
    pub(crate) const FLUX_SCHNELL: &str = "741f7c3ce8b383c54771c7003378a50191e9efe9";
    /// `city96/FLUX.1-schnell-gguf` (the quantized transformers).
    pub(crate) const FLUX_SCHNELL_GGUF: &str = "f495746ed9c5efcf4661f53ef05401dceadc17d2";
    /// `city96/t5-v1_1-xxl-encoder-gguf` (the quantized T5-XXL encoder).
    pub(crate) const T5_XXL_GGUF: &str = "005a6ea51a7d0b84d677b3e633bb52a8c85a83d9";
    /// `openai/clip-vit-large-patch14` (the CLIP tokenizer).
    pub(crate) const CLIP_VIT_L14: &str = "32bd64288804d66eefd0ccbe215aa642df71cc41";
    /// `city96/FLUX.1-dev-gguf`: NOT pinned yet. No public record of one of its commits could be
    /// read from the machine these presets were written on, so the dev presets follow `main`
    /// until someone with hub access replaces this with a commit (`models fetch` warns).
    pub(crate) const FLUX_DEV_GGUF: &str = "main";
    /// `QuantStack/FLUX.1-Kontext-dev-GGUF`: NOT pinned yet, for the same reason.
    pub(crate) const FLUX_KONTEXT_GGUF: &str = "main";
    /// Files of the presets that are not pinned to a commit (see `FLUX_DEV_GGUF`).
    pub(crate) const UNPINNED: &[&str] = &[
        "city96/FLUX.1-dev-gguf",
        "QuantStack/FLUX.1-Kontext-dev-GGUF",
    ];
}

/// How a preset names its files.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PresetFiles {
    /// Explicit hub files for every role, with built-in facts.
    Files(BTreeMap<Role, HubFile>, Box<ModelManifest>),
    /// A hub repo whose snapshot holds a `merchgen-model.json` (tiny test models).
    ManifestRepo {
        repo: &'static str,
        manifest: &'static str,
    },
}

/// A named model preset.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Preset {
    pub name: &'static str,
    pub(crate) description: &'static str,
    pub files: PresetFiles,
}

/// Repo name of the tiny random-weight model `merchgen models tiny --layout cache` writes.
pub(crate) const TINY_REPO: &str = "merchgen/tiny-flux";
/// Manifest of the tiny model with its Q8_0 transformer.
pub(crate) const TINY_MANIFEST_Q8: &str = MANIFEST_FILE;
/// Manifest of the tiny model with its K-quant (Q4_K) transformer.
pub(crate) const TINY_MANIFEST_Q4K: &str = "merchgen-model.q4_k.json";
/// Manifest of the tiny model with dense f32 safetensors for the transformer (BFL names) and T5.
pub const TINY_MANIFEST_DENSE: &str = "merchgen-model.dense.json";
/// Manifest of the tiny FLUX.1-dev-style model (Q8_0 transformer with a guidance embedding).
pub const TINY_MANIFEST_DEV: &str = "merchgen-model.dev.json";
/// The dev-style transformer as a FLUX.1 Kontext model (`mode: edit` jobs; Kontext has dev's
/// architecture, so the same weights serve).
pub const TINY_MANIFEST_KONTEXT: &str = "merchgen-model.kontext.json";
/// The same dev-style transformer as dense f32 safetensors.
pub(crate) const TINY_MANIFEST_DEV_DENSE: &str = "merchgen-model.dev-dense.json";

fn schnell(name: &'static str, transformer: &'static str) -> PresetFiles {
    flux_preset(
        name,
        hub(
            "city96/FLUX.1-schnell-gguf",
            pins::FLUX_SCHNELL_GGUF,
            transformer,
        ),
        Family::Schnell,
    )
}

/// FLUX.1-dev: city96's GGUF transformer with the same VAE and text encoders as schnell (BFL
/// ships the same `ae.safetensors`, CLIP-L and T5-XXL with both), dev's schedule and defaults.
fn dev(name: &'static str, transformer: &'static str) -> PresetFiles {
    flux_preset(
        name,
        hub("city96/FLUX.1-dev-gguf", pins::FLUX_DEV_GGUF, transformer),
        Family::Dev,
    )
}

/// FLUX.1 Kontext [dev]: QuantStack's GGUF transformer (dev's architecture), the same VAE and
/// encoders, dev's schedule and defaults; jobs may use `mode: edit`.
fn kontext(name: &'static str, transformer: &'static str) -> PresetFiles {
    flux_preset(
        name,
        hub(
            "QuantStack/FLUX.1-Kontext-dev-GGUF",
            pins::FLUX_KONTEXT_GGUF,
            transformer,
        ),
        Family::Kontext,
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Schnell,
    Dev,
    Kontext,
}

fn flux_preset(name: &'static str, transformer: HubFile, family: Family) -> PresetFiles {
    let dev = family != Family::Schnell;
    let flux_repo = "black-forest-labs/FLUX.1-schnell";
    let files = BTreeMap::from([
        (Role::Transformer, transformer),
        (
            Role::Vae,
            hub(flux_repo, pins::FLUX_SCHNELL, "ae.safetensors"),
        ),
        (
            Role::Clip,
            hub(
                flux_repo,
                pins::FLUX_SCHNELL,
                "text_encoder/model.safetensors",
            ),
        ),
        (
            Role::ClipConfig,
            hub(flux_repo, pins::FLUX_SCHNELL, "text_encoder/config.json"),
        ),
        (
            Role::ClipTokenizer,
            hub(
                "openai/clip-vit-large-patch14",
                pins::CLIP_VIT_L14,
                "tokenizer.json",
            ),
        ),
        (
            Role::T5,
            hub(
                "city96/t5-v1_1-xxl-encoder-gguf",
                pins::T5_XXL_GGUF,
                "t5-v1_1-xxl-encoder-Q8_0.gguf",
            ),
        ),
        (
            Role::T5Config,
            hub(flux_repo, pins::FLUX_SCHNELL, "text_encoder_2/config.json"),
        ),
        (
            Role::T5Tokenizer,
            hub(flux_repo, pins::FLUX_SCHNELL, "tokenizer_2/tokenizer.json"),
        ),
    ]);
    let (mut flux, vae, mut defaults) = schnell_facts();
    if dev {
        flux.schedule = Schedule::Dev;
        defaults.steps = 28;
        defaults.guidance = 3.5;
        defaults.max_sequence_length = 512;
    }
    flux.kontext = family == Family::Kontext;
    let manifest = ModelManifest {
        version: 1,
        name: name.to_owned(),
        files: files
            .iter()
            .map(|(role, f)| (*role, f.path.to_owned()))
            .collect(),
        flux,
        vae,
        defaults,
        license: Some(if dev {
            License::FluxDevNonCommercial
        } else {
            License::Apache2
        }),
    };
    PresetFiles::Files(files, Box::new(manifest))
}

/// Every preset, default first.
pub(crate) fn all() -> Vec<Preset> {
    vec![
        Preset {
            name: "flux-schnell-q4",
            description: "FLUX.1-schnell, transformer GGUF Q4_0 (6.8 GB), T5-XXL GGUF Q8_0",
            files: schnell("flux-schnell-q4", "flux1-schnell-Q4_0.gguf"),
        },
        Preset {
            name: "flux-schnell-q8",
            description: "FLUX.1-schnell, transformer GGUF Q8_0 (12.7 GB), T5-XXL GGUF Q8_0",
            files: schnell("flux-schnell-q8", "flux1-schnell-Q8_0.gguf"),
        },
        Preset {
            name: "flux-schnell-q4ks",
            description: "FLUX.1-schnell, transformer GGUF Q4_K_S (6.8 GB), T5-XXL GGUF Q8_0",
            files: schnell("flux-schnell-q4ks", "flux1-schnell-Q4_K_S.gguf"),
        },
        Preset {
            name: "flux-dev-q4",
            description: "FLUX.1-dev, transformer GGUF Q4_0 (6.8 GB), T5-XXL GGUF Q8_0; non-commercial licence",
            files: dev("flux-dev-q4", "flux1-dev-Q4_0.gguf"),
        },
        Preset {
            name: "flux-dev-q8",
            description: "FLUX.1-dev, transformer GGUF Q8_0 (12.7 GB), T5-XXL GGUF Q8_0; non-commercial licence",
            files: dev("flux-dev-q8", "flux1-dev-Q8_0.gguf"),
        },
        Preset {
            name: "flux-kontext-q4",
            description: "FLUX.1 Kontext [dev] photo edits, transformer GGUF Q4_K_S (6.8 GB), T5-XXL GGUF Q8_0; non-commercial licence",
            files: kontext("flux-kontext-q4", "flux1-kontext-dev-Q4_K_S.gguf"),
        },
        Preset {
            name: "flux-kontext-q8",
            description: "FLUX.1 Kontext [dev] photo edits, transformer GGUF Q8_0 (12.7 GB), T5-XXL GGUF Q8_0; non-commercial licence",
            files: kontext("flux-kontext-q8", "flux1-kontext-dev-Q8_0.gguf"),
        },
        Preset {
            name: "tiny-flux",
            description: "tiny random-weight FLUX written by `merchgen models tiny` (noise images)",
            files: PresetFiles::ManifestRepo {
                repo: TINY_REPO,
                manifest: TINY_MANIFEST_Q8,
            },
        },
        Preset {
            name: "tiny-flux-q4k",
            description: "the tiny model with its K-quant transformer",
            files: PresetFiles::ManifestRepo {
                repo: TINY_REPO,
                manifest: TINY_MANIFEST_Q4K,
            },
        },
        Preset {
            name: "tiny-flux-kontext",
            description: "the tiny dev-style transformer as a Kontext model (photo edits)",
            files: PresetFiles::ManifestRepo {
                repo: TINY_REPO,
                manifest: TINY_MANIFEST_KONTEXT,
            },
        },
        Preset {
            name: "tiny-flux-dev",
            description: "the tiny model with a FLUX.1-dev-style transformer (guidance embedding)",
            files: PresetFiles::ManifestRepo {
                repo: TINY_REPO,
                manifest: TINY_MANIFEST_DEV,
            },
        },
    ]
}

/// The default preset name.
pub(crate) const DEFAULT_PRESET: &str = "flux-schnell-q4";

/// The preset of that name.
pub(crate) fn find(name: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_cover_every_role_and_check() {
        for p in all() {
            if let PresetFiles::Files(files, manifest) = &p.files {
                assert_eq!(files.len(), Role::ALL.len(), "{}", p.name);
                manifest.check().unwrap();
            }
        }
        assert!(find(DEFAULT_PRESET).is_some());
        assert!(find("flux-schnell-q8").is_some());
    }

    #[test]
    fn every_flux_preset_file_is_pinned_to_a_commit() {
        for p in all() {
            if let PresetFiles::Files(files, _) = &p.files {
                for (role, f) in files {
                    if pins::UNPINNED.contains(&f.repo) {
                        continue;
                    }
                    assert!(
                        f.revision.len() == 40 && f.revision.bytes().all(|b| b.is_ascii_hexdigit()),
                        "{} {role:?} {}@{}",
                        p.name,
                        f.repo,
                        f.revision
                    );
                }
            }
        }
    }
}
