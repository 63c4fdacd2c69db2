//! RunPod's bucket settings: the `BUCKET_ENDPOINT_URL`,
//! `BUCKET_ACCESS_KEY_ID`, `BUCKET_SECRET_ACCESS_KEY` variables and a request's `s3Config`
//! (`endpointUrl`, `accessId`, `accessSecret`, `bucketName`, `objectPath`), turned into the
//! destination and S3 settings of a job's outputs. Parsing only; the S3 sink does the I/O.
//!
//! RunPod's docs ask for the bucket inside the endpoint URL; both virtual-hosted
//! (`https://BUCKET.s3.REGION.amazonaws.com`) and path-style (`http://host:9000/BUCKET/prefix`)
//! forms are accepted, and an explicit bucket name wins. A request's `endpointUrl` comes from
//! whoever sent the job, so it passes the same address guard as every URL a job names: a
//! literal metadata, loopback or private address is refused (unless `MERCHGEN_FETCH_ALLOW`
//! opens its range), and so is a name resolving to one (`check_resolved`, before the job runs;
//! the S3 client resolves the name again when it connects).

use crate::error::JobError;
use crate::net::guard::{self, AddressPolicy, UrlRefusal};
use crate::output::OutputConfig;
use crate::redact::Redacted;
use crate::s3::{S3Credentials, S3Settings};
use crate::worker::OutputOverride;
use serde_json::Value;

/// A bucket, where in it, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bucket {
    /// `scheme://host[:port]`, without the bucket.
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub(crate) path_style: bool,
    pub region: Option<String>,
    pub credentials: S3Credentials,
    /// Set for a bucket a job named: its client connects only where this policy allows.
    pub(crate) connect_guard: Option<AddressPolicy>,
}

/// A bucket setting that cannot work; the message says how to fix it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BucketError(pub String);

/// The three `BUCKET_*` settings and an optional explicit `bucket[/prefix]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct BucketVars {
    pub(crate) endpoint_url: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Redacted>,
    pub bucket: Option<String>,
}

