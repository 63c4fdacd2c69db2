//! `Redacted`: a string secret (an API key, an S3 secret key) that prints as `***`, so whole
//! configurations and requests can be logged. Webhook signing keys have their own `Secret`.

use std::fmt;
use std::str::FromStr;

/// A secret string. `Debug` and `Display` print `***`; [`Redacted::expose`] gives the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted(String);

impl Redacted {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Redacted(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for Redacted {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Redacted(s.to_owned()))
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_prints_stars_and_exposes_value() {
        let r: Redacted = "hunter2".parse().unwrap();
        assert_eq!(format!("{r} {r:?}"), "*** ***");
        assert_eq!(r.expose(), "hunter2");
    }
}
