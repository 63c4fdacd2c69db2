//! S3 clients, built once per process for each (endpoint, path style, region, credentials) and
//! shared by the S3 sink, the `s3://` input fetcher and claim checks. The SDK configuration (credential chain,
//! `AWS_ENDPOINT_URL`, `AWS_REGION`) is loaded once, on first use.
//!
//! TLS is rustls with *ring*, the same provider the rest of the binary uses, so the build carries
//! one crypto library and no aws-lc (which also costs cold-start time gathering jitter entropy).

use super::settings::{S3Credentials, S3Settings};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::OnceCell;

/// Region used when neither the configuration nor the environment names one (common with
/// S3-compatible servers, which ignore it).
const FALLBACK_REGION: &str = "us-east-1";

/// Endpoint, path style, region, (access key id, digest of the secret) of static credentials,
/// and the connect guard.
type ClientKey = (
    Option<String>,
    bool,
    Option<String>,
    Option<(String, String)>,
    Option<String>,
);

/// Most distinct clients kept; jobs with their own credentials (RunPod `s3Config`) could
/// otherwise grow the cache without bound.
const MAX_CLIENTS: usize = 64;

static BASE: OnceCell<SdkConfig> = OnceCell::const_new();

fn clients() -> &'static Mutex<HashMap<ClientKey, Client>> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientKey, Client>>> = OnceLock::new();
    CLIENTS.get_or_init(Default::default)
}

/// The process's S3 client for these settings (built on first use, then cloned: clients share
/// one connection pool).
pub async fn client(cfg: &S3Settings) -> Client {
    let base = BASE.get_or_init(|| load_base(cfg.region.clone())).await;
    let key = (
        cfg.endpoint.clone(),
        cfg.force_path_style,
        cfg.region.clone(),
        cfg.credentials.as_ref().map(credentials_key),
        cfg.connect_guard.as_ref().map(|p| format!("{p:?}")),
    );
    let mut map = clients().lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= MAX_CLIENTS && !map.contains_key(&key) {
        map.clear();
    }
    map.entry(key).or_insert_with(|| build(base, cfg)).clone()
}

/// Identifies a key pair without keeping the secret itself in the cache key.
fn credentials_key(c: &S3Credentials) -> (String, String) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(c.secret_access_key.expose().as_bytes());
    (c.access_key_id.clone(), hex::encode(digest))
}

/// The SDK's HTTP client: rustls with *ring*; with `guard`, host names resolved through the
/// SSRF guard (the addresses checked are the ones connected to).
fn http_client(
    guard: Option<&crate::net::AddressPolicy>,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    match guard {
        Some(policy) => builder.build_with_resolver(crate::net::resolve::GuardedResolver::new(
            std::sync::Arc::new(policy.clone()),
        )),
        None => builder.build_https(),
    }
}

async fn load_base(region: Option<String>) -> SdkConfig {
    let http = http_client(None);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    // A configured region spares the SDK's region chain (and its metadata-service probe).
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    loader.load().await
}

fn build(base: &SdkConfig, cfg: &S3Settings) -> Client {
    let mut b = aws_sdk_s3::config::Builder::from(base)
        .force_path_style(cfg.force_path_style)
        // Checksums only where the API requires them: many S3-compatible servers reject the
        // SDK's default flexible checksums.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(endpoint) = &cfg.endpoint {
        b = b.endpoint_url(endpoint);
    }
    if let Some(policy) = &cfg.connect_guard {
        b = b.http_client(http_client(Some(policy)));
    }
    if let Some(c) = &cfg.credentials {
        b = b.credentials_provider(aws_sdk_s3::config::Credentials::new(
            c.access_key_id.clone(),
            c.secret_access_key.expose().to_owned(),
            None,
            None,
            "merchgen-static",
        ));
    }
    match (&cfg.region, base.region()) {
        (Some(r), _) => b = b.region(Region::new(r.clone())),
        (None, None) => b = b.region(Region::from_static(FALLBACK_REGION)),
        (None, Some(_)) => {}
    }
    Client::from_conf(b.build())
}