impl Bucket {
    /// From the variables: `None` when none of the three is set; an error when only some are
    /// or the endpoint names no bucket.
    pub(crate) fn from_vars(vars: &BucketVars) -> Result<Option<Bucket>, BucketError> {
        let set = |v: Option<&str>| v.is_some_and(|s| !s.is_empty());
        let present = [
            set(vars.endpoint_url.as_deref()),
            set(vars.access_key_id.as_deref()),
            set(vars.secret_access_key.as_ref().map(Redacted::expose)),
        ];
        if present.iter().all(|p| !p) {
            return Ok(None);
        }
        let (Some(endpoint), Some(id), Some(secret)) = (
            &vars.endpoint_url,
            &vars.access_key_id,
            &vars.secret_access_key,
        ) else {
            return Err(BucketError("RunPod's bucket needs all of BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY; some are missing".into()));
        };
        if present.iter().any(|p| !p) {
            return Err(BucketError("BUCKET_ENDPOINT_URL, BUCKET_ACCESS_KEY_ID and BUCKET_SECRET_ACCESS_KEY must all be non-empty".into()));
        }
        let credentials = S3Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
        };
        let explicit = vars.bucket.as_deref().filter(|b| !b.is_empty());
        let bucket = locate(endpoint, explicit, credentials).map_err(|why| {
            BucketError(format!(
                "BUCKET_ENDPOINT_URL {why}; or set MERCHGEN_RUNPOD_BUCKET"
            ))
        })?;
        crate::s3::check_key(&bucket.prefix)
            .map_err(|e| BucketError(format!("MERCHGEN_RUNPOD_BUCKET's prefix {e}")))?;
        Ok(Some(bucket))
    }

    /// From a request's `s3Config` object, its endpoint checked against `policy`; errors name
    /// the field.
    pub(crate) fn from_s3_config(v: &Value, policy: &AddressPolicy) -> Result<Bucket, JobError> {
        let text = |key: &str| v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
        let need = |key: &str| {
            text(key).ok_or_else(|| {
                JobError::invalid(
                    format!("s3Config.{key}"),
                    "is required (a non-empty string)",
                )
            })
        };
        if !v.is_object() {
            return Err(JobError::invalid("s3Config", "must be an object"));
        }
        let credentials = S3Credentials {
            access_key_id: need("accessId")?.to_owned(),
            secret_access_key: Redacted::new(need("accessSecret")?),
        };
        let endpoint_url = need("endpointUrl")?;
        check_endpoint(endpoint_url, policy)?;
        let mut bucket = locate(endpoint_url, text("bucketName"), credentials).map_err(|why| {
            JobError::invalid(
                "s3Config.endpointUrl",
                format!("{why}; or send s3Config.bucketName"),
            )
        })?;
        if let Some(path) = text("objectPath") {
            bucket.prefix = join(&bucket.prefix, path);
        }
        let field = match text("objectPath") {
            Some(_) => "s3Config.objectPath",
            None => "s3Config.bucketName",
        };
        crate::s3::check_key(&bucket.prefix).map_err(|e| JobError::invalid(field, e))?;
        bucket.connect_guard = Some(policy.clone());
        Ok(bucket)
    }

    /// Refuse an endpoint whose host name resolves to an address the policy refuses (any of
    /// them: the S3 client may connect to each). A name that does not resolve now is left to
    /// the upload to report.
    pub(crate) async fn check_resolved(&self, policy: &AddressPolicy) -> Result<(), JobError> {
        let Ok(url) = url::Url::parse(&self.endpoint) else {
            return Ok(());
        };
        let (Some(url::Host::Domain(host)), Some(port)) = (url.host(), url.port_or_known_default())
        else {
            return Ok(());
        };
        let Ok(found) = tokio::net::lookup_host((host, port)).await else {
            return Ok(());
        };
        for addr in found {
            if let Err(blocked) = policy.check(addr.ip()) {
                return Err(JobError::invalid(
                    "s3Config.endpointUrl",
                    format!("{host} resolves to {blocked}, which this worker may not reach"),
                ));
            }
        }
        Ok(())
    }

    /// `s3://bucket/prefix`.
    pub(crate) fn destination(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The job's output settings: this bucket as its default destination, and this endpoint
    /// and these credentials for its S3 outputs.
    pub(crate) fn output_override(&self, base: &OutputConfig) -> OutputOverride {
        let config = OutputConfig {
            s3: S3Settings {
                endpoint: Some(self.endpoint.clone()),
                force_path_style: self.path_style,
                region: self.region.clone().or_else(|| base.s3.region.clone()),
                credentials: Some(self.credentials.clone()),
                connect_guard: self.connect_guard.clone(),
            },
            ..base.clone()
        };
        OutputOverride {
            destination: self.destination(),
            config,
        }
    }
}

/// Refuse a job-supplied endpoint whose host is a literal address the policy refuses.
fn check_endpoint(endpoint_url: &str, policy: &AddressPolicy) -> Result<(), JobError> {
    const FIELD: &str = "s3Config.endpointUrl";
    let url = url::Url::parse(endpoint_url)
        .map_err(|_| JobError::invalid(FIELD, "is not a valid URL"))?;
    match guard::check_url(&url, policy) {
        Ok(()) => Ok(()),
        Err(UrlRefusal::Address(blocked)) => Err(JobError::invalid(
            FIELD,
            format!("{blocked}, which this worker may not reach"),
        )),
        Err(why) => Err(JobError::invalid(FIELD, why)),
    }
}

