//! Finding model files: presets in the Hugging Face cache layout (a RunPod network volume, an EFS
//! mount, `~/.cache/huggingface/hub`), downloaded with hf-hub when missing unless offline, or a
//! local folder / manifest file, or a diffusers folder (`diffusers.rs`). Never loads weights.

use super::diffusers;
use super::manifest::{ModelManifest, Role, MANIFEST_FILE};
use super::presets::{self, HubFile, PresetFiles};
pub use super::resolved::{ModelError, ResolvedModel};
use hf_hub::{Cache, Repo, RepoType};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the cache is and whether the network may be used.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub cache_dir: PathBuf,
    pub offline: bool,
    pub token: Option<String>,
}

impl HubSettings {
    /// The same cache, never downloading (for listing what is cached).
    pub fn offline(&self) -> HubSettings {
        HubSettings {
            offline: true,
            ..self.clone()
        }
    }

    /// An offline cache at `dir` (tests, listings of another folder).
    pub fn offline_at(dir: &Path) -> HubSettings {
        HubSettings {
            cache_dir: dir.to_owned(),
            offline: true,
            token: None,
        }
    }
}

/// Resolve `model` (a preset name, a diffusers folder with `model_index.json`, a folder holding
/// `merchgen-model.json`, or a manifest file).
/// With `download`, missing preset files are fetched into the cache unless offline.
pub fn resolve(
    model: &str,
    hub: &HubSettings,
    download: bool,
) -> Result<ResolvedModel, ModelError> {
    let path = Path::new(model);
    if diffusers::is_diffusers_folder(path) {
        return diffusers::resolve(path);
    }
    if path.is_dir() {
        return resolve_manifest_file(&path.join(MANIFEST_FILE), model);
    }
    if path.is_file() {
        return resolve_manifest_file(path, model);
    }
    let Some(preset) = presets::find(model) else {
        let names: Vec<&str> = presets::all().iter().map(|p| p.name).collect();
        return Err(ModelError::Unknown(model.to_owned(), names.join(", ")));
    };
    let source = format!("preset {} in {}", preset.name, hub.cache_dir.display());
    match preset.files {
        PresetFiles::Files(files, manifest) => {
            let mut paths = BTreeMap::new();
            for (role, file) in &files {
                paths.insert(*role, locate(file, preset.name, hub, download)?);
            }
            Ok(ResolvedModel {
                manifest: *manifest,
                paths,
                source,
            })
        }
        PresetFiles::ManifestRepo { repo, manifest } => {
            let manifest_file = HubFile {
                repo,
                revision: "main",
                path: manifest,
            };
            let manifest_path = locate(&manifest_file, preset.name, hub, download)?;
            let mut resolved = resolve_manifest_file(&manifest_path, &source)?;
            resolved.source = source;
            Ok(resolved)
        }
    }
}

/// Find one hub file in the cache (downloading it when allowed); `preset` names the fetch hint.
pub(crate) fn locate_file(
    file: &HubFile,
    preset: &str,
    hub: &HubSettings,
    download: bool,
) -> Result<PathBuf, ModelError> {
    locate(file, preset, hub, download)
}

