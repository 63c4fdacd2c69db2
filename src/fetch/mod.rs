//! Input fetching: every `ImageSource` (URL, `s3://`, base64 / `data:`, local path)
//! to bytes under a byte cap, and bytes to a bounded, EXIF-oriented RGBA image.
//!
//! URLs go through the guarded client of `crate::net` (the SSRF rules webhooks share). Must not
//! know about jobs beyond the source it is handed, and must not log URLs (they may carry tokens).

pub(crate) mod decode;
pub(crate) mod error;
pub(crate) mod http;
pub(crate) mod sources;

use crate::error::JobError;
use crate::job::ImageSource;
use crate::net::{GuardedClient, Redirects};
use crate::s3::S3Settings;
use image::RgbaImage;
use std::sync::Arc;
use std::time::Duration;

pub(crate) use error::FetchError;

/// Limits and permissions for fetching inputs (from the worker's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Whole-request timeout for URL inputs.
    pub timeout_secs: u64,
    /// Largest input accepted, in bytes (after base64 decoding).
    pub max_bytes: usize,
    /// Largest decoded image accepted, in pixels (width x height).
    pub max_pixels: u64,
    /// Redirects followed at most.
    pub max_redirects: usize,
    /// Address ranges opened despite the SSRF rules (`MERCHGEN_FETCH_ALLOW`).
    pub allow_cidrs: Vec<ipnet::IpNet>,
    /// Whether `{"path": ...}` sources are accepted (`merchgen invoke` only).
    pub allow_paths: bool,
    /// S3 settings for `s3://` sources (the same client cache as the S3 sink).
    pub s3: S3Settings,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            timeout_secs: 30,
            max_bytes: 32 * 1024 * 1024,
            max_pixels: 50_000_000,
            max_redirects: 5,
            allow_cidrs: Vec::new(),
            allow_paths: false,
            s3: S3Settings::default(),
        }
    }
}

/// Fetches and decodes inputs. Build once per process and share (`Arc` or clone: the HTTP
/// client inside is a handle to one connection pool).
#[derive(Debug, Clone)]
pub struct Fetcher {
    cfg: Arc<FetchConfig>,
    client: GuardedClient,
}

impl Fetcher {
    /// A fetcher with its guarded HTTP client. Fails only if the TLS stack cannot start.
    pub fn new(cfg: FetchConfig) -> Result<Self, reqwest::Error> {
        let client = GuardedClient::new(
            cfg.allow_cidrs.clone(),
            Duration::from_secs(cfg.timeout_secs),
            Redirects::Follow(cfg.max_redirects),
        )?;
        Ok(Fetcher {
            cfg: Arc::new(cfg),
            client,
        })
    }

    /// The raw bytes of `source`. `field` is the input field holding it (`image`, `design`);
    /// errors name the sub-field (`image.url`, `image.base64`, ...).
    pub async fn fetch_bytes(
        &self,
        source: &ImageSource,
        field: &str,
    ) -> Result<Vec<u8>, JobError> {
        self.fetch_bytes_capped(source, field, self.cfg.max_bytes)
            .await
    }

    /// As `fetch_bytes`, under a cap of `max_bytes` instead of the image cap (LoRA files).
    pub(crate) async fn fetch_bytes_capped(
        &self,
        source: &ImageSource,
        field: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, JobError> {
        let sub = format!("{field}.{}", source.field());
        self.fetch_bytes_as(source, &sub, max_bytes).await
    }

    /// As `fetch_bytes_capped`, with errors naming `sub_field` itself (a source the job named
    /// otherwise, such as a hub file fetched by its URL).
    pub(crate) async fn fetch_bytes_as(
        &self,
        source: &ImageSource,
        sub_field: &str,
        max_bytes: usize,
    ) -> Result<Vec<u8>, JobError> {
        self.bytes(source, max_bytes).await.map_err(|e| {
            tracing::info!(field = %sub_field, code = %e.code(), reason = %e, "input refused");
            e.to_job_error(sub_field)
        })
    }

    /// `source` fetched and decoded to RGBA (pixel budget checked from the header first, EXIF
    /// orientation applied). Decoding runs on a blocking thread.
    pub async fn fetch_image(
        &self,
        source: &ImageSource,
        field: &str,
    ) -> Result<RgbaImage, JobError> {
        let bytes = self.fetch_bytes(source, field).await?;
        let sub = format!("{field}.{}", source.field());
        let max_pixels = self.cfg.max_pixels;
        let decoded = tokio::task::spawn_blocking(move || decode::decode(&bytes, max_pixels))
            .await
            .unwrap_or(Err(FetchError::Internal));
        decoded.map_err(|e| {
            tracing::info!(field = %sub, code = %e.code(), reason = %e, "input image refused");
            e.to_job_error(&sub)
        })
    }

    async fn bytes(&self, source: &ImageSource, max: usize) -> Result<Vec<u8>, FetchError> {
        let bytes = match source {
            ImageSource::Url(url) => {
                http::get(&self.client, url, max, self.cfg.timeout_secs).await?
            }
            ImageSource::S3 { bucket, key } => {
                let client = crate::s3::client(&self.cfg.s3).await;
                sources::read_s3(&client, bucket, key, max).await?
            }
            ImageSource::Base64(text) => sources::decode_base64(text, max)?,
            ImageSource::Path(path) if self.cfg.allow_paths => {
                sources::read_path(path, max).await?
            }
            ImageSource::Path(_) => return Err(FetchError::PathsNotAllowed),
        };
        if bytes.is_empty() {
            return Err(FetchError::Empty);
        }
        Ok(bytes)
    }
}
