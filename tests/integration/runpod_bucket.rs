//! RunPod outputs that must not travel inline go to a bucket: RunPod's `BUCKET_*` variables and
//! a request's `s3Config` are honoured (real S3 server: moto, from `make test` through
//! `MERCHGEN_TEST_S3_ENDPOINT`; without it this test says so loudly and skips, or fails under
//! `MERCHGEN_REQUIRE_PEERS=1`), and an inline
//! result over the limit fails with a clear `upload_failed` instead of being posted. An
//! `s3Config.endpointUrl` at a forbidden address (cloud metadata) is refused as `invalid_input`;
//! moto's loopback address is opened by `MERCHGEN_FETCH_ALLOW`, as for every URL.

use crate::support;

use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::output::OutputConfig;
use merchgen::redact::Redacted;
use merchgen::s3::{S3Credentials, S3Settings};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;
use support::runpod::{sigterm, wait_exit, Platform, Reply};

const SECRET: &str = "runpod-bucket-secret-42";

fn s3_config(endpoint: &str) -> OutputConfig {
    OutputConfig {
        s3: S3Settings {
            endpoint: Some(endpoint.to_owned()),
            force_path_style: true,
            region: Some("us-east-1".into()),
            credentials: Some(S3Credentials {
                access_key_id: "AKRUNPOD".into(),
                secret_access_key: Redacted::new(SECRET),
            }),
            connect_guard: None,
        },
        ..OutputConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runpod_outputs_go_to_bucket_vars_or_s3_config_and_oversize_inline_fails() {
    let Some(endpoint) = support::peers::moto_endpoint() else {
        return;
    };
    let cfg = s3_config(&endpoint);
    let client = merchgen::s3::client(&cfg.s3).await;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (env_bucket, job_bucket) = (format!("rp-env-{suffix}"), format!("rp-job-{suffix}"));
    for b in [&env_bucket, &job_bucket] {
        client.create_bucket().bucket(b).send().await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 41, TinyLayout::Folder).unwrap();
    let platform = Platform::start().await;
    let input = json!({"prompt": "x", "width": 64, "height": 64, "num_inference_steps": 1});
    let mut inline = input.clone();
    inline["output"] = json!({"destination": "inline"});
    let s3 = json!({"accessId": "AKRUNPOD", "accessSecret": SECRET, "bucketName": job_bucket, "endpointUrl": endpoint, "objectPath": "runs/x"});
    let metadata = json!({"accessId": "AKRUNPOD", "accessSecret": SECRET, "bucketName": "b1", "endpointUrl": "http://169.254.169.254/latest"});
    platform.script_take([
        Reply::Json(json!({"id": "env-1", "input": input})),
        Reply::Json(json!({"id": "cfg-1", "input": input, "s3Config": s3})),
        Reply::Json(json!({"id": "inline-1", "input": inline})),
        Reply::Json(json!({"id": "meta-1", "input": input, "s3Config": metadata})),
    ]);
    let log = dir.path().join("worker.log");
    let mut child = support::binary::on_tiny_model(&model)
        .envs(platform.worker_env())
        .env("MERCHGEN_INLINE_MAX_BYTES", "100")
        .env("MERCHGEN_LOG_FORMAT", "text")
        .env("RUST_LOG", "merchgen=debug,info")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8")
        .env("BUCKET_ENDPOINT_URL", format!("{endpoint}/{env_bucket}"))
        .env("BUCKET_ACCESS_KEY_ID", "AKRUNPOD")
        .env("BUCKET_SECRET_ACCESS_KEY", SECRET)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    platform
        .until(Duration::from_secs(60), "four results", |p| {
            ["env-1", "cfg-1", "inline-1", "meta-1"]
                .iter()
                .all(|j| !p.results(j).is_empty())
        })
        .await;
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(20)), 0);

    for (job, bucket, key) in [
        ("env-1", &env_bucket, "env-1/images/0.png"),
        ("cfg-1", &job_bucket, "runs/x/cfg-1/images/0.png"),
    ] {
        let body = platform.results(job)[0].json();
        let image = &body["output"]["images"][0];
        assert_eq!(image["key"], key, "{body}");
        assert!(image.get("base64").is_none(), "not inline");
        assert!(
            image["url"].as_str().is_some_and(|u| u.starts_with("http")),
            "a presigned URL: {image}"
        );
        let stored = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(stored.len() as u64, image["bytes"].as_u64().unwrap());
    }
    let error = platform.results("inline-1")[0].error().unwrap();
    assert_eq!(
        (error["code"].as_str(), error["retryable"].as_bool()),
        (Some("upload_failed"), Some(false))
    );
    assert!(
        error["message"].as_str().unwrap().contains("limit"),
        "{error}"
    );
    let error = platform.results("meta-1")[0].error().unwrap();
    assert_eq!(
        (error["code"].as_str(), error["field"].as_str()),
        (Some("invalid_input"), Some("s3Config.endpointUrl")),
        "{error}"
    );
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        !logs.contains(SECRET),
        "the bucket secret never reaches the logs"
    );
}
