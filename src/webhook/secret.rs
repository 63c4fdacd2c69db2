//! The webhook signing secret (`MERCHGEN_WEBHOOK_SECRET`, `whsec_<base64>`): parsed once,
//! redacted whenever printed, so a whole configuration can be logged at start-up.

use base64::Engine;
use std::fmt;
use std::str::FromStr;

/// An HMAC key for Standard Webhooks signatures. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

/// Why a secret string was refused (never contains the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("the webhook secret must look like whsec_<base64>")]
    Prefix,
    #[error("the webhook secret after whsec_ is not valid base64")]
    Base64,
    #[error("the webhook secret must decode to 24 to 64 bytes (Standard Webhooks); it has {0}")]
    Length(usize),
}

impl Secret {
    /// Parse `whsec_<base64 of 24 to 64 random bytes>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or(SecretError::Prefix)?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SecretError::Base64)?;
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length(key.len()));
        }
        Ok(Secret { key })
    }

    /// The raw HMAC key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Secret::parse(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    #[test]
    fn parse_accepts_spec_secret_and_redacts_it() {
        let s: Secret = SPEC_SECRET.parse().unwrap();
        assert_eq!(s.key().len(), 24);
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(format!("{:?}", Some(s)), "Some(***)");
    }

    #[test]
    fn parse_refuses_malformed_secrets_without_echoing_them() {
        assert_eq!(Secret::parse("C2FVsBQI"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_!!"), Err(SecretError::Base64));
        assert_eq!(Secret::parse("whsec_YWJj"), Err(SecretError::Length(3)));
        let msg = Secret::parse("whsec_c2VjcmV0").unwrap_err().to_string();
        assert!(!msg.contains("c2VjcmV0"));
    }
}
