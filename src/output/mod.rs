//! Where a job's files go: one async `OutputSink` trait (`sink`) with an S3 sink (any
//! S3-compatible endpoint, clients from `crate::s3`), a local-folder sink (`folder`) and an
//! inline (base64) sink, the key layout (`keys`), and `open_sink` to pick one by destination.
//!
//! This module stores bytes; it never encodes images, never decides what a job produces, and never
//! puts credentials or signed URLs into an error message or a log line.

pub(crate) mod folder;
pub(crate) mod inline;
pub mod keys;
pub(crate) mod s3;
pub(crate) mod sink;

use crate::error::JobError;
use std::sync::Arc;

pub(crate) use folder::LocalSink;
pub(crate) use inline::InlineSink;
pub use s3::S3Sink;
pub use sink::OutputConfig;
pub use sink::{OutputError, OutputSink, StoredObject, DESTINATION_FIELD};

/// Open the sink for a destination: `s3://bucket/prefix`, `inline`, or a local folder
/// (optionally `file://`). Call once per job: the inline budget counts over one sink's life.
pub async fn open_sink(
    destination: &str,
    cfg: &OutputConfig,
) -> Result<Arc<dyn OutputSink>, JobError> {
    if destination == "inline" {
        return Ok(Arc::new(InlineSink::new(cfg.inline_max_bytes)));
    }
    if destination.starts_with("s3://") {
        let (bucket, prefix) = crate::s3::parse_url(destination)
            .map_err(|e| JobError::invalid(DESTINATION_FIELD, e.to_string()))?;
        let client = crate::s3::client(&cfg.s3).await;
        return Ok(Arc::new(S3Sink::new(client, bucket, prefix, cfg)));
    }
    let folder = destination.strip_prefix("file://").unwrap_or(destination);
    if folder.is_empty() || (destination.contains("://") && !destination.starts_with("file://")) {
        return Err(JobError::invalid(
            DESTINATION_FIELD,
            "must be `inline`, `s3://bucket/prefix` or a folder",
        ));
    }
    Ok(Arc::new(LocalSink::new(folder)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[tokio::test]
    async fn open_sink_picks_kind_from_destination() {
        let cfg = OutputConfig::default();
        let dir = std::env::temp_dir().join("merchgen-open-sink-test");
        let local = open_sink(dir.to_str().unwrap(), &cfg).await.unwrap();
        assert!(local.describe().starts_with("folder "));
        let inline = open_sink("inline", &cfg).await.unwrap();
        assert!(!inline.persistent());
        let err = open_sink("ftp://x/y", &cfg).await.err().unwrap();
        assert_eq!(err.code, ErrorCode::InvalidInput);
    }
}
