//! The function's deadline as the Runtime API reports it (`Lambda-Runtime-Deadline-Ms`, epoch
//! milliseconds), turned into the time a job may still take. Pure: the clock is passed in.
//!
//! A deadline already past, or further away than any Lambda function may run, is *unknown*, not
//! zero time left: local emulators send such values (cargo-lambda's sends a constant 600000,
//! i.e. ten minutes after 1970), and reading them literally would cancel every job at once.
//! Without a known deadline a job runs without the deadline watchdog, and the door logs why.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest a Lambda function may run (its largest `Timeout`).
pub(crate) const MAX_FUNCTION_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Allowance for a clock difference between the Lambda service and this sandbox.
const CLOCK_SLACK: Duration = Duration::from_secs(60);

/// When this invocation must have answered, if the Runtime API said so believably.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deadline {
    At(SystemTime),
    /// Past, absurdly far, or not given: no watchdog.
    Unknown,
}

impl Deadline {
    /// Read `Lambda-Runtime-Deadline-Ms` against the clock `now`.
    pub(crate) fn from_epoch_ms(ms: u64, now: SystemTime) -> Deadline {
        let Some(at) = UNIX_EPOCH.checked_add(Duration::from_millis(ms)) else {
            return Deadline::Unknown;
        };
        match at.duration_since(now) {
            Ok(left) if !left.is_zero() && left <= MAX_FUNCTION_TIMEOUT + CLOCK_SLACK => {
                Deadline::At(at)
            }
            _ => Deadline::Unknown,
        }
    }

    /// Time left before the deadline; `None` when it is unknown.
    pub(crate) fn time_left(&self, now: SystemTime) -> Option<Duration> {
        match self {
            Deadline::At(at) => Some(at.duration_since(now).unwrap_or_default()),
            Deadline::Unknown => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn ms(t: SystemTime) -> u64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
    }

    #[test]
    fn deadline_minutes_ahead_is_kept() {
        let at = now() + Duration::from_secs(300);
        let d = Deadline::from_epoch_ms(ms(at), now());
        assert_eq!(d, Deadline::At(at));
        assert_eq!(d.time_left(now()), Some(Duration::from_secs(300)));
    }

    #[test]
    fn deadline_of_emulator_constant_is_unknown() {
        // cargo-lambda's emulator: 600000 ms after the epoch, i.e. 1970.
        assert_eq!(Deadline::from_epoch_ms(600_000, now()), Deadline::Unknown);
        assert_eq!(Deadline::Unknown.time_left(now()), None);
    }

    #[test]
    fn deadline_past_or_absurdly_far_is_unknown() {
        let past = now() - Duration::from_secs(1);
        assert_eq!(Deadline::from_epoch_ms(ms(past), now()), Deadline::Unknown);
        assert_eq!(Deadline::from_epoch_ms(ms(now()), now()), Deadline::Unknown);
        let far = now() + Duration::from_secs(24 * 3600);
        assert_eq!(Deadline::from_epoch_ms(ms(far), now()), Deadline::Unknown);
        assert_eq!(Deadline::from_epoch_ms(u64::MAX, now()), Deadline::Unknown);
    }

    #[test]
    fn deadline_at_the_longest_timeout_is_kept() {
        let at = now() + MAX_FUNCTION_TIMEOUT;
        assert_eq!(Deadline::from_epoch_ms(ms(at), now()), Deadline::At(at));
    }
}
