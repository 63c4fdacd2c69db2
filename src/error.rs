//! Public error codes and the one error type that crosses the job boundary.
//!
//! `ErrorCode` is public API: its strings are append-only and each is marked retryable or not.
//! Module errors stay in their modules (thiserror enums) and are turned into a `JobError` where a
//! job fails; `JobError::message` is safe to show a customer, internal detail goes to the logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable, machine-readable failure codes (append-only; pinned by a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    InputFetchFailed,
    InputTooLarge,
    ModelUnavailable,
    GpuOutOfMemory,
    GenerationFailed,
    MockupFailed,
    UploadFailed,
    Timeout,
    Cancelled,
    Internal,
    /// A job reused the `id` of an earlier, different job whose result is stored.
    JobIdConflict,
}

impl ErrorCode {
    /// Every code, in the order they were published.
    #[cfg(test)]
    pub(crate) const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidInput,
        ErrorCode::InputFetchFailed,
        ErrorCode::InputTooLarge,
        ErrorCode::ModelUnavailable,
        ErrorCode::GpuOutOfMemory,
        ErrorCode::GenerationFailed,
        ErrorCode::MockupFailed,
        ErrorCode::UploadFailed,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::Internal,
        ErrorCode::JobIdConflict,
    ];

    /// The wire string, e.g. `invalid_input`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::InputFetchFailed => "input_fetch_failed",
            ErrorCode::InputTooLarge => "input_too_large",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::GpuOutOfMemory => "gpu_out_of_memory",
            ErrorCode::GenerationFailed => "generation_failed",
            ErrorCode::MockupFailed => "mockup_failed",
            ErrorCode::UploadFailed => "upload_failed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::Internal => "internal",
            ErrorCode::JobIdConflict => "job_id_conflict",
        }
    }

    /// Whether delivering the same job again may succeed. Bad input never will; a transient
    /// fault of a peer, the device or this worker might.
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            ErrorCode::InvalidInput
                | ErrorCode::InputTooLarge
                | ErrorCode::MockupFailed
                | ErrorCode::JobIdConflict
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The failure of one job, as reported in its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct JobError {
    pub code: ErrorCode,
    /// Safe to show a customer; names the field at fault where there is one.
    pub message: String,
    /// The input field at fault, as a JSON path such as `mockups.products[1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub retryable: bool,
}

impl JobError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        JobError {
            code,
            message: message.into(),
            field: None,
            retryable: code.retryable(),
        }
    }

    /// An `invalid_input` error about one field; the message names the field.
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        let field = field.into();
        JobError {
            code: ErrorCode::InvalidInput,
            message: format!("{field}: {message}"),
            field: Some(field),
            retryable: false,
        }
    }

    /// Attach the field at fault (keeps the message as is).
    pub(crate) fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Override the retry hint (e.g. a fetch that failed with a 404 is not worth retrying).
    pub(crate) fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        JobError::new(ErrorCode::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_pinned() {
        let wire: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            wire,
            [
                "invalid_input",
                "input_fetch_failed",
                "input_too_large",
                "model_unavailable",
                "gpu_out_of_memory",
                "generation_failed",
                "mockup_failed",
                "upload_failed",
                "timeout",
                "cancelled",
                "internal",
                "job_id_conflict"
            ]
        );
        for c in ErrorCode::ALL {
            assert_eq!(c.as_str(), serde_json::to_value(c).unwrap());
        }
    }

    #[test]
    fn error_codes_retryable_flags_are_pinned() {
        let retryable: Vec<&str> = ErrorCode::ALL
            .iter()
            .filter(|c| c.retryable())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            retryable,
            [
                "input_fetch_failed",
                "model_unavailable",
                "gpu_out_of_memory",
                "generation_failed",
                "upload_failed",
                "timeout",
                "cancelled",
                "internal"
            ]
        );
    }

    #[test]
    fn job_error_invalid_names_field_in_message_and_field() {
        let e = JobError::invalid("width", "must be a multiple of 16");
        assert_eq!(e.field.as_deref(), Some("width"));
        assert!(e.message.starts_with("width:"));
        assert!(!e.retryable);
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["code"], "invalid_input");
    }
}
