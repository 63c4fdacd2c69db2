//! `S3Sink`, `ResultStore` and `s3://` inputs against a real S3-compatible server (moto) on
//! loopback. `scripts/moto.sh start` prints the endpoint; `make test` exports it as
//! `MERCHGEN_TEST_S3_ENDPOINT`. Without it these tests say so loudly and skip (or fail, under
//! `MERCHGEN_REQUIRE_PEERS=1`).

use crate::support;

use merchgen::error::{ErrorCode, JobError};
use merchgen::fetch::{FetchConfig, Fetcher};
use merchgen::job::{ImageSource, JobOutcome, JobStatus};
use merchgen::output::{self, keys, OutputConfig};
use merchgen::s3::S3Settings;
use support::images::png;

/// The moto endpoint (with the dummy credentials `make test` exports). `None` when the tests
/// must skip.
fn endpoint() -> Option<String> {
    support::peers::moto_endpoint()
}

fn config(endpoint: &str) -> OutputConfig {
    OutputConfig {
        s3: S3Settings {
            endpoint: Some(endpoint.to_owned()),
            force_path_style: true,
            ..S3Settings::default()
        },
        presign_expiry_secs: 600,
        cache_control: Some("public, max-age=60".into()),
        ..OutputConfig::default()
    }
}

/// A fresh bucket named `{base}-{random}`, so runs against a long-lived server never collide.
async fn make_bucket(cfg: &OutputConfig, base: &str) -> String {
    let bucket = format!("{base}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let client = merchgen::s3::client(&cfg.s3).await;
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    bucket
}

fn succeeded(id: &str) -> JobOutcome {
    let mut o = JobOutcome::failed(id, JobError::internal("placeholder"));
    o.status = JobStatus::Succeeded;
    o.error = None;
    o.seed = Some(42);
    o
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn s3_sink_stores_objects_with_headers_and_presigned_urls() {
    let Some(endpoint) = endpoint() else { return };
    let cfg = config(&endpoint);
    let bucket = make_bucket(&cfg, "merchgen-out").await;
    let sink = output::open_sink(&format!("s3://{bucket}/runs/2026"), &cfg)
        .await
        .unwrap();
    assert_eq!(sink.describe(), format!("s3://{bucket}/runs/2026"));
    let image = png(8, 8);
    let stored = sink
        .put(&keys::image("job-1", 0, "png"), image.clone(), "image/png")
        .await
        .unwrap();
    assert_eq!(stored.key, "runs/2026/job-1/images/0.png");
    let mockup = sink
        .put(
            &keys::mockup("job-1", "mug", "white", "jpg"),
            b"jpeg".to_vec(),
            "image/jpeg",
        )
        .await
        .unwrap();
    assert_eq!(mockup.key, "runs/2026/job-1/mockups/mug-white.jpg");

    let client = merchgen::s3::client(&cfg.s3).await;
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&stored.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.cache_control(), Some("public, max-age=60"));
    let head = client
        .head_object()
        .bucket(&bucket)
        .key(&mockup.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/jpeg"));

    let url = stored.url.unwrap();
    assert!(
        url.starts_with(&format!(
            "{endpoint}/{bucket}/runs/2026/job-1/images/0.png?"
        )),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=600"), "{url}");
    let resp = http().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap().to_vec(), image);
    assert_eq!(
        sink.get(&keys::image("job-1", 0, "png")).await.unwrap(),
        Some(image)
    );
    assert_eq!(sink.get("job-1/images/9.png").await.unwrap(), None);
}

#[tokio::test]
async fn result_json_roundtrips_through_result_store() {
    let Some(endpoint) = endpoint() else { return };
    let cfg = config(&endpoint);
    let bucket = make_bucket(&cfg, "merchgen-results").await;
    let sink = output::open_sink(&format!("s3://{bucket}"), &cfg)
        .await
        .unwrap();
    assert_eq!(
        merchgen::worker::replay::load_succeeded(&*sink, "job-7").await,
        None
    );
    merchgen::worker::replay::store_result(&*sink, &succeeded("job-7"))
        .await
        .unwrap();
    let client = merchgen::s3::client(&cfg.s3).await;
    let head = client
        .head_object()
        .bucket(&bucket)
        .key("job-7/result.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/json"));
    assert_eq!(
        merchgen::worker::replay::load_succeeded(&*sink, "job-7").await,
        Some(succeeded("job-7"))
    );

    let failed = JobOutcome::failed("job-8", JobError::internal("gpu fell over"));
    merchgen::worker::replay::store_result(&*sink, &failed)
        .await
        .unwrap();
    assert_eq!(
        merchgen::worker::replay::load_succeeded(&*sink, "job-8").await,
        None
    );
}

#[tokio::test]
async fn public_base_url_replaces_presigning() {
    let Some(endpoint) = endpoint() else { return };
    let cfg = OutputConfig {
        public_base_url: Some("https://cdn.example/assets/".into()),
        ..config(&endpoint)
    };
    let bucket = make_bucket(&cfg, "merchgen-public").await;
    let sink = output::open_sink(&format!("s3://{bucket}/p"), &cfg)
        .await
        .unwrap();
    let stored = sink
        .put(
            &keys::print_file("j", "tshirt", "png"),
            png(2, 2),
            "image/png",
        )
        .await
        .unwrap();
    assert_eq!(
        stored.url.as_deref(),
        Some("https://cdn.example/assets/p/j/print/tshirt.png")
    );
}

#[tokio::test]
async fn missing_bucket_is_upload_failed_without_secrets() {
    let Some(endpoint) = endpoint() else { return };
    let cfg = config(&endpoint);
    let sink = output::open_sink("s3://merchgen-no-such-bucket/x", &cfg)
        .await
        .unwrap();
    let err = sink
        .put("j/images/0.png", png(1, 1), "image/png")
        .await
        .unwrap_err();
    let job_err: JobError = err.into();
    assert_eq!(job_err.code, ErrorCode::UploadFailed);
    assert_eq!(job_err.field.as_deref(), Some("output.destination"));
    assert!(
        job_err.message.contains("NoSuchBucket"),
        "{}",
        job_err.message
    );
    assert!(!job_err.retryable);
    for secret in ["testing-secret-key", "X-Amz-Signature", "Credential="] {
        assert!(!job_err.message.contains(secret), "{}", job_err.message);
    }
}

#[tokio::test]
async fn s3_inputs_are_fetched_through_the_same_client() {
    let Some(endpoint) = endpoint() else { return };
    let cfg = config(&endpoint);
    let bucket = make_bucket(&cfg, "merchgen-in").await;
    let sink = output::open_sink(&format!("s3://{bucket}/uploads"), &cfg)
        .await
        .unwrap();
    sink.put("photo.png", png(5, 7), "image/png").await.unwrap();
    sink.put("big.bin", vec![7u8; 4096], "application/octet-stream")
        .await
        .unwrap();
    let fetcher = Fetcher::new(FetchConfig {
        max_bytes: 2048,
        s3: cfg.s3.clone(),
        ..FetchConfig::default()
    })
    .unwrap();
    let source = |key: &str| ImageSource::S3 {
        bucket: bucket.clone(),
        key: key.into(),
    };
    let img = fetcher
        .fetch_image(&source("uploads/photo.png"), "design")
        .await
        .unwrap();
    assert_eq!(img.dimensions(), (5, 7));
    let e = fetcher
        .fetch_image(&source("uploads/none.png"), "design")
        .await
        .unwrap_err();
    assert_eq!((e.code, e.retryable), (ErrorCode::InputFetchFailed, false));
    assert_eq!(e.field.as_deref(), Some("design.s3"));
    let e = fetcher
        .fetch_bytes(&source("uploads/big.bin"), "design")
        .await
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InputTooLarge);
}

