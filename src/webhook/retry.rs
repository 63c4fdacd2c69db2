//! When to try a webhook again: which answers are worth a retry, exponential backoff with full
//! jitter, and `Retry-After` (seconds or an HTTP date) honoured up to the backoff cap.

use rand::Rng;
use std::time::{Duration, SystemTime};

/// Backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `attempt + 1` (after `attempt` failures, from 1): a uniform draw
    /// in `0..=min(max, base * 2^(attempt-1))` (full jitter), raised to `Retry-After` when the
    /// server gave one, and never above `max`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
            .min(self.max);
        let jittered = rand::rng().random_range(Duration::ZERO..=exp);
        retry_after
            .map_or(jittered, |ra| jittered.max(ra))
            .min(self.max)
    }
}

/// Whether an HTTP status is worth another attempt: 429 and 5xx only. Other 4xx will not change,
/// and a 3xx is a failure because redirects are not followed.
pub fn status_is_retryable(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP date (in the past means now).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
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
    fn delay_stays_within_exponential_cap() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
        };
        for _ in 0..50 {
            assert!(b.delay(1, None) <= Duration::from_millis(100));
            assert!(b.delay(3, None) <= Duration::from_millis(400));
            assert!(b.delay(30, None) <= Duration::from_millis(1000));
        }
    }

    #[test]
    fn delay_honours_retry_after_up_to_max() {
        let b = Backoff {
            base: Duration::from_millis(1),
            max: Duration::from_secs(10),
        };
        assert!(b.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(60))),
            Duration::from_secs(10)
        );
    }

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
