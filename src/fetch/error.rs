//! Why an input could not be fetched or decoded, and how each reason becomes a customer-safe
//! `JobError` naming the field (`image.url: the server answered HTTP 404`).

use crate::error::{ErrorCode, JobError};

/// A fetch or decode failure. Display texts are safe to show a customer: no URLs (they may
/// carry tokens), no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("is not a valid URL")]
    BadUrl,
    /// A literal address (or scheme) in the input itself.
    #[error("{0}, which is not allowed")]
    RefusedInput(String),
    /// Refused after resolution or on a redirect.
    #[error("was refused: {0}")]
    Refused(String),
    #[error("is larger than the {limit}-byte limit")]
    TooLarge { limit: usize },
    #[error("timed out after {0} s")]
    Timeout(u64),
    #[error("could not be reached")]
    Connect,
    #[error("the server answered HTTP {0}")]
    Status(u16),
    #[error("could not be fetched: {0}")]
    Transfer(String),
    #[error("was not found")]
    NotFound,
    #[error("could not be read from S3 ({code})")]
    S3 { code: String, retryable: bool },
    #[error("is not valid base64")]
    BadBase64,
    #[error("is a data: URI that is not base64")]
    DataUriNotBase64,
    #[error("local paths are accepted only by `merchgen invoke`")]
    PathsNotAllowed,
    #[error("is empty (zero bytes)")]
    Empty,
    #[error("is not an image (PNG, JPEG or WebP expected)")]
    NotAnImage,
    #[error("is a {0} image; PNG, JPEG or WebP expected")]
    Unsupported(String),
    #[error("has zero width or height")]
    ZeroSize,
    #[error("is {width}x{height} pixels; at most {max} pixels are accepted")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("needs more memory to decode than allowed")]
    DecodeLimit,
    #[error("could not be decoded as {format}: {detail}")]
    Corrupt { format: String, detail: String },
    #[error("could not be decoded (internal error)")]
    Internal,
}

impl FetchError {
    /// The public code of this failure.
    pub(crate) fn code(&self) -> ErrorCode {
        use FetchError::*;
        match self {
            BadUrl
            | RefusedInput(_)
            | BadBase64
            | DataUriNotBase64
            | PathsNotAllowed
            | Empty
            | NotAnImage
            | Unsupported(_)
            | ZeroSize
            | Corrupt { .. } => ErrorCode::InvalidInput,
            TooLarge { .. } | TooManyPixels { .. } | DecodeLimit => ErrorCode::InputTooLarge,
            Internal => ErrorCode::Internal,
            Refused(_) | Timeout(_) | Connect | Status(_) | Transfer(_) | NotFound | S3 { .. } => {
                ErrorCode::InputFetchFailed
            }
        }
    }

    /// Whether fetching again later may succeed.
    pub(crate) fn retryable(&self) -> bool {
        match self {
            FetchError::Timeout(_) | FetchError::Connect | FetchError::Transfer(_) => true,
            FetchError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            FetchError::S3 { retryable, .. } => *retryable,
            FetchError::Internal => true,
            _ => false,
        }
    }

    /// The job error for input field `field` (e.g. `image.url`).
    pub(crate) fn to_job_error(&self, field: &str) -> JobError {
        JobError::new(self.code(), format!("{field}: {self}"))
            .with_field(field)
            .with_retryable(self.retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_error_names_field_and_keeps_codes() {
        let e = FetchError::RefusedInput("refers to a loopback address".into())
            .to_job_error("image.url");
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert_eq!(e.field.as_deref(), Some("image.url"));
        assert!(e
            .message
            .starts_with("image.url: refers to a loopback address"));
        let e = FetchError::Refused("x".into()).to_job_error("image.url");
        assert_eq!((e.code, e.retryable), (ErrorCode::InputFetchFailed, false));
        assert!(FetchError::Status(503).to_job_error("f").retryable);
        assert!(!FetchError::Status(404).to_job_error("f").retryable);
        let e = FetchError::TooLarge { limit: 5 }.to_job_error("image.base64");
        assert_eq!((e.code, e.retryable), (ErrorCode::InputTooLarge, false));
    }
}
