//! Is a cached hub file the file the hub published? hf-hub stores each download as
//! `blobs/<etag>` and links `snapshots/<commit>/<path>` to it; the etag is the hub's own
//! metadata, kept at fetch time: for LFS files (all weights) the file's SHA-256, for small git
//! files (configs, tokenizers) the git blob SHA-1. `check` hashes the file and compares, so a
//! truncated, corrupted or swapped file is caught, not only a bad header. The commit the
//! snapshot came from is reported too.

use sha2::Digest as _;
use std::io::Read;
use std::path::Path;

/// What the hub's metadata says a file must hash to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expected {
    /// An LFS file: SHA-256, hex.
    Sha256(String),
    /// A git file: the git blob SHA-1 (`sha1("blob <len>\0" + content)`), hex.
    GitBlobSha1(String),
    /// Not a hub cache entry (a local folder): nothing to compare with.
    Unknown,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub bytes: u64,
    pub sha256: String,
    /// The hub commit of the snapshot holding the file, when it is in the hub cache.
    pub commit: Option<String>,
    /// `None`: no metadata to compare with (not from the hub cache).
    pub matches: Option<bool>,
    pub expected: Expected,
}

/// The expected hash of `path`, from the blob it links to.
pub(crate) fn expected(path: &Path) -> Expected {
    let Ok(target) = std::fs::read_link(path) else {
        return Expected::Unknown;
    };
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let hex = |n: usize| name.len() == n && name.bytes().all(|b| b.is_ascii_hexdigit());
    let in_blobs = target
        .parent()
        .and_then(|p| p.file_name())
        .is_some_and(|p| p == "blobs");
    match () {
        _ if in_blobs && hex(64) => Expected::Sha256(name),
        _ if in_blobs && hex(40) => Expected::GitBlobSha1(name),
        _ => Expected::Unknown,
    }
}

/// The commit of `snapshots/<commit>/...` in `path`, when it is one.
pub(crate) fn snapshot_commit(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path.iter().filter_map(|c| c.to_str()).collect();
    let at = parts.iter().rposition(|c| *c == "snapshots")?;
    let commit = parts.get(at + 1)?;
    (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (*commit).to_owned())
}

/// Hash `path` (streamed) and compare with the hub's metadata.
pub(crate) fn check(path: &Path) -> std::io::Result<Checked> {
    let expected = expected(path);
    let mut file = std::fs::File::open(path)?;
    let bytes = file.metadata()?.len();
    let mut sha256 = sha2::Sha256::new();
    let mut git = <sha1::Sha1 as sha1::Digest>::new();
    sha1::Digest::update(&mut git, format!("blob {bytes}\0").as_bytes());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        if matches!(expected, Expected::GitBlobSha1(_)) {
            sha1::Digest::update(&mut git, &buf[..n]);
        }
    }
    let sha256 = hex::encode(sha256.finalize());
    let matches = match &expected {
        Expected::Sha256(want) => Some(*want == sha256),
        Expected::GitBlobSha1(want) => Some(*want == hex::encode(sha1::Digest::finalize(git))),
        Expected::Unknown => None,
    };
    Ok(Checked {
        bytes,
        sha256,
        commit: snapshot_commit(path),
        matches,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub-cache entry as hf-hub lays it out: the blob named by its etag, the snapshot a link.
    fn cached(dir: &Path, etag: &str, content: &[u8]) -> std::path::PathBuf {
        let repo = dir.join("models--org--name");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::create_dir_all(repo.join("snapshots").join(commit)).unwrap();
        std::fs::write(repo.join("blobs").join(etag), content).unwrap();
        let link = repo.join("snapshots").join(commit).join("file.bin");
        std::os::unix::fs::symlink(format!("../../blobs/{etag}"), &link).unwrap();
        link
    }

    #[test]
    fn an_lfs_file_matches_its_sha256_etag_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let content = b"weights";
        let etag = hex::encode(sha2::Sha256::digest(content));
        let path = cached(dir.path(), &etag, content);
        let ok = check(&path).unwrap();
        assert_eq!(ok.matches, Some(true));
        assert_eq!(ok.bytes, 7);
        assert_eq!(
            ok.commit.as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        std::fs::write(&path, b"weighs!").unwrap();
        assert_eq!(
            check(&path).unwrap().matches,
            Some(false),
            "same size, other bytes"
        );
    }

    #[test]
    fn a_git_file_matches_its_blob_sha1() {
        let dir = tempfile::tempdir().unwrap();
        // `printf '{}\n' | git hash-object --stdin`
        let path = cached(
            dir.path(),
            "0967ef424bce6791893e9a57bb952f80fd536e93",
            b"{}\n",
        );
        assert_eq!(check(&path).unwrap().matches, Some(true));
    }

    #[test]
    fn a_plain_file_has_nothing_to_compare_with() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, b"x").unwrap();
        let checked = check(&path).unwrap();
        assert_eq!((checked.matches, checked.commit), (None, None));
    }
}
