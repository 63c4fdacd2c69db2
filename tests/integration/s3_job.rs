//! A whole job with an `s3://` destination against the real S3-compatible server `make test`
//! starts (moto on loopback): objects, keys, content types, `result.json` last, a presigned URL a
//! plain HTTP client can GET, a redelivery answered without running the model and with freshly
//! signed URLs, and a different job under the same id refused (`job_id_conflict`).

use crate::support;

use merchgen::app::Door;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::worker::JobRequest;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_with_s3_destination_stores_outputs_and_replays() {
    let Some(endpoint) = support::peers::moto_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("m"), 31, TinyLayout::Folder).unwrap();
    let cli = support::workers::cli(&model, &["--s3-endpoint", &endpoint, "--s3-path-style"]);
    let bucket = format!("jobs-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let client = merchgen::s3::client(&cli.config.s3_settings()).await;
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let worker = support::workers::worker(&cli, Door::Deployed, "inline").await;

    let job = json!({"id": "s3-job", "prompt": "a corgi", "width": 64, "height": 64, "num_images": 2,
        "mockups": {"products": ["mug"], "colors": ["white"], "size": 256},
        "output": {"destination": format!("s3://{bucket}/shop/orders"), "format": "png"}});
    let outcome = worker.handle(JobRequest::new(job.clone(), "d1")).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.images[0].key, "shop/orders/s3-job/images/0.png");
    // Two variations: each has its own mockup, under its index.
    assert_eq!(
        outcome.mockups[0].key,
        "shop/orders/s3-job/mockups/0/mug-white.jpg"
    );
    assert_eq!(
        outcome.mockups[1].key,
        "shop/orders/s3-job/mockups/1/mug-white.jpg"
    );

    let head = |key: String| client.head_object().bucket(&bucket).key(key).send();
    let image = head("shop/orders/s3-job/images/1.png".into())
        .await
        .unwrap();
    assert_eq!(image.content_type(), Some("image/png"));
    let mockup = head("shop/orders/s3-job/mockups/1/mug-white.jpg".into())
        .await
        .unwrap();
    assert_eq!(mockup.content_type(), Some("image/jpeg"));
    let result = head("shop/orders/s3-job/result.json".into()).await.unwrap();
    let last_output = [image.last_modified(), mockup.last_modified()]
        .into_iter()
        .flatten()
        .max()
        .unwrap();
    assert!(
        result.last_modified().unwrap() >= last_output,
        "result.json is written last"
    );

    let url = outcome.images[0].url.clone().expect("presigned URL");
    let body = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(
        body.bytes().await.unwrap().len() as u64,
        outcome.images[0].bytes
    );

    let runs = worker.engine().unwrap().generations();
    // Presigned URLs carry their signing time to the second: wait for the next one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = worker.handle(JobRequest::new(job.clone(), "d2")).await;
    assert!(again.replayed && again.succeeded());
    assert_eq!(
        worker.engine().unwrap().generations(),
        runs,
        "redelivery did not run the model"
    );
    assert_eq!(again.job_sha256, outcome.job_sha256);
    let fresh = again.images[0].url.clone().expect("a URL");
    let signed_at = |url: &str| {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "X-Amz-Date")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert!(
        signed_at(&fresh) > signed_at(&url),
        "the replay signs its URLs again: {} then {}",
        signed_at(&url),
        signed_at(&fresh)
    );

    // Another job under the same id: refused, never answered with the first job's files.
    let mut other = job;
    other["prompt"] = json!("a different design");
    let refused = worker.handle(JobRequest::new(other, "d3")).await;
    let error = refused.error.expect("refused");
    assert_eq!(error.code, merchgen::error::ErrorCode::JobIdConflict);
    assert_eq!(error.field.as_deref(), Some("id"));
    assert!(!error.retryable && refused.images.is_empty());
}
