//! When to try a webhook again: which answers are worth a retry, and `Retry-After` (seconds or
//! an HTTP date). The delays themselves are `crate::backoff::Backoff::jittered`.

use std::time::{Duration, SystemTime};

/// Whether an HTTP status is worth another attempt: 429 and 5xx only. Other 4xx will not change,
/// and a 3xx is a failure because redirects are not followed.
pub(crate) fn status_is_retryable(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP date (in the past means now).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn only_429_and_5xx_are_retryable() {
        assert!(status_is_retryable(429) && status_is_retryable(503));
        assert!(
            !status_is_retryable(400) && !status_is_retryable(301) && !status_is_retryable(410)
        );
    }
}
