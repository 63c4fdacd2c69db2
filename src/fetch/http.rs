//! Fetching an `http(s)://` input through the guarded client (`crate::net`: literal address,
//! every resolved address and every redirect target checked, a redirect limit, a whole-request
//! timeout), with a byte cap enforced while streaming.

use super::error::FetchError;
use crate::net::guard::UrlRefusal;
use crate::net::{resolve, GuardedClient};

/// Map a refused input URL (before any request) to the customer's error.
pub(crate) fn literal_refusal(r: UrlRefusal) -> FetchError {
    match r {
        UrlRefusal::Address(b) => FetchError::RefusedInput(format!("refers to {}", b.class)),
        UrlRefusal::Scheme => FetchError::RefusedInput("uses a scheme other than http(s)".into()),
        UrlRefusal::NoHost => FetchError::BadUrl,
    }
}

fn request_error(err: reqwest::Error, timeout_secs: u64) -> FetchError {
    if let Some(why) = resolve::refusal(&err) {
        return FetchError::Refused(why);
    }
    if err.is_timeout() {
        return FetchError::Timeout(timeout_secs);
    }
    if err.is_connect() {
        return FetchError::Connect;
    }
    // `without_url`: the URL may hold a token; the causes below it do not.
    let err = err.without_url();
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    FetchError::Transfer(text.chars().take(200).collect())
}

/// GET `url` with `client`, reading at most `max_bytes` of body.
pub(crate) async fn get(
    client: &GuardedClient,
    url: &str,
    max_bytes: usize,
    timeout_secs: u64,
) -> Result<Vec<u8>, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
    client.check(&parsed).map_err(literal_refusal)?;
    let mut resp = client
        .http()
        .get(parsed)
        .send()
        .await
        .map_err(|e| request_error(e, timeout_secs))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FetchError::Status(status.as_u16()));
    }
    let limit = max_bytes;
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FetchError::TooLarge { limit });
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| request_error(e, timeout_secs))?
    {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