/// Find the bucket in an endpoint URL (or take the explicit one) and the endpoint without it.
fn locate(
    endpoint_url: &str,
    explicit: Option<&str>,
    credentials: S3Credentials,
) -> Result<Bucket, String> {
    let url = url::Url::parse(endpoint_url).map_err(|_| "is not a valid URL".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http(s) URL".into());
    }
    let host = url.host_str().ok_or("has no host")?.to_owned();
    let origin = |host: &str| match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let aws = host.ends_with(".amazonaws.com");
    let region = region_of(&host);
    let make = |endpoint: String, bucket: &str, prefix: String, path_style: bool| Bucket {
        endpoint,
        bucket: bucket.to_owned(),
        prefix: prefix.trim_matches('/').to_owned(),
        path_style,
        region: region.clone(),
        credentials: credentials.clone(),
        connect_guard: None,
    };
    if let Some(explicit) = explicit {
        let (name, prefix) = explicit.split_once('/').unwrap_or((explicit, ""));
        if let Some(rest) = host.strip_prefix(&format!("{name}.")) {
            return Ok(make(origin(rest), name, prefix.to_owned(), false));
        }
        let path_style = segments.first() == Some(&name) || !aws;
        return Ok(make(origin(&host), name, prefix.to_owned(), path_style));
    }
    if let Some((name, rest)) = segments.split_first() {
        return Ok(make(origin(&host), name, rest.join("/"), true));
    }
    if let Some((name, rest)) = virtual_hosted(&host) {
        return Ok(make(origin(rest), name, String::new(), false));
    }
    Err(
        "names no bucket: use https://BUCKET.s3.REGION.amazonaws.com or http://HOST:PORT/BUCKET"
            .into(),
    )
}

/// `bucket.s3[...].example.com` or `bucket.REGION.digitaloceanspaces.com` -> (bucket, rest).
fn virtual_hosted(host: &str) -> Option<(&str, &str)> {
    let (first, rest) = host.split_once('.')?;
    let second = rest.split('.').next()?;
    let s3_like = second == "s3" || second.starts_with("s3-");
    let spaces = rest.ends_with(".digitaloceanspaces.com") && rest.split('.').count() == 3;
    (s3_like || spaces).then_some((first, rest))
}

/// The region in `s3.REGION.amazonaws.com`, `s3-REGION.amazonaws.com` or
/// `REGION.digitaloceanspaces.com`, when the host says it.
fn region_of(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    if host.ends_with(".digitaloceanspaces.com") && labels.len() >= 3 {
        return Some(labels[labels.len() - 3].to_owned());
    }
    if !host.ends_with(".amazonaws.com") {
        return None;
    }
    labels.iter().enumerate().find_map(|(i, label)| {
        if let Some(region) = label.strip_prefix("s3-") {
            return Some(region.to_owned());
        }
        let next = labels.get(i + 1)?;
        (*label == "s3" && *next != "amazonaws" && !next.starts_with("dualstack"))
            .then(|| (*next).to_owned())
    })
}

