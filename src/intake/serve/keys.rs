//! The endpoint API's callers: one `MERCHGEN_API_KEY` (named `default`, unlimited), or several
//! keys from `MERCHGEN_API_KEYS_FILE`, each with a name and its own limits: requests per
//! minute, jobs per day (UTC), jobs waiting or running at once. A key over a limit is answered
//! 429 with `Retry-After`. Keys are compared by digest (the time taken says nothing about how
//! much of a guess was right) and never logged: logs and metrics name the key's `name`.
//!
//! The file is a JSON array:
//! `[{"key": "sk-...", "name": "shop-a", "requests_per_minute": 120, "jobs_per_day": 5000,
//! "concurrent_jobs": 4}]`; each limit may be left out (no limit).

use crate::redact::Redacted;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One key's limits; `None`: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub requests_per_minute: Option<u32>,
    pub jobs_per_day: Option<u32>,
    pub concurrent_jobs: Option<u32>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: String,
    name: String,
    requests_per_minute: Option<u32>,
    jobs_per_day: Option<u32>,
    concurrent_jobs: Option<u32>,
}

/// A caller: the key's name and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
    pub limits: KeyLimits,
}

struct Key {
    digest: [u8; 32],
    caller: Caller,
}

/// A limit a request or job ran into, and when to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `requests_per_minute`, `jobs_per_day` or `concurrent_jobs`.
    pub limit: &'static str,
    pub retry_after: Duration,
}

/// An `Authorization` header that names no configured key (or none at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no configured API key was sent")]
pub struct UnknownKey;

#[derive(Default)]
struct Usage {
    minute: Option<Instant>,
    requests: u32,
    day: u64,
    jobs: u32,
}

/// The keys the endpoint accepts, and what each has used.
#[derive(Default)]
pub struct ApiKeys {
    keys: Vec<Key>,
    usage: Mutex<HashMap<String, Usage>>,
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// No key configured: every request is served, unlimited.
    pub fn open() -> Self {
        Self::default()
    }

    /// One key, named `default`, unlimited (`MERCHGEN_API_KEY`).
    pub fn single(key: &Redacted) -> Self {
        ApiKeys {
            keys: vec![Key {
                digest: digest(key.expose()),
                caller: Caller {
                    name: "default".into(),
                    limits: KeyLimits::default(),
                },
            }],
            usage: Mutex::default(),
        }
    }

