//! The LoRA cache on the model volume: files stored under their content's SHA-256
//! (`blobs/<sha256>.safetensors`), and for each source a job named (a URL, an `s3://` object, a
//! hub file) a small record of the content it gave (`sources/<sha256 of the source>`), so a LoRA
//! is fetched once per volume, however many workers share it. Writes go to a temporary file and
//! are renamed into place, so a reader never sees half a file and two workers storing the same
//! LoRA at once both end with the same complete file.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// A cached LoRA file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLora {
    pub path: PathBuf,
    /// Hex SHA-256 of the file.
    pub sha256: String,
}

/// The cache folder.
#[derive(Debug, Clone)]
pub struct LoraCache {
    dir: PathBuf,
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl LoraCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoraCache { dir: dir.into() }
    }

    fn blob(&self, sha256: &str) -> PathBuf {
        self.dir.join("blobs").join(format!("{sha256}.safetensors"))
    }

    fn source_record(&self, source: &str) -> PathBuf {
        self.dir.join("sources").join(hex_sha256(source.as_bytes()))
    }

    /// The file `source` gave before, if it is still complete in the cache.
    pub(crate) fn lookup(&self, source: &str) -> Option<CachedLora> {
        let sha256 = std::fs::read_to_string(self.source_record(source)).ok()?;
        let sha256 = sha256.trim();
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        let path = self.blob(sha256);
        (valid && path.is_file()).then(|| CachedLora {
            path,
            sha256: sha256.to_owned(),
        })
    }

    /// Store `bytes` fetched from `source` (`None`: a local file, stored by content only, since
    /// the file at that path may change).
    pub fn store(&self, source: Option<&str>, bytes: &[u8]) -> Result<CachedLora> {
        let sha256 = hex_sha256(bytes);
        let path = self.blob(&sha256);
        if !path.is_file() {
            write_atomic(&path, bytes)?;
        }
        if let Some(source) = source {
            write_atomic(&self.source_record(source), sha256.as_bytes())?;
        }
        Ok(CachedLora { path, sha256 })
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("a cache file has a folder")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("storing {}", path.display()))?;
    Ok(())
}

/// The hex SHA-256 of a local file (a `path` source, read where it lies).
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(hex_sha256(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_by_content_and_finds_by_source() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LoraCache::new(dir.path());
        assert_eq!(cache.lookup("https://x/a.safetensors"), None);
        let a = cache
            .store(Some("https://x/a.safetensors"), b"one")
            .unwrap();
        let b = cache.store(Some("s3://b/k"), b"one").unwrap();
        assert_eq!(cache.store(None, b"one").unwrap(), a);
        assert_eq!(a, b, "the same content is one file");
        assert_eq!(std::fs::read(&a.path).unwrap(), b"one");
        assert_eq!(cache.lookup("https://x/a.safetensors"), Some(a.clone()));
        std::fs::remove_file(&a.path).unwrap();
        assert_eq!(
            cache.lookup("s3://b/k"),
            None,
            "a record without its file is a miss"
        );
    }
}