fn join(a: &str, b: &str) -> String {
    let (a, b) = (a.trim_matches('/'), b.trim_matches('/'));
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}/{b}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What the tests' `MERCHGEN_FETCH_ALLOW=127.0.0.0/8` opens.
    fn loopback() -> AddressPolicy {
        AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()])
    }

    fn creds() -> S3Credentials {
        S3Credentials {
            access_key_id: "AK".into(),
            secret_access_key: Redacted::new("SK"),
        }
    }

    fn vars(endpoint: &str, bucket: Option<&str>) -> BucketVars {
        BucketVars {
            endpoint_url: Some(endpoint.into()),
            access_key_id: Some("AK".into()),
            secret_access_key: Some(Redacted::new("SK")),
            bucket: bucket.map(Into::into),
        }
    }

    #[test]
    fn virtual_hosted_aws_endpoint_names_bucket_and_region() {
        let b = Bucket::from_vars(&vars("https://my-bucket.s3.eu-west-1.amazonaws.com", None))
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.endpoint.as_str(), b.bucket.as_str(), b.path_style),
            ("https://s3.eu-west-1.amazonaws.com", "my-bucket", false)
        );
        assert_eq!(b.region.as_deref(), Some("eu-west-1"));
        assert_eq!(b.destination(), "s3://my-bucket");
    }

    #[test]
    fn path_style_endpoint_names_bucket_and_prefix() {
        let b = Bucket::from_vars(&vars("http://127.0.0.1:9000/outs/runpod/", None))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                b.endpoint.as_str(),
                b.bucket.as_str(),
                b.prefix.as_str(),
                b.path_style
            ),
            ("http://127.0.0.1:9000", "outs", "runpod", true)
        );
        assert_eq!(b.destination(), "s3://outs/runpod");
        assert_eq!(b.region, None);
    }

    #[test]
    fn spaces_and_explicit_bucket() {
        let b = Bucket::from_vars(&vars("https://art.nyc3.digitaloceanspaces.com", None))
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.endpoint.as_str(), b.bucket.as_str(), b.region.as_deref()),
            ("https://nyc3.digitaloceanspaces.com", "art", Some("nyc3"))
        );
        let b = Bucket::from_vars(&vars(
            "https://acct.r2.cloudflarestorage.com",
            Some("media/x"),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                b.endpoint.as_str(),
                b.bucket.as_str(),
                b.prefix.as_str(),
                b.path_style
            ),
            ("https://acct.r2.cloudflarestorage.com", "media", "x", true)
        );
    }

    #[test]
    fn missing_or_partial_settings() {
        assert_eq!(Bucket::from_vars(&BucketVars::default()), Ok(None));
        let partial = BucketVars {
            endpoint_url: Some("http://h/b".into()),
            ..BucketVars::default()
        };
        assert!(Bucket::from_vars(&partial)
            .unwrap_err()
            .0
            .contains("BUCKET_ACCESS_KEY_ID"));
        let err =
            Bucket::from_vars(&vars("https://acct.r2.cloudflarestorage.com", None)).unwrap_err();
        assert!(
            err.0.contains("names no bucket") && !err.0.contains("SK"),
            "{err}"
        );
    }

    #[test]
    fn s3_config_with_object_path() {
        let cfg = json!({"accessId": "AK", "accessSecret": "SK", "bucketName": "b1", "endpointUrl": "http://127.0.0.1:9/", "objectPath": "/a/b/"});
        let b = Bucket::from_s3_config(&cfg, &loopback()).unwrap();
        assert_eq!(
            (b.bucket.as_str(), b.prefix.as_str(), b.path_style),
            ("b1", "a/b", true)
        );
        assert_eq!(b.credentials, creds());
        let o = b.output_override(&OutputConfig::default());
        assert_eq!(o.destination, "s3://b1/a/b");
        assert_eq!(o.config.s3.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        let err = Bucket::from_s3_config(
            &json!({"accessId": "AK", "endpointUrl": "http://h/b"}),
            &loopback(),
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("s3Config.accessSecret"));
    }

    #[test]
    fn s3_config_endpoint_at_a_forbidden_literal_address_is_refused() {
        for endpoint in [
            "http://169.254.169.254/latest",
            "http://127.0.0.1:9000/b",
            "http://10.0.0.5:9000/b",
            "http://[::1]:9000/b",
            "http://2130706433/b",
        ] {
            let cfg = json!({"accessId": "AK", "accessSecret": "SK", "endpointUrl": endpoint});
            let err = Bucket::from_s3_config(&cfg, &AddressPolicy::default()).unwrap_err();
            assert_eq!(
                err.field.as_deref(),
                Some("s3Config.endpointUrl"),
                "{endpoint}"
            );
            assert!(!err.message.contains("SK"), "{err}");
        }
        let open = json!({"accessId": "AK", "accessSecret": "SK", "endpointUrl": "http://127.0.0.1:9000/b"});
        assert!(Bucket::from_s3_config(&open, &loopback()).is_ok());
        let public = json!({"accessId": "AK", "accessSecret": "SK", "endpointUrl": "https://b.s3.eu-west-1.amazonaws.com"});
        assert!(Bucket::from_s3_config(&public, &AddressPolicy::default()).is_ok());
    }

    #[tokio::test]
    async fn s3_config_endpoint_name_resolving_to_loopback_is_refused() {
        let cfg = json!({"accessId": "AK", "accessSecret": "SK", "endpointUrl": "http://localhost:9000/b"});
        let bucket = Bucket::from_s3_config(&cfg, &AddressPolicy::default()).unwrap();
        let err = bucket
            .check_resolved(&AddressPolicy::default())
            .await
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("s3Config.endpointUrl"), "{err}");
        assert!(bucket.check_resolved(&loopback()).await.is_ok());
    }
}
