//! `merchgen models tiny`: writes a tiny random-weight FLUX model in exactly the real formats and
//! names (transformer GGUF in Q8_0 and Q4_K with BFL names, `ae.safetensors`, CLIP safetensors
//! with `text_model.` names, T5 GGUF with llama.cpp names, both `tokenizer.json` files), so tests
//! drive the same loading code as the real model. Also dense f32 safetensors of the transformer
//! (BFL names) and T5 (`flux`), and a diffusers-folder layout of the same weights (`diffusers`).
//! Its images are noise.

pub(crate) mod diffusers;
mod flux;
pub mod loras;
pub(crate) mod tokenizer_files;

pub(crate) use crate::engine::files::presets::TINY_REPO;
pub use crate::engine::files::presets::{
    TINY_MANIFEST_DENSE, TINY_MANIFEST_DEV, TINY_MANIFEST_KONTEXT,
};

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Folder layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TinyLayout {
    /// Files plus `merchgen-model.json` directly in the folder (`MERCHGEN_MODEL=DIR`).
    Folder,
    /// The Hugging Face cache layout (`HF_HUB_CACHE=DIR`, `MERCHGEN_MODEL=tiny-flux`).
    Cache,
    /// A diffusers folder (`model_index.json`, diffusers names, sharded transformer), holding the
    /// same weights as `merchgen-model.dense.json` of the folder layout with the same seed.
    Diffusers,
}

/// Write the tiny model under `out`; returns the folder holding the manifests.
pub fn write(out: &Path, seed: u64, layout: TinyLayout) -> Result<PathBuf> {
    let dir = match layout {
        TinyLayout::Folder => out.to_owned(),
        TinyLayout::Diffusers => return diffusers::write(out, seed),
        TinyLayout::Cache => {
            let repo = out.join(format!("models--{}", TINY_REPO.replace('/', "--")));
            let commit = format!("{:040x}", u128::from(seed) * 0x9e37_79b9_7f4a_7c15 + 1);
            std::fs::create_dir_all(repo.join("refs"))?;
            std::fs::write(repo.join("refs/main"), &commit)?;
            let snapshot = repo.join("snapshots").join(commit);
            // Its files are links into `blobs`: write a fresh snapshot, never through old links.
            if snapshot.exists() {
                std::fs::remove_dir_all(&snapshot)?;
            }
            snapshot
        }
    };
    flux::write_folder(&dir, seed)?;
    if layout == TinyLayout::Cache {
        into_blobs(&dir, &dir, 0).context("laying the tiny model out as hf-hub does")?;
    }
    Ok(dir)
}

/// Lay the snapshot out as hf-hub does for LFS files: each file moved to
/// `blobs/<sha256>` and the snapshot path a relative link to it (so `models verify` can check
/// the tiny model against its "hub metadata" as it does a real one).
fn into_blobs(snapshot: &Path, dir: &Path, depth: usize) -> Result<()> {
    use sha2::Digest as _;
    let blobs = snapshot
        .parent()
        .and_then(Path::parent)
        .context("a cache snapshot lies under <repo>/snapshots")?
        .join("blobs");
    std::fs::create_dir_all(&blobs)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            into_blobs(snapshot, &path, depth + 1)?;
            continue;
        }
        let sha = hex::encode(sha2::Sha256::digest(std::fs::read(&path)?));
        std::fs::rename(&path, blobs.join(&sha))?;
        let up = "../".repeat(depth + 2);
        std::os::unix::fs::symlink(format!("{up}blobs/{sha}"), &path)?;
    }
    Ok(())
}
