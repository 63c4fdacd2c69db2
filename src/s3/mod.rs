//! S3 for every layer that reads or writes objects (output sinks, `s3://` inputs, claim-checked
//! queue bodies): the settings that pick a client (`S3Settings`), the process's shared clients
//! (`client`), and `s3://bucket/key` URLs (`parse_url`). Ground floor: imports nothing of
//! merchgen's but the redacting string type.

mod client;
mod settings;

pub use client::client;
pub use settings::{S3Credentials, S3Settings};

/// Why a string is not an `s3://bucket[/key]` URL. The text completes a sentence that starts
/// with the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum S3UrlError {
    #[error("must start with s3://")]
    Scheme,
    #[error("has an invalid bucket name")]
    Bucket,
}

/// Split `s3://bucket/key` into bucket and key (the key may be empty; slashes around it are
/// dropped).
pub(crate) fn parse_url(url: &str) -> Result<(String, String), S3UrlError> {
    let rest = url.strip_prefix("s3://").ok_or(S3UrlError::Scheme)?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'));
    if !bucket_ok {
        return Err(S3UrlError::Bucket);
    }
    Ok((bucket.to_owned(), key.trim_matches('/').to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_url_splits_bucket_and_key_and_names_what_is_wrong() {
        assert_eq!(
            parse_url("s3://bkt/a/b/"),
            Ok(("bkt".to_owned(), "a/b".to_owned()))
        );
        assert_eq!(parse_url("s3://bkt"), Ok(("bkt".to_owned(), String::new())));
        assert_eq!(parse_url("https://bkt/k"), Err(S3UrlError::Scheme));
        assert_eq!(parse_url("s3://Bad_Bucket/k"), Err(S3UrlError::Bucket));
    }
}
