//! The seam every output destination implements (`OutputSink`), what storing an object gives
//! back (`StoredObject`), the settings shared by every sink (`OutputConfig`), and why an object
//! could not be stored (`OutputError`, with its customer-safe `upload_failed` error).

use crate::error::{ErrorCode, JobError};
use crate::s3::S3Settings;

/// The input field that names the destination; output errors point at it.
pub const DESTINATION_FIELD: &str = "output.destination";

/// A place that stores a job's files.
///
/// A sink is opened per job (see [`open_sink`]); whatever is expensive underneath (S3 clients)
/// is cached per process.
#[async_trait::async_trait]
pub trait OutputSink: Send + Sync {
    /// Store bytes under `key` (relative to the sink's prefix, e.g. `job-1/images/0.png`).
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<StoredObject, OutputError>;

    /// Read back an object (`None` when absent); the worker reads `result.json` with it.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, OutputError>;

    /// Human description for logs (never a secret or a signed URL).
    fn describe(&self) -> String;

    /// A fresh URL for an object stored earlier (`full_key` as `StoredObject::key` gave it), for
    /// a replayed outcome whose presigned URLs may have expired; `None`: its URL does not expire.
    async fn fresh_url(&self, full_key: &str) -> Result<Option<String>, OutputError> {
        let _ = full_key;
        Ok(None)
    }

    /// Whether stored objects outlive the job. `result.json` is only written to, and read
    /// from, sinks that keep it (not `inline`).
    fn persistent(&self) -> bool {
        true
    }
}

/// One stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    /// Full key including the sink's prefix (`prefix/job-1/images/0.png`).
    pub key: String,
    /// Where a client can fetch it: presigned or public HTTP(S) URL, or `file://` path.
    pub url: Option<String>,
    /// The bytes themselves, base64, for the `inline` destination.
    pub base64: Option<String>,
}

/// Settings shared by every sink (from the worker's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputConfig {
    /// Which S3 service `s3://` destinations are stored in, and as whom.
    pub s3: S3Settings,
    /// Lifetime of presigned GET URLs.
    pub presign_expiry_secs: u64,
    /// When set, URLs are `{public_base_url}/{key}` instead of presigned.
    pub public_base_url: Option<String>,
    /// Largest total of bytes one job may return inline (base64 in the outcome).
    pub inline_max_bytes: usize,
    /// `Cache-Control` header stored with S3 objects.
    pub cache_control: Option<String>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            s3: S3Settings::default(),
            presign_expiry_secs: 3600,
            public_base_url: None,
            inline_max_bytes: 8 * 1024 * 1024,
            cache_control: None,
        }
    }
}

/// Why an object could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A key that is empty, absolute or climbs out of the prefix (`..`).
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    /// Local file system failure.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An S3 request failed. `code` is the service's error code (`NoSuchBucket`) or a transport
    /// class (`dispatch`, `timeout`); `detail` is for logs only.
    #[error("s3 {op} s3://{bucket}/{key} failed: {code}")]
    S3 {
        op: &'static str,
        bucket: String,
        key: String,
        code: String,
        detail: String,
    },
    /// The inline destination would exceed its byte budget.
    #[error("inline outputs would total {total} bytes; the limit is {limit}")]
    InlineLimit { total: usize, limit: usize },
    /// A presigned or public URL could not be made.
    #[error("could not make a URL for {key}: {reason}")]
    Url { key: String, reason: String },
}

impl OutputError {
    /// The customer-safe job error (`upload_failed`, naming `output.destination`).
    ///
    /// The inline limit is `upload_failed` too, but not retryable: the same job would produce
    /// the same bytes again, and the fix is another destination (RunPod rejects results over
    /// 10-20 MB, so a larger inline result would fail later and less clearly).
    pub(crate) fn to_job_error(&self) -> JobError {
        let err = |msg: String| {
            JobError::new(
                ErrorCode::UploadFailed,
                format!("{DESTINATION_FIELD}: {msg}"),
            )
            .with_field(DESTINATION_FIELD)
        };
        match self {
            OutputError::InvalidKey(key) => {
                err(format!("invalid object key {key:?}")).with_retryable(false)
            }
            OutputError::Io { op, .. } => err(format!("could not {op} an output file")),
            OutputError::S3 {
                op,
                bucket,
                key,
                code,
                ..
            } => {
                let permanent = matches!(code.as_str(), "NoSuchBucket" | "InvalidBucketName");
                err(format!("S3 {op} of s3://{bucket}/{key} failed ({code})"))
                    .with_retryable(!permanent)
            }
            OutputError::InlineLimit { total, limit } => err(format!(
                "inline outputs would total {total} bytes, over the {limit}-byte limit for \
                 inline results; use an s3:// destination, fewer images or a smaller format"
            ))
            .with_retryable(false),
            OutputError::Url { key, .. } => err(format!("could not make a URL for {key}")),
        }
    }
}

impl From<OutputError> for JobError {
    fn from(e: OutputError) -> Self {
        e.to_job_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_limit_error_is_upload_failed_and_not_retryable() {
        let e = OutputError::InlineLimit {
            total: 30,
            limit: 10,
        }
        .to_job_error();
        assert_eq!(e.code, ErrorCode::UploadFailed);
        assert!(!e.retryable);
        assert_eq!(e.field.as_deref(), Some(DESTINATION_FIELD));
        assert!(e.message.contains("10-byte limit"), "{}", e.message);
    }

    #[test]
    fn s3_error_message_has_no_detail() {
        let e = OutputError::S3 {
            op: "put",
            bucket: "b".into(),
            key: "k".into(),
            code: "dispatch".into(),
            detail: "X-Amz-Signature=secret".into(),
        }
        .to_job_error();
        assert!(e.retryable);
        assert!(!e.message.contains("secret"));
    }
}
