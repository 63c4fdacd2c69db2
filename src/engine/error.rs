//! `EngineError`: why a generation or a model load failed, classified (out of memory, a broken
//! device, bad input), and its public `JobError` at the job boundary.

use crate::error::{ErrorCode, JobError};

/// Engine failures, mapped to public codes at the job boundary.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("the job was cancelled")]
    Cancelled,
    #[error("the GPU ran out of memory: {0}")]
    OutOfMemory(String),
    #[error("generation failed: {0}")]
    Failed(String),
    #[error("model unavailable: {0}")]
    ModelUnavailable(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the engine thread stopped")]
    Stopped,
}

impl EngineError {
    /// Classify a candle / loading error.
    pub fn from_candle(e: impl std::fmt::Display) -> Self {
        let text = format!("{e:#}");
        if text.contains("out of memory") || text.contains("OUT_OF_MEMORY") {
            EngineError::OutOfMemory(text)
        } else {
            EngineError::Failed(text)
        }
    }

    /// True when the device may be unusable afterwards (a RunPod worker should be replaced).
    pub(crate) fn device_broken(&self) -> bool {
        matches!(self, EngineError::Failed(t) if t.contains("CUDA_ERROR") || t.contains("cuda error"))
            || matches!(self, EngineError::Stopped)
    }
}

impl From<EngineError> for JobError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Cancelled => JobError::new(ErrorCode::Cancelled, "the job was cancelled"),
            EngineError::OutOfMemory(_) => JobError::new(
                ErrorCode::GpuOutOfMemory,
                "the GPU ran out of memory; try fewer images or a smaller size",
            ),
            EngineError::Failed(_) | EngineError::Stopped => {
                JobError::new(ErrorCode::GenerationFailed, "image generation failed")
            }
            EngineError::ModelUnavailable(m) => JobError::new(ErrorCode::ModelUnavailable, m),
            EngineError::Invalid { field, message } => JobError::invalid(field, message),
        }
    }
}
