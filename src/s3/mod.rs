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
    /// `a//b`, `a/./b`, `a/../b`: S3 stores such keys literally, while HTTP clients and
    /// allow-list prefixes read them as paths, so they could name another tenant's objects.
    #[error("has an empty, `.` or `..` path segment")]
    Segment,
}

/// Split `s3://bucket/key` into bucket and key (the key may be empty; one trailing slash, as in
/// a prefix `s3://bucket/shop/`, is dropped). A key with an empty, `.` or `..` segment is
/// refused (see [`check_key`]).
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
    let key = key.strip_suffix('/').unwrap_or(key);
    check_key(key)?;
    Ok((bucket.to_owned(), key.to_owned()))
}

/// Refuse an object key or key prefix with an empty, `.` or `..` segment (the empty key, a
/// whole bucket, is fine).
pub(crate) fn check_key(key: &str) -> Result<(), S3UrlError> {
    match key.is_empty() || !key.split('/').any(|s| matches!(s, "" | "." | "..")) {
        true => Ok(()),
        false => Err(S3UrlError::Segment),
    }
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

    #[test]
    fn parse_url_refuses_empty_dot_and_dot_dot_segments() {
        for url in [
            "s3://bkt/tenant-a/../tenant-b",
            "s3://bkt/tenant-a/./x",
            "s3://bkt/tenant-a//x",
            "s3://bkt/tenant-a/..",
            "s3://bkt/tenant-a/.",
            "s3://bkt//tenant-a",
            "s3://bkt/..",
            "s3://bkt/tenant-a//",
        ] {
            assert_eq!(parse_url(url), Err(S3UrlError::Segment), "{url}");
        }
        assert_eq!(
            parse_url("s3://bkt/tenant-a/x..y/.hidden/"),
            Ok(("bkt".to_owned(), "tenant-a/x..y/.hidden".to_owned()))
        );
    }
}
