//! `Authorization` for the endpoint API: the key raw or as
//! `Bearer <key>`, checked only when `MERCHGEN_API_KEY` is set. Compared by digest, so the time
//! taken says nothing about how much of a guess was right. The key is never logged.

use crate::redact::Redacted;
use sha2::{Digest, Sha256};

/// True when `header` carries `key` (or no key is configured).
pub(crate) fn allowed(key: Option<&Redacted>, header: Option<&str>) -> bool {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return true;
    };
    let Some(header) = header.map(str::trim) else {
        return false;
    };
    let sent = match header.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => header,
    };
    Sha256::digest(sent.as_bytes()) == Sha256::digest(key.expose().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_bearer_keys() {
        let key = Redacted::new("k-123");
        assert!(allowed(Some(&key), Some("k-123")));
        assert!(allowed(Some(&key), Some("Bearer k-123")));
        assert!(allowed(Some(&key), Some("bearer  k-123 ")));
        assert!(!allowed(Some(&key), Some("Bearer k-12")));
        assert!(!allowed(Some(&key), None));
        assert!(allowed(None, None));
    }
}