    /// The keys of a `MERCHGEN_API_KEYS_FILE`, plus `single` when given; the error names what is
    /// wrong (never a key).
    pub fn from_file(path: &std::path::Path, single: Option<&Redacted>) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("MERCHGEN_API_KEYS_FILE {}: {e}", path.display()))?;
        let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "MERCHGEN_API_KEYS_FILE {}: not a JSON array of {{key, name, requests_per_minute, jobs_per_day, concurrent_jobs}}: {e}",
                path.display()
            )
        })?;
        let mut keys = single.map_or_else(Self::open, Self::single).keys;
        for (i, entry) in entries.into_iter().enumerate() {
            if entry.key.is_empty() || entry.name.is_empty() {
                return Err(format!(
                    "MERCHGEN_API_KEYS_FILE entry {i}: key and name must not be empty"
                ));
            }
            let digest = digest(&entry.key);
            if keys
                .iter()
                .any(|k| k.digest == digest || k.caller.name == entry.name)
            {
                return Err(format!(
                    "MERCHGEN_API_KEYS_FILE entry {i} ({}): the key or the name is listed twice",
                    entry.name
                ));
            }
            keys.push(Key {
                digest,
                caller: Caller {
                    name: entry.name,
                    limits: KeyLimits {
                        requests_per_minute: entry.requests_per_minute,
                        jobs_per_day: entry.jobs_per_day,
                        concurrent_jobs: entry.concurrent_jobs,
                    },
                },
            });
        }
        Ok(ApiKeys {
            keys,
            usage: Mutex::default(),
        })
    }

    /// True when no key is configured.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }

    /// The caller an `Authorization` header (the key raw or as `Bearer <key>`) names: `Ok(None)`
    /// when no key is configured, `UnknownKey` when it names none.
    pub fn identify(&self, header: Option<&str>) -> Result<Option<&Caller>, UnknownKey> {
        if self.is_open() {
            return Ok(None);
        }
        let header = header.map(str::trim).ok_or(UnknownKey)?;
        let sent = match header.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => header,
        };
        let sent = digest(sent);
        // Every key is compared, so the time taken does not say which one matched.
        let mut found = None;
        for key in &self.keys {
            if key.digest == sent {
                found = Some(&key.caller);
            }
        }
        found.map(Some).ok_or(UnknownKey)
    }

    fn usage<T>(&self, name: &str, f: impl FnOnce(&mut Usage) -> T) -> T {
        let mut all = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(name.to_owned()).or_default())
    }

    /// Count one request of `caller`; refused over its requests per minute.
    pub fn admit_request(&self, caller: &Caller) -> Result<(), Limited> {
        let Some(max) = caller.limits.requests_per_minute else {
            return Ok(());
        };
        let now = Instant::now();
        self.usage(&caller.name, |u| {
            let start = *u.minute.get_or_insert(now);
            if now.duration_since(start) >= Duration::from_secs(60) {
                u.minute = Some(now);
                u.requests = 0;
            }
            if u.requests >= max {
                let start = u.minute.unwrap_or(now);
                let wait = Duration::from_secs(60).saturating_sub(now.duration_since(start));
                return Err(Limited {
                    limit: "requests_per_minute",
                    retry_after: wait.max(Duration::from_secs(1)),
                });
            }
            u.requests += 1;
            Ok(())
        })
    }

    /// Count one job of `caller`, which has `active` jobs waiting or running; refused over its
    /// jobs per day or concurrent jobs.
    pub fn admit_job(&self, caller: &Caller, active: usize) -> Result<(), Limited> {
        let limits = caller.limits;
        if let Some(max) = limits.concurrent_jobs {
            if active >= max as usize {
                return Err(Limited {
                    limit: "concurrent_jobs",
                    retry_after: Duration::from_secs(5),
                });
            }
        }
        let Some(max) = limits.jobs_per_day else {
            return Ok(());
        };
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let day = secs / 86_400;
        self.usage(&caller.name, |u| {
            if u.day != day {
                u.day = day;
                u.jobs = 0;
            }
            if u.jobs >= max {
                return Err(Limited {
                    limit: "jobs_per_day",
                    retry_after: Duration::from_secs(86_400 - secs % 86_400),
                });
            }
            u.jobs += 1;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> ApiKeys {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(&path, json).unwrap();
        ApiKeys::from_file(&path, Some(&Redacted::new("sk-old"))).unwrap()
    }

    #[test]
    fn keys_are_told_apart_by_name_and_the_single_key_still_works() {
        let k = keys(r#"[{"key": "sk-a", "name": "shop-a", "requests_per_minute": 2}]"#);
        assert_eq!(
            k.identify(Some("Bearer sk-a")).unwrap().unwrap().name,
            "shop-a"
        );
        assert_eq!(k.identify(Some("sk-old")).unwrap().unwrap().name, "default");
        assert!(k.identify(Some("sk-b")).is_err() && k.identify(None).is_err());
        assert_eq!(ApiKeys::open().identify(None), Ok(None));
    }

    #[test]
    fn a_key_over_its_limits_is_refused_with_when_to_retry() {
        let k = keys(
            r#"[{"key": "sk-a", "name": "a", "requests_per_minute": 2, "jobs_per_day": 1, "concurrent_jobs": 3}]"#,
        );
        let a = k.identify(Some("sk-a")).unwrap().unwrap().clone();
        assert!(k.admit_request(&a).is_ok() && k.admit_request(&a).is_ok());
        let limited = k.admit_request(&a).unwrap_err();
        assert_eq!(limited.limit, "requests_per_minute");
        assert!(limited.retry_after <= Duration::from_secs(60));
        assert_eq!(k.admit_job(&a, 3).unwrap_err().limit, "concurrent_jobs");
        assert!(k.admit_job(&a, 0).is_ok());
        assert_eq!(k.admit_job(&a, 0).unwrap_err().limit, "jobs_per_day");
        let default = k.identify(Some("sk-old")).unwrap().unwrap().clone();
        assert!(
            (0..100).all(|_| k.admit_request(&default).is_ok()),
            "unlimited"
        );
    }

    #[test]
    fn a_bad_file_names_the_problem_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        std::fs::write(
            &path,
            r#"[{"key": "sk-secret", "name": "a", "per_hour": 1}]"#,
        )
        .unwrap();
        let err = ApiKeys::from_file(&path, None).err().unwrap();
        assert!(
            err.contains("MERCHGEN_API_KEYS_FILE") && !err.contains("sk-secret"),
            "{err}"
        );
        std::fs::write(
            &path,
            r#"[{"key": "k", "name": "a"}, {"key": "k", "name": "b"}]"#,
        )
        .unwrap();
        assert!(ApiKeys::from_file(&path, None)
            .err()
            .unwrap()
            .contains("twice"));
    }
}
