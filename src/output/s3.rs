//! `S3Sink`: objects in `s3://bucket/prefix` on AWS or any S3-compatible server, with
//! Content-Type and Cache-Control headers, and presigned (or public) GET URLs.
//!
//! Errors carry the service's error code for the customer and the SDK's full text for the log;
//! neither holds credentials, and a presigned URL is never logged.

use super::keys;
use super::sink::{OutputConfig, OutputError, OutputSink, StoredObject};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use std::time::Duration;

/// Stores objects under one bucket and prefix.
#[derive(Debug, Clone)]
pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    presign_expiry: Duration,
    public_base_url: Option<String>,
    cache_control: Option<String>,
}

impl S3Sink {
    /// A sink for `s3://{bucket}/{prefix}` using a (cached) client from [`crate::s3::client`].
    pub fn new(client: Client, bucket: String, prefix: String, cfg: &OutputConfig) -> Self {
        S3Sink {
            client,
            bucket,
            prefix: prefix.trim_matches('/').to_owned(),
            presign_expiry: Duration::from_secs(cfg.presign_expiry_secs),
            public_base_url: cfg.public_base_url.clone(),
            cache_control: cfg.cache_control.clone(),
        }
    }

    async fn url_for(&self, full_key: &str) -> Result<String, OutputError> {
        let url_err = |reason: String| OutputError::Url {
            key: full_key.to_owned(),
            reason,
        };
        if let Some(base) = &self.public_base_url {
            return public_url(base, full_key).map_err(url_err);
        }
        let presign = PresigningConfig::expires_in(self.presign_expiry)
            .map_err(|e| url_err(e.to_string()))?;
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full_key)
            .presigned(presign)
            .await
            .map_err(|e| url_err(DisplayErrorContext(&e).to_string()))?;
        Ok(req.uri().to_owned())
    }

    fn error<E, R>(&self, op: &'static str, key: &str, err: SdkError<E, R>) -> OutputError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = match &err {
            SdkError::ServiceError(_) => err.code().unwrap_or("service error").to_owned(),
            SdkError::TimeoutError(_) => "timeout".to_owned(),
            SdkError::DispatchFailure(_) => "connection failed".to_owned(),
            SdkError::ResponseError(_) => "bad response".to_owned(),
            _ => "request not sent".to_owned(),
        };
        let detail = DisplayErrorContext(&err).to_string();
        tracing::warn!(op, bucket = %self.bucket, key, %code, error = %detail, "s3 request failed");
        OutputError::S3 {
            op,
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            code,
            detail,
        }
    }
}

/// `{base}/{key}` with each key segment percent-encoded.
fn public_url(base: &str, key: &str) -> Result<String, String> {
    let mut url = url::Url::parse(base).map_err(|e| e.to_string())?;
    url.path_segments_mut()
        .map_err(|()| "the public base URL cannot have a path".to_owned())?
        .pop_if_empty()
        .extend(key.split('/'));
    Ok(url.into())
}

#[async_trait::async_trait]
impl OutputSink for S3Sink {
    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<StoredObject, OutputError> {
        keys::check(key)?;
        let full = keys::join(&self.prefix, key);
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        if let Some(cc) = &self.cache_control {
            req = req.cache_control(cc);
        }
        req.send().await.map_err(|e| self.error("put", &full, e))?;
        let url = self.url_for(&full).await?;
        Ok(StoredObject {
            key: full,
            url: Some(url),
            base64: None,
        })
    }

    async fn fresh_url(&self, full_key: &str) -> Result<Option<String>, OutputError> {
        self.url_for(full_key).await.map(Some)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, OutputError> {
        keys::check(key)?;
        let full = keys::join(&self.prefix, key);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error("get", &full, e)),
        };
        let body = out.body.collect().await.map_err(|e| OutputError::S3 {
            op: "get",
            bucket: self.bucket.clone(),
            key: full.clone(),
            code: "body read failed".to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

fn is_not_found(
    err: &SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
) -> bool {
    match err {
        SdkError::ServiceError(se) => {
            se.err().is_no_such_key() || se.raw().status().as_u16() == 404
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_url_encodes_segments_and_joins_once() {
        assert_eq!(
            public_url("https://cdn.example/out/", "p/j 1/images/0.png").unwrap(),
            "https://cdn.example/out/p/j%201/images/0.png"
        );
        assert_eq!(
            public_url("https://cdn.example", "j/result.json").unwrap(),
            "https://cdn.example/j/result.json"
        );
    }
}
