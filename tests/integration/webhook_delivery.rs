//! Webhook delivery against a real HTTP receiver on loopback. Every signature is verified with an
//! independent implementation (the `standardwebhooks` crate); the receiver scripts its answers
//! to exercise retries, give-ups, redirects, timeouts and a receiver that is down. Backoffs are
//! a few milliseconds, so nothing here sleeps for long.

use crate::support;

use merchgen::error::JobError;
use merchgen::job::spec::WebhookEventKind;
use merchgen::job::JobOutcome;
use merchgen::job::ValidWebhook;
use merchgen::webhook::{HttpNotifier, Notifier, Secret, WebhookConfig, WebhookEvent};
use std::time::Duration;
use support::http::{Recorded, Reply, TestServer};

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn notifier(allow: &[&str], max_attempts: u32) -> HttpNotifier {
    HttpNotifier::new(WebhookConfig {
        secret: Some(Secret::parse(SECRET).unwrap()),
        timeout_secs: 1,
        max_attempts,
        base_backoff_ms: 1,
        max_backoff_ms: 5,
        allow_cidrs: allow.iter().map(|c| c.parse().unwrap()).collect(),
    })
    .unwrap()
}

fn hook(url: String, events: &[WebhookEventKind]) -> ValidWebhook {
    ValidWebhook {
        url,
        events: events.to_vec(),
    }
}

fn finished() -> WebhookEvent {
    WebhookEvent::finished(&JobOutcome::failed(
        "order-1042.design",
        JobError::internal("boom"),
    ))
}

/// Verify with the independent implementation and return the parsed body.
fn verify(req: &Recorded) -> serde_json::Value {
    let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
    wh.verify(&req.body, &req.header_map())
        .unwrap_or_else(|e| panic!("signature rejected: {e}"));
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    serde_json::from_slice(&req.body).unwrap()
}

#[tokio::test]
async fn retries_500s_then_delivers_once_with_valid_signatures() {
    let server = TestServer::script(vec![
        Reply::status(500),
        Reply::status(500),
        Reply::ok("ok"),
    ])
    .await;
    let n = notifier(&["127.0.0.0/8"], 5);
    let report = n
        .notify(
            &hook(
                server.url("/hooks?token=t0k3n"),
                &[WebhookEventKind::Failed],
            ),
            finished(),
        )
        .await;
    assert!(report.delivered, "{report:?}");
    assert_eq!(
        (report.attempts, report.last_status, report.error),
        (3, Some(200), None)
    );
    let reqs = server.requests();
    assert_eq!(reqs.len(), 3);
    let ids: Vec<_> = reqs
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "webhook-id must be stable: {ids:?}"
    );
    for r in &reqs {
        let body = verify(r);
        assert_eq!(body["type"], "job.failed");
        assert_eq!(body["data"]["id"], "order-1042.design");
        assert_eq!(body["data"]["error"]["code"], "internal");
        assert!(body["timestamp"].as_str().unwrap().contains('T'));
        assert_eq!(r.path, "/hooks?token=t0k3n");
    }
}

#[tokio::test]
async fn client_errors_and_redirects_are_not_retried_or_followed() {
    let n = notifier(&["127.0.0.0/8"], 5);
    let server = TestServer::script(vec![Reply::status(400)]).await;
    let report = n
        .notify(
            &hook(server.url("/"), &[WebhookEventKind::Failed]),
            finished(),
        )
        .await;
    assert_eq!(
        (report.delivered, report.attempts, report.last_status),
        (false, 1, Some(400))
    );
    assert!(report.error.unwrap().contains("HTTP 400"));
    assert_eq!(server.requests().len(), 1);

    let target = TestServer::script(vec![Reply::ok("ok")]).await;
    let server = TestServer::script(vec![Reply::redirect(301, &target.url("/moved"))]).await;
    let report = n
        .notify(
            &hook(server.url("/"), &[WebhookEventKind::Failed]),
            finished(),
        )
        .await;
    assert_eq!(
        (report.delivered, report.attempts, report.last_status),
        (false, 1, Some(301))
    );
    assert!(report.error.unwrap().contains("redirects are not followed"));
    assert_eq!(server.requests().len(), 1);
    assert!(
        target.requests().is_empty(),
        "the redirect must not be followed"
    );
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after_up_to_the_cap() {
    let server = TestServer::script(vec![
        Reply::status(429).header("retry-after", "3600"),
        Reply::status(503).header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"),
        Reply::status(204),
    ])
    .await;
    let started = std::time::Instant::now();
    let report = notifier(&["127.0.0.0/8"], 4)
        .notify(
            &hook(server.url("/"), &[WebhookEventKind::Failed]),
            finished(),
        )
        .await;
    assert_eq!(
        (report.delivered, report.attempts, report.last_status),
        (true, 3, Some(204))
    );
    // Retry-After of an hour was capped at max_backoff_ms (5 ms).
    assert!(started.elapsed() < Duration::from_secs(2));
    server.requests().iter().for_each(|r| {
        verify(r);
    });
}

#[tokio::test]
async fn receiver_down_or_slow_is_recorded_as_not_delivered() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = notifier(&["127.0.0.0/8"], 3)
        .notify(
            &hook(
                format!("http://127.0.0.1:{port}/h?sig=SECRET"),
                &[WebhookEventKind::Failed],
            ),
            finished(),
        )
        .await;
    assert_eq!(
        (report.delivered, report.attempts, report.last_status),
        (false, 3, None)
    );
    let error = report.error.unwrap();
    assert!(error.contains("could not connect"), "{error}");
    assert!(
        !error.contains("SECRET") && !error.contains("127.0.0.1"),
        "{error}"
    );

    let slow = TestServer::script(vec![Reply {
        delay: Some(Duration::from_secs(3)),
        ..Reply::ok("late")
    }])
    .await;
    let report = notifier(&["127.0.0.0/8"], 1)
        .notify(
            &hook(slow.url("/"), &[WebhookEventKind::Failed]),
            finished(),
        )
        .await;
    assert_eq!((report.delivered, report.attempts), (false, 1));
    assert!(report.error.unwrap().contains("timed out after 1 s"));
}

