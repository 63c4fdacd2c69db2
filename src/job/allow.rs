//! Where a job from a remote door may write and read (`MERCHGEN_OUTPUT_ALLOW`,
//! `MERCHGEN_INPUT_S3_ALLOW`): a list of `s3://bucket[/prefix]` patterns and, for outputs only,
//! local folders. A prefix matches whole path segments (`s3://b/shop` admits `shop/x`, not
//! `shopping/x`) unless it ends in `*` (`s3://b/shop*` admits both). Local roots must be
//! absolute, and a job's folder must lie under one without `..` steps.
//!
//! An empty list admits every bucket and no folder: S3 stays as open as the worker's
//! credentials, while local folders are the operator's to open. `merchgen invoke` (run by the
//! operator) is not checked at all. Pure: no I/O.

use std::path::{Component, Path, PathBuf};

/// One operator list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageAllow {
    /// `None`: every bucket (the list names no `s3://` pattern).
    s3: Option<Vec<S3Pattern>>,
    local: Vec<PathBuf>,
    /// The setting's name, for messages.
    setting: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct S3Pattern {
    bucket: String,
    prefix: String,
    /// The prefix ended in `*`: a plain string prefix, not whole segments.
    loose: bool,
}

impl StorageAllow {
    /// Parse a list of patterns (already split on commas); `setting` names it in errors.
    /// `allow_local`: whether folders may be listed (outputs) or not (S3 inputs).
    pub fn parse(
        setting: &'static str,
        patterns: &[String],
        allow_local: bool,
    ) -> Result<Self, String> {
        let mut allow = StorageAllow {
            setting,
            ..StorageAllow::default()
        };
        for raw in patterns.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
            if let Some(rest) = raw.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() || bucket.contains('*') {
                    return Err(format!(
                        "{setting}: {raw:?} must name a bucket: s3://bucket[/prefix]"
                    ));
                }
                let (prefix, loose) = match prefix.strip_suffix('*') {
                    Some(p) => (p, true),
                    None => (prefix.trim_end_matches('/'), false),
                };
                if let Err(e) = crate::s3::check_key(prefix.trim_end_matches('/')) {
                    return Err(format!("{setting}: {raw:?} {e}"));
                }
                allow.s3.get_or_insert_with(Vec::new).push(S3Pattern {
                    bucket: bucket.to_owned(),
                    prefix: prefix.to_owned(),
                    loose,
                });
            } else if allow_local {
                let root = Path::new(raw.strip_prefix("file://").unwrap_or(raw));
                if !root.is_absolute() || has_parent_steps(root) {
                    return Err(format!(
                        "{setting}: {raw:?} must be s3://bucket[/prefix] or an absolute folder"
                    ));
                }
                allow.local.push(root.to_owned());
            } else {
                return Err(format!("{setting}: {raw:?} must be s3://bucket[/prefix]"));
            }
        }
        Ok(allow)
    }

    /// A list that admits nothing (a setting that could not be read).
    pub fn nothing(setting: &'static str) -> Self {
        StorageAllow {
            s3: Some(Vec::new()),
            local: Vec::new(),
            setting,
        }
    }

    /// The setting's name.
    pub(crate) fn setting(&self) -> &'static str {
        self.setting
    }

    /// Whether `s3://bucket/key` (a key or a key prefix) is admitted.
    pub(crate) fn allows_s3(&self, bucket: &str, key: &str) -> bool {
        let Some(patterns) = &self.s3 else {
            return true;
        };
        patterns.iter().any(|p| {
            p.bucket == bucket
                && (p.prefix.is_empty()
                    || (p.loose && key.starts_with(&p.prefix))
                    || key == p.prefix
                    || key
                        .strip_prefix(&p.prefix)
                        .is_some_and(|rest| rest.starts_with('/')))
        })
    }

    /// Whether a local folder is admitted: absolute, no `..`, under a listed root.
    pub(crate) fn allows_local(&self, folder: &str) -> bool {
        let path = Path::new(folder.strip_prefix("file://").unwrap_or(folder));
        path.is_absolute()
            && !has_parent_steps(path)
            && self.local.iter().any(|root| path.starts_with(root))
    }
}

fn has_parent_steps(path: &Path) -> bool {
    path.components().any(|c| matches!(c, Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(patterns: &[&str], local: bool) -> StorageAllow {
        let owned: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        StorageAllow::parse("MERCHGEN_OUTPUT_ALLOW", &owned, local).unwrap()
    }

    #[test]
    fn an_empty_list_admits_every_bucket_and_no_folder() {
        let open = list(&[], true);
        assert!(open.allows_s3("any", "where/ever"));
        assert!(!open.allows_local("/tmp/out"));
    }

    #[test]
    fn s3_prefixes_match_whole_segments_unless_they_end_in_a_star() {
        let allow = list(
            &["s3://shop/designs", "s3://open", "s3://loose/pre*"],
            false,
        );
        assert!(allow.allows_s3("shop", "designs"));
        assert!(allow.allows_s3("shop", "designs/job-1"));
        assert!(!allow.allows_s3("shop", "designs-old/job-1"));
        assert!(!allow.allows_s3("shop", "other"));
        assert!(!allow.allows_s3("elsewhere", "designs/job-1"));
        assert!(allow.allows_s3("open", "anything"));
        assert!(allow.allows_s3("loose", "prefix/x") && allow.allows_s3("loose", "pre"));
        assert!(!allow.allows_s3("loose", "pr"));
    }

    #[test]
    fn s3_patterns_with_dot_or_empty_segments_are_refused() {
        for bad in [
            "s3://b/a/../c",
            "s3://b/a/./c",
            "s3://b/a//c",
            "s3://b/../x*",
        ] {
            let err =
                StorageAllow::parse("MERCHGEN_OUTPUT_ALLOW", &[bad.to_owned()], true).unwrap_err();
            assert!(err.contains("segment"), "{bad}: {err}");
        }
        assert!(StorageAllow::parse("X", &["s3://b/shop/*".to_owned()], false).is_ok());
    }

    #[test]
    fn folders_must_lie_under_a_listed_root_without_parent_steps() {
        let allow = list(&["/srv/out", "s3://b"], true);
        assert!(allow.allows_local("/srv/out/job"));
        assert!(allow.allows_local("file:///srv/out"));
        assert!(!allow.allows_local("/srv/out/../etc"));
        assert!(!allow.allows_local("/srv/outside"));
        assert!(!allow.allows_local("relative/out"));
        assert!(
            !allow.allows_s3("other", "x"),
            "an s3 pattern closes the other buckets"
        );
    }

    #[test]
    fn bad_patterns_are_refused_naming_the_setting() {
        let bad = |p: &str, local: bool| {
            StorageAllow::parse("MERCHGEN_INPUT_S3_ALLOW", &[p.to_owned()], local).unwrap_err()
        };
        assert!(bad("s3://", false).contains("MERCHGEN_INPUT_S3_ALLOW"));
        assert!(bad("s3://*/x", false).contains("bucket"));
        assert!(bad("/srv/in", false).contains("s3://"));
        assert!(bad("relative", true).contains("absolute"));
        assert!(bad("/srv/../etc", true).contains("absolute"));
    }
}
