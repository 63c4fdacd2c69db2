//! The worker's LoRA stage: each LoRA a job names, from the volume's cache (`LoraCache`) or
//! fetched once through the guarded fetcher (the SSRF rules and a byte cap of their own) and
//! stored there, ready for the engine to read by path.

use crate::engine::files::lora_cache::LoraCache;
use crate::engine::LoraInput;
use crate::error::JobError;
use crate::fetch::Fetcher;
use crate::job::ImageSource;
use crate::job::{LoraSource, ValidLora};

/// Where LoRAs come from and go.
#[derive(Debug, Clone)]
pub struct LoraSettings {
    pub cache: LoraCache,
    /// Largest LoRA file accepted (`MERCHGEN_LORA_MAX_BYTES`).
    pub max_bytes: usize,
    /// The hub `hf` sources are read from (`HF_ENDPOINT`, default `https://huggingface.co`).
    pub(crate) hub_endpoint: String,
}

/// How many LoRA files came from the cache and how many were fetched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoraFetchCounts {
    pub(crate) cached: usize,
    pub fetched: usize,
}

/// Each LoRA of the job as a cached file, in the job's order.
pub(crate) async fn resolve(
    loras: &[ValidLora],
    fetcher: &Fetcher,
    settings: &LoraSettings,
) -> Result<(Vec<LoraInput>, LoraFetchCounts), JobError> {
    let mut out = Vec::with_capacity(loras.len());
    let mut counts = LoraFetchCounts::default();
    for (index, lora) in loras.iter().enumerate() {
        let field = format!("loras[{index}].source");
        // Errors name the field the job gave: `.url`, `.s3`, `.path`, or `.hf` for a hub file
        // (fetched by its URL).
        let (source, key, sub_field) = match &lora.source {
            LoraSource::Input(source) => (
                source.clone(),
                source_key(source),
                format!("{field}.{}", source.field()),
            ),
            LoraSource::Hub {
                repo,
                revision,
                file,
            } => (
                ImageSource::Url(format!(
                    "{}/{repo}/resolve/{revision}/{file}",
                    settings.hub_endpoint.trim_end_matches('/')
                )),
                Some(format!("hf://{repo}@{revision}/{file}")),
                format!("{field}.hf"),
            ),
        };
        let cached = key.as_deref().and_then(|k| settings.cache.lookup(k));
        let file = match cached {
            Some(file) => {
                counts.cached += 1;
                file
            }
            None => {
                let bytes = fetcher
                    .fetch_bytes_as(&source, &sub_field, settings.max_bytes)
                    .await?;
                counts.fetched += 1;
                let cache = settings.cache.clone();
                tokio::task::spawn_blocking(move || cache.store(key.as_deref(), &bytes))
                    .await
                    .map_err(|e| JobError::internal(format!("storing a LoRA: {e}")))?
                    .map_err(|e| {
                        tracing::error!(error = %format!("{e:#}"), "the LoRA cache is not writable");
                        JobError::internal("the worker could not store the LoRA file")
                    })?
            }
        };
        out.push(LoraInput {
            index,
            path: file.path,
            sha256: file.sha256,
            scale: lora.scale,
            skip_text_encoder: lora.skip_text_encoder,
        });
    }
    Ok((out, counts))
}

/// The cache key of a source; `None` for local paths (always read again: the file may change).
fn source_key(source: &ImageSource) -> Option<String> {
    match source {
        ImageSource::Url(url) => Some(url.clone()),
        ImageSource::S3 { bucket, key } => Some(format!("s3://{bucket}/{key}")),
        ImageSource::Base64(_) | ImageSource::Path(_) => None,
    }
}
