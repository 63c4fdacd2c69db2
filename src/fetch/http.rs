//! Fetching an `http(s)://` input: literal-address check, a guarded client (every resolved
//! address and every redirect target checked), a redirect limit, a whole-request timeout and a
//! byte cap enforced while streaming.

use super::error::FetchError;
use super::guard::{self, AddressPolicy, UrlRefusal};
use super::resolve::{self, RedirectRefused};
use reqwest::redirect::{Attempt, Policy};
use std::sync::Arc;

/// Redirects are followed up to `max`, each target checked like the original URL (literal
/// addresses here; names by the resolver when connecting).
pub fn redirect_policy(policy: Arc<AddressPolicy>, max: usize) -> Policy {
    Policy::custom(move |attempt: Attempt| {
        // `previous` holds every URL requested so far, the original included.
        if attempt.previous().len() > max {
            return attempt.error(RedirectRefused(format!("more than {max} redirects")));
        }
        match guard::check_url(attempt.url(), &policy) {
            Ok(()) => attempt.follow(),
            Err(UrlRefusal::Address(b)) => {
                attempt.error(RedirectRefused(format!("redirects to {}", b.class)))
            }
            Err(other) => {
                attempt.error(RedirectRefused(format!("redirects to a URL that {other}")))
            }
        }
    })
}

/// Map a refused input URL (before any request) to the customer's error.
pub fn literal_refusal(r: UrlRefusal) -> FetchError {
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
pub async fn get(
    client: &reqwest::Client,
    policy: &AddressPolicy,
    url: &str,
    max_bytes: usize,
    timeout_secs: u64,
) -> Result<Vec<u8>, FetchError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
    guard::check_url(&parsed, policy).map_err(literal_refusal)?;
    let mut resp = client
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
