//! The one backoff rule of the worker: after `attempt` failures (from 1) wait
//! `base * 2^(attempt-1)`, at most `max`. Queue doors use it as is (SQS retry delays, receive
//! and job-take failures, RunPod's job-done posts); webhooks draw a uniform delay below it (full
//! jitter), so that many workers retrying one receiver do not retry in step.

use rand::Rng;
use std::time::Duration;

/// Backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
}

impl Backoff {
    /// No waiting at all (where only whether to retry matters, not when).
    pub const NONE: Backoff = Backoff {
        base: Duration::ZERO,
        max: Duration::ZERO,
    };

    pub const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// `base * 2^(attempt-1)`, at most `max` (attempt 0 counts as 1).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// A uniform draw in `0..=delay(attempt)` (full jitter), raised to a server's `Retry-After`
    /// when it gave one, and never above `max`.
    pub(crate) fn jittered(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let drawn = rand::rng().random_range(Duration::ZERO..=self.delay(attempt));
        retry_after.map_or(drawn, |ra| drawn.max(ra)).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_per_attempt_up_to_max() {
        let b = Backoff::new(Duration::from_secs(10), Duration::from_secs(60));
        let secs: Vec<u64> = (0..6).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(secs, [10, 10, 20, 40, 60, 60]);
        assert_eq!(b.delay(u32::MAX).as_secs(), 60);
        assert_eq!(Backoff::NONE.delay(5), Duration::ZERO);
    }

    #[test]
    fn jittered_stays_below_the_delay_and_honours_retry_after_up_to_max() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        for _ in 0..50 {
            assert!(b.jittered(1, None) <= Duration::from_millis(100));
            assert!(b.jittered(3, None) <= Duration::from_millis(400));
            assert!(b.jittered(30, None) <= Duration::from_millis(1000));
        }
        let slow = Backoff::new(Duration::from_millis(1), Duration::from_secs(10));
        assert!(slow.jittered(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
        assert_eq!(
            slow.jittered(1, Some(Duration::from_secs(60))),
            Duration::from_secs(10)
        );
    }
}