fn locate(
    file: &HubFile,
    preset: &str,
    hub: &HubSettings,
    download: bool,
) -> Result<PathBuf, ModelError> {
    let repo = Repo::with_revision(
        file.repo.to_owned(),
        RepoType::Model,
        file.revision.to_owned(),
    );
    if let Some(path) = pinned_snapshot(file, &hub.cache_dir) {
        return Ok(path);
    }
    if let Some(path) = Cache::new(hub.cache_dir.clone())
        .repo(repo.clone())
        .get(file.path)
        .filter(|_| !is_commit(file.revision))
    {
        return Ok(path);
    }
    let missing = || ModelError::Missing {
        file: format!("{}/{}", file.repo, file.path),
        where_: format!(" from {}", hub.cache_dir.display()),
        fetch_hint: format!("merchgen models fetch --model {preset}"),
    };
    if !download || hub.offline {
        return Err(missing());
    }
    tracing::info!(
        repo = file.repo,
        file = file.path,
        "downloading model file into the cache"
    );
    if crate::engine::files::presets::pins::UNPINNED.contains(&file.repo) {
        tracing::warn!(repo = file.repo, revision = file.revision, file = file.path,
            "this preset file is not pinned to a commit: the snapshot fetched now is whatever the branch holds");
    }
    let api = hf_hub::api::sync::ApiBuilder::from_cache(Cache::new(hub.cache_dir.clone()))
        .with_progress(true)
        .with_token(hub.token.clone())
        .build()
        .map_err(|e| ModelError::Download {
            file: file.path.to_owned(),
            reason: e.to_string(),
        })?;
    api.repo(repo)
        .get(file.path)
        .map_err(|e| ModelError::Download {
            file: format!("{}/{}", file.repo, file.path),
            reason: format!(
                "{e} (offline? set HF_HUB_OFFLINE=1 and run `make demo` for a tiny model)"
            ),
        })
}

/// A revision that names a commit (40 hex digits) rather than a branch or tag.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A file pinned to a commit is looked up in that commit's snapshot only (hf-hub's cache looks
/// revisions up through `refs/`, which holds branch names, not commits), so a cache that holds
/// another commit of the repo is not taken for it.
fn pinned_snapshot(file: &HubFile, cache_dir: &Path) -> Option<PathBuf> {
    if !is_commit(file.revision) {
        return None;
    }
    let path = cache_dir
        .join(format!("models--{}", file.repo.replace('/', "--")))
        .join("snapshots")
        .join(file.revision.to_ascii_lowercase())
        .join(file.path);
    path.exists().then_some(path)
}

fn resolve_manifest_file(path: &Path, source: &str) -> Result<ResolvedModel, ModelError> {
    let bad = |reason: String| ModelError::Manifest {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let manifest: ModelManifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    manifest.check().map_err(bad)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut paths = BTreeMap::new();
    for role in Role::ALL {
        let rel = manifest.file(role).expect("checked above");
        let file = dir.join(rel);
        if !file.is_file() {
            return Err(ModelError::Missing {
                file: file.display().to_string(),
                where_: String::new(),
                fetch_hint: "merchgen models tiny --out DIR (or restore the model folder)"
                    .to_owned(),
            });
        }
        paths.insert(role, file);
    }
    Ok(ResolvedModel {
        manifest,
        paths,
        source: source.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_preset_missing_offline_names_file_and_command() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(
            "flux-schnell-q4",
            &HubSettings::offline_at(dir.path()),
            true,
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("merchgen models fetch --model flux-schnell-q4"),
            "{msg}"
        );
        assert!(
            msg.contains(".gguf") || msg.contains(".safetensors") || msg.contains(".json"),
            "{msg}"
        );
    }

    #[test]
    fn a_file_pinned_to_a_commit_is_found_only_in_that_commits_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let snapshot =
            crate::engine::tiny::write(dir.path(), 4, crate::engine::tiny::TinyLayout::Cache)
                .unwrap();
        let commit = snapshot.file_name().unwrap().to_str().unwrap().to_owned();
        let commit: &'static str = Box::leak(commit.into_boxed_str());
        let pinned = HubFile {
            repo: crate::engine::files::presets::TINY_REPO,
            revision: commit,
            path: "ae.safetensors",
        };
        let hub = HubSettings::offline_at(dir.path());
        assert_eq!(
            locate_file(&pinned, "tiny-flux", &hub, false).unwrap(),
            snapshot.join("ae.safetensors")
        );
        let other = HubFile {
            revision: "0000000000000000000000000000000000000001",
            ..pinned
        };
        let err = locate_file(&other, "tiny-flux", &hub, false).unwrap_err();
        assert!(err.to_string().contains("merchgen models fetch"), "{err}");
    }

    #[test]
    fn resolve_unknown_lists_presets() {
        let dir = tempfile::tempdir().unwrap();
        let msg = resolve("sdxl", &HubSettings::offline_at(dir.path()), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("flux-schnell-q8"), "{msg}");
    }
}