#[tokio::test]
async fn only_subscribed_events_are_sent() {
    let server = TestServer::script(vec![Reply::ok("ok")]).await;
    let n = notifier(&["127.0.0.0/8"], 2);
    let h = hook(
        server.url("/"),
        &[WebhookEventKind::Completed, WebhookEventKind::Progress],
    );
    let report = n.notify(&h, finished()).await;
    assert_eq!(
        (report.delivered, report.attempts, report.error),
        (false, 0, None)
    );
    assert!(server.requests().is_empty());

    let report = n.notify(&h, WebhookEvent::progress("j1", 2, 4)).await;
    assert!(report.delivered);
    let body = verify(&server.requests()[0]);
    assert_eq!(body["type"], "job.progress");
    assert_eq!(
        (
            body["data"]["step"].as_u64(),
            body["data"]["total"].as_u64()
        ),
        (Some(2), Some(4))
    );
}

#[tokio::test]
async fn webhook_urls_get_the_same_address_checks_as_inputs() {
    let server = TestServer::script(vec![Reply::ok("ok")]).await;
    let n = notifier(&[], 3);
    let report = n
        .notify(
            &hook(server.url("/"), &[WebhookEventKind::Failed]),
            finished(),
        )
        .await;
    assert_eq!((report.delivered, report.attempts), (false, 0));
    assert!(report.error.unwrap().contains("loopback"));
    for url in [
        "http://169.254.169.254/",
        "http://[::ffff:10.0.0.1]/",
        "http://0177.0.0.1/",
    ] {
        let report = n
            .notify(&hook(url.into(), &[WebhookEventKind::Failed]), finished())
            .await;
        assert_eq!((report.delivered, report.attempts), (false, 0), "{url}");
        assert!(report.error.unwrap().contains("not allowed"), "{url}");
    }
    let report = n
        .notify(
            &hook(
                format!("http://localhost:{}/", server.addr.port()),
                &[WebhookEventKind::Failed],
            ),
            finished(),
        )
        .await;
    assert!(!report.delivered);
    assert_eq!(report.attempts, 1, "refused at resolution, not retried");
    assert!(report
        .error
        .unwrap()
        .contains("resolves to a loopback address"));
    assert!(server.requests().is_empty());
}

/// `merchgen invoke` of a mockup-only job on a process with no webhook secret, logging text into
/// a pipe: the "sent unsigned" warning appears only once a webhook is really sent (and once),
/// and no terminal colour codes reach the pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unsigned_warning_comes_with_the_first_webhook_and_piped_text_logs_are_plain() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestServer::script(vec![Reply::status(204)]).await;
    let design = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(support::images::png(32, 32))
    };
    let job = |id: &str, webhook: Option<String>| {
        let mut job = serde_json::json!({"id": id, "design": {"base64": design},
            "mockups": {"products": ["mug"], "colors": ["white"], "size": 128}});
        if let Some(url) = webhook {
            job["webhook"] = serde_json::json!({"url": url, "events": ["started", "completed"]});
        }
        job
    };
    let invoke = |name: &str, body: serde_json::Value| {
        let event = dir.path().join(format!("{name}.json"));
        std::fs::write(&event, body.to_string()).unwrap();
        let mut cmd = support::binary::offline();
        cmd.args(["invoke", event.to_str().unwrap(), "--out"])
            .arg(dir.path().join("out"))
            .env("MERCHGEN_MODEL", "none")
            .env("MERCHGEN_LOG_FORMAT", "text")
            .env("MERCHGEN_MOCKUP_WARMUP", "none")
            .env("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8")
            .env_remove("MERCHGEN_WEBHOOK_SECRET")
            .env_remove("RUST_LOG");
        cmd
    };
    let run = |mut cmd: std::process::Command| async move {
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(invoke("quiet", job("no-hook", None))).await;
    assert!(!quiet.contains("sent unsigned"), "{quiet}");
    assert!(!quiet.contains('\u{1b}'), "colour codes in a pipe: {quiet}");
    let hooked = run(invoke(
        "hooked",
        job("with-hook", Some(receiver.url("/hook"))),
    ))
    .await;
    assert_eq!(hooked.matches("sent unsigned").count(), 1, "{hooked}");
    assert_eq!(receiver.requests().len(), 2, "started and completed");
}
