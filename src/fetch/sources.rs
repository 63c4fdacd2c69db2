//! Inputs that are not HTTP: base64 and `data:` URIs (decoded under the byte cap), local paths
//! (only for `merchgen invoke`) and `s3://` objects (through the process's S3 client).

use super::error::FetchError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard alphabet, padding optional (clients differ).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decode raw base64 or a `data:[type];base64,` URI, refusing before decoding when the result
/// would exceed `max_bytes`.
pub(crate) fn decode_base64(text: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let payload = match text.strip_prefix("data:") {
        Some(rest) => {
            let (meta, data) = rest.split_once(',').ok_or(FetchError::DataUriNotBase64)?;
            if !meta.ends_with(";base64") {
                return Err(FetchError::DataUriNotBase64);
            }
            data
        }
        None => text,
    };
    // Three bytes per four characters, whitespace and padding aside: a cheap upper bound.
    if payload.len() / 4 * 3 > max_bytes.saturating_add(3) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let compact: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let bytes = LENIENT
        .decode(compact.as_bytes())
        .map_err(|_| FetchError::BadBase64)?;
    if bytes.len() > max_bytes {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    if bytes.is_empty() {
        return Err(FetchError::Empty);
    }
    Ok(bytes)
}

/// Read a local file, refusing files over `max_bytes` before reading them.
pub(crate) async fn read_path(path: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let meta = tokio::fs::metadata(path).await.map_err(io_error)?;
    if !meta.is_file() {
        return Err(FetchError::NotFound);
    }
    if meta.len() > max_bytes as u64 {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    tokio::fs::read(path).await.map_err(io_error)
}

fn io_error(e: std::io::Error) -> FetchError {
    match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::NotFound,
        _ => FetchError::Transfer(e.kind().to_string()),
    }
}

/// Read `s3://bucket/key` with `client`, streaming under the byte cap.
pub(crate) async fn read_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(s3_error)?;
    if out
        .content_length()
        .is_some_and(|n| u64::try_from(n).unwrap_or(0) > max_bytes as u64)
    {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| FetchError::Transfer(e.to_string()))?;
        if bytes.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn s3_error<E, R>(err: SdkError<E, R>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&err), "s3 input fetch failed");
    match &err {
        SdkError::ServiceError(_) => match err.code() {
            Some("NoSuchKey" | "NoSuchBucket") => FetchError::NotFound,
            Some(code @ ("AccessDenied" | "InvalidBucketName")) => FetchError::S3 {
                code: code.to_owned(),
                retryable: false,
            },
            code => FetchError::S3 {
                code: code.unwrap_or("service error").to_owned(),
                retryable: true,
            },
        },
        SdkError::TimeoutError(_) => FetchError::S3 {
            code: "timeout".into(),
            retryable: true,
        },
        _ => FetchError::S3 {
            code: "connection failed".into(),
            retryable: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_base64_accepts_raw_data_uri_and_missing_padding() {
        assert_eq!(decode_base64("YWJj", 10).unwrap(), b"abc");
        assert_eq!(
            decode_base64("data:image/png;base64,YWI=", 10).unwrap(),
            b"ab"
        );
        assert_eq!(decode_base64("YWI", 10).unwrap(), b"ab");
        assert_eq!(decode_base64("YW\nJj", 10).unwrap(), b"abc");
    }

    #[test]
    fn decode_base64_refuses_bad_large_and_empty() {
        assert_eq!(decode_base64("!!!", 10), Err(FetchError::BadBase64));
        assert_eq!(
            decode_base64("data:text/plain,hi", 10),
            Err(FetchError::DataUriNotBase64)
        );
        let big = "A".repeat(4000);
        assert_eq!(
            decode_base64(&big, 100),
            Err(FetchError::TooLarge { limit: 100 })
        );
        assert_eq!(
            decode_base64("YWJjZA==", 3),
            Err(FetchError::TooLarge { limit: 3 })
        );
        assert_eq!(
            decode_base64("data:image/png;base64,", 3),
            Err(FetchError::Empty)
        );
    }
}
