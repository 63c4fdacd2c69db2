//! A model whose every file is on local disk (`ResolvedModel`), as every way of finding one
//! returns it (`hub`: presets, folders and manifest files; `diffusers`: diffusers folders), and
//! why one could not be found (`ModelError`).

use super::manifest::{ModelManifest, Role};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A model whose every file is on local disk.
#[derive(Debug, Clone)]
pub struct ResolvedModel {
    pub manifest: ModelManifest,
    pub paths: BTreeMap<Role, PathBuf>,
    /// Where it came from, for logs (`preset flux-schnell-q4 in /cache`, a folder path).
    pub source: String,
}

impl ResolvedModel {
    pub fn path(&self, role: Role) -> &Path {
        self.paths
            .get(&role)
            .map(PathBuf::as_path)
            .expect("resolve fills every role (manifest.check)")
    }

    /// Total bytes of the model's files.
    pub fn total_bytes(&self) -> u64 {
        // A shard index stands for its shards.
        self.paths
            .values()
            .flat_map(|p| super::safetensors::weight_files(p).unwrap_or_else(|_| vec![p.clone()]))
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Why a model could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model file {file} is missing{where_}; fetch it with `{fetch_hint}`")]
    Missing {
        file: String,
        where_: String,
        fetch_hint: String,
    },
    #[error("unknown model '{0}': not a preset ({1}) and not a folder or manifest file")]
    Unknown(String, String),
    #[error("bad model manifest {path}: {reason}")]
    Manifest { path: String, reason: String },
    #[error("download of {file} failed: {reason}")]
    Download { file: String, reason: String },
}
