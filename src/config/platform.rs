//! The platform's own variables, read where their SDKs and protocols expect them: the Hugging
//! Face cache (`HF_*`), and which platform this process runs on (Lambda's Runtime API, a RunPod
//! worker, an SQS queue to consume).

use std::path::PathBuf;

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else RunPod's cached-model volume when present, else
/// `~/.cache/huggingface/hub`.
pub(super) fn hf_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    let runpod = PathBuf::from("/runpod-volume/huggingface-cache/hub");
    if runpod.is_dir() {
        return runpod;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/huggingface/hub")
}

pub(super) fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// True when running under AWS Lambda (its Runtime API variable is set).
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// True when running as a RunPod serverless worker.
pub fn on_runpod() -> bool {
    std::env::var_os("RUNPOD_WEBHOOK_GET_JOB").is_some()
}

/// The SQS queue URL when this host should consume one.
pub fn sqs_queue_url() -> Option<String> {
    std::env::var("MERCHGEN_SQS_QUEUE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}
