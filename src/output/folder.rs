//! `LocalSink`: a folder on this machine (`merchgen invoke` writes to `./out`). Writes are atomic
//! (a temp file in the same folder, synced, then renamed), so a reader never sees half a file.

use super::keys;
use super::sink::{OutputError, OutputSink, StoredObject};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Stores objects as files under a root folder.
#[derive(Debug, Clone)]
pub(crate) struct LocalSink {
    root: PathBuf,
}

impl LocalSink {
    /// A sink rooted at `folder` (created on first write).
    pub(crate) fn new(folder: impl Into<PathBuf>) -> Self {
        LocalSink {
            root: folder.into(),
        }
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, OutputError> {
        keys::check(key)?;
        Ok(self.root.join(key))
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> OutputError {
    let path = path.display().to_string();
    move |source| OutputError::Io { op, path, source }
}

/// `file://` URL of a path, absolute where the current directory is known.
fn file_url(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file://{}", abs.display())
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_err("create folder", dir))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = async {
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_err("create", &tmp))?;
        file.write_all(bytes).await.map_err(io_err("write", &tmp))?;
        file.sync_all().await.map_err(io_err("sync", &tmp))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(io_err("rename", path))
    }
    .await;
    if result.is_err() {
        // Best effort: a leftover temp file is harmless but untidy.
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

#[async_trait::async_trait]
impl OutputSink for LocalSink {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        _content_type: &str,
    ) -> Result<StoredObject, OutputError> {
        let path = self.path_of(key)?;
        write_atomic(&path, &bytes).await?;
        Ok(StoredObject {
            key: key.to_owned(),
            url: Some(file_url(&path)),
            base64: None,
        })
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, OutputError> {
        let path = self.path_of(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    fn describe(&self) -> String {
        format!("folder {}", self.root.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_then_get_roundtrips_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        let stored = sink
            .put("j/images/0.png", vec![1, 2, 3], "image/png")
            .await
            .unwrap();
        assert_eq!(stored.key, "j/images/0.png");
        assert!(stored.url.unwrap().starts_with("file:///"));
        assert_eq!(
            sink.get("j/images/0.png").await.unwrap(),
            Some(vec![1, 2, 3])
        );
        sink.put("j/images/0.png", vec![9], "image/png")
            .await
            .unwrap();
        assert_eq!(sink.get("j/images/0.png").await.unwrap(), Some(vec![9]));
        let names: Vec<_> = std::fs::read_dir(dir.path().join("j/images"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["0.png"]);
    }

    #[tokio::test]
    async fn get_missing_is_none_and_escaping_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalSink::new(dir.path());
        assert_eq!(sink.get("j/result.json").await.unwrap(), None);
        let err = sink.put("../evil", vec![], "x").await.unwrap_err();
        assert!(matches!(err, OutputError::InvalidKey(_)));
    }
}
