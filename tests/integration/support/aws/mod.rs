//! Shared by the AWS door tests: moto (S3 and SQS on one loopback endpoint, from `make test`),
//! queues with a dead-letter queue, the real `merchgen` binary as a child process on the tiny
//! model, and a fake Lambda Runtime API (`runtime_api`).

#![allow(dead_code)]

pub(crate) mod cargo_lambda;
pub(crate) mod runtime_api;

use crate::support::http::{Recorded, Reply, TestServer};
use aws_sdk_sqs::types::QueueAttributeName;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::output::OutputConfig;
use merchgen::s3::S3Settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The moto endpoint (with the dummy credentials `make test` exports, see `support::peers`).
/// `None` (and a loud note) when the tests must skip; a failure instead when peers are required.
pub(crate) fn moto() -> Option<String> {
    crate::support::peers::moto_endpoint()
}

/// What a `merchgen` child talking to moto gets: dummy credentials and a region, so the SDK's
/// chains never look further (at an instance metadata service, say).
const AWS_ENV: [(&str, &str); 4] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing-secret-key"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

pub(crate) fn s3_config(endpoint: &str) -> OutputConfig {
    OutputConfig {
        s3: S3Settings {
            endpoint: Some(endpoint.to_owned()),
            force_path_style: true,
            ..S3Settings::default()
        },
        presign_expiry_secs: 600,
        ..OutputConfig::default()
    }
}

pub(crate) async fn s3(endpoint: &str) -> aws_sdk_s3::Client {
    merchgen::s3::client(&s3_config(endpoint).s3).await
}

/// A fresh bucket `{base}-{random}`.
pub(crate) async fn bucket(endpoint: &str, base: &str) -> String {
    let name = format!("{base}-{}", short_id());
    s3(endpoint)
        .await
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap();
    name
}

pub(crate) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// An SQS client for moto (the door's own client builder).
pub(crate) async fn sqs(endpoint: &str) -> aws_sdk_sqs::Client {
    merchgen::intake::sqs::client::build(Some(endpoint), "", 20).await
}

/// A job queue and its dead-letter queue.
#[derive(Debug, Clone)]
pub(crate) struct Queues {
    pub url: String,
    pub dlq_url: String,
}

/// Create `{base}-{random}` with a dead-letter queue after `max_receive` receives.
pub(crate) async fn queues(client: &aws_sdk_sqs::Client, base: &str, max_receive: u32) -> Queues {
    let name = format!("{base}-{}", short_id());
    let dlq_url = client
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let redrive =
        serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive})
            .to_string();
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    Queues { url, dlq_url }
}

pub(crate) async fn send(client: &aws_sdk_sqs::Client, url: &str, body: &str) -> String {
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap()
        .message_id
        .unwrap()
}

/// (visible, in flight, delayed) message counts.
pub(crate) async fn counts(client: &aws_sdk_sqs::Client, url: &str) -> (u64, u64, u64) {
    let attrs = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap_or_default();
    let n = |a: QueueAttributeName| attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        n(QueueAttributeName::ApproximateNumberOfMessages),
        n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        n(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    )
}

/// Every body now visible on `url` (received with a long visibility, not deleted).
pub(crate) async fn bodies(client: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().filter_map(|m| m.body));
    }
}

/// Poll `check` every 200 ms until it is true or `limit` passes.
pub(crate) async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The tiny random-weight model, written once per test binary.
pub(crate) fn tiny_model() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("merchgen-aws-tests-{}", std::process::id()));
        tiny::write(&dir.join("model"), 21, TinyLayout::Folder).unwrap()
    })
    .clone()
}

/// The tiny random-weight matting model (the sample events' sticker style cuts designs out),
/// written once per test binary.
pub(crate) fn tiny_matting() -> PathBuf {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("merchgen-aws-matting-{}", std::process::id()));
        let files = merchgen::engine::matting::write_tiny(&dir, 21).unwrap();
        files
            .into_iter()
            .find(|f| f.ends_with("u2netp.pth"))
            .expect("tiny u2netp written")
    })
    .clone()
}

/// The real `merchgen` binary as a child process; killed when dropped. Its stdout and stderr go
/// to files (no pipe to fill up), read back with `logs`.
pub(crate) struct Merchgen {
    child: Child,
    logs: PathBuf,
}

impl Merchgen {
    /// Start `merchgen ARGS` on the tiny model with `env` on top of the test defaults.
    pub(crate) fn start(args: &[&str], env: &HashMap<String, String>, logs: &Path) -> Self {
        let mut cmd = Command::new(crate::support::binary::BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("RUST_LOG", "info");
        crate::support::binary::tiny_settings(&mut cmd, &tiny_model())
            .env("MERCHGEN_MATTING_MODEL", tiny_matting())
            .env("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8")
            .env("MERCHGEN_WEBHOOK_ATTEMPTS", "2")
            .env("MERCHGEN_WEBHOOK_BACKOFF_MS", "50")
            .env("MERCHGEN_LOG_FORMAT", "json");
        for (k, v) in AWS_ENV {
            cmd.env(k, v);
        }
        cmd.envs(env);
        let stderr = std::fs::File::create(logs).unwrap();
        let stdout = stderr.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Merchgen {
            child,
            logs: logs.to_owned(),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote so far.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.logs).unwrap_or_default()
    }

    /// Send SIGTERM (what Lambda, Docker and ECS send before SIGKILL).
    pub(crate) fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// SIGKILL: no chance to clean up.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the exit code, at most `limit`.
    pub(crate) async fn exit_code(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Merchgen {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment of `merchgen sqs` against moto (short waits and visibility for tests).
pub(crate) fn sqs_env(endpoint: &str, queue_url: &str, output: &str) -> HashMap<String, String> {
    [
        ("MERCHGEN_SQS_QUEUE_URL", queue_url),
        ("MERCHGEN_SQS_ENDPOINT", endpoint),
        ("MERCHGEN_S3_ENDPOINT", endpoint),
        ("MERCHGEN_S3_PATH_STYLE", "true"),
        ("MERCHGEN_OUTPUT", output),
        ("MERCHGEN_SQS_WAIT_SECS", "1"),
        ("MERCHGEN_SQS_VISIBILITY_SECS", "3"),
        ("MERCHGEN_SQS_HEARTBEAT_SECS", "1"),
        ("MERCHGEN_SQS_RETRY_BASE_SECS", "1"),
        ("MERCHGEN_SQS_RETRY_MAX_SECS", "4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The webhook events a test receiver got: (type, job id, replayed) per request.
pub(crate) fn webhook_events(
    requests: &[crate::support::http::Recorded],
) -> Vec<(String, String, bool)> {
    requests
        .iter()
        .filter(|r| r.path.starts_with("/hooks"))
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .map(|v| {
            let kind = v["type"].as_str().unwrap_or_default().to_owned();
            let id = v["data"]["id"].as_str().unwrap_or_default().to_owned();
            (kind, id, v["data"]["replayed"].as_bool().unwrap_or(false))
        })
        .collect()
}

/// The HTTP peers of a job: webhooks land on `/hooks`, `/flaky.png` always answers 503 (a
/// retryable input failure), anything else 200.
pub(crate) async fn peers() -> TestServer {
    TestServer::start("127.0.0.1:0", |_, req: &Recorded| {
        if req.path.starts_with("/flaky") {
            Reply::status(503)
        } else {
            Reply::ok("")
        }
    })
    .await
}