/// An S3 endpoint a job named is resolved through the SSRF guard by the S3 client itself, when
/// it connects, so the address checked is the one connected to: `localhost` (moto, here) is
/// refused under the default rules even though nothing checked it first, and reached once
/// `127.0.0.0/8` is allowed. (Before: the job's endpoint was checked once, then the client
/// resolved the name again, so a name re-bound in between reached a private address.)
#[tokio::test]
async fn a_job_named_s3_endpoint_connects_only_where_the_guard_allows() {
    let Some(endpoint) = endpoint() else {
        return;
    };
    let by_name = endpoint.replace("127.0.0.1", "localhost");
    let settings = |guard: merchgen::net::AddressPolicy| S3Settings {
        endpoint: Some(by_name.clone()),
        force_path_style: true,
        connect_guard: Some(guard),
        ..S3Settings::default()
    };
    let bucket = format!("merchgen-guard-{}", support::aws::short_id());
    let refused = merchgen::s3::client(&settings(merchgen::net::AddressPolicy::default()))
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await;
    let err = refused.expect_err("localhost reached under the default rules");
    let chain = format!("{:?}", err);
    assert!(
        chain.contains("blocked") || chain.contains("resolves to"),
        "{chain}"
    );
    let loopback = merchgen::net::AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
    merchgen::s3::client(&settings(loopback))
        .await
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("reached once loopback is allowed");
}
