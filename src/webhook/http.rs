//! `HttpNotifier`: POSTs signed events with a bounded timeout, retries connection errors,
//! timeouts, 429 and 5xx with backoff, follows no redirects, and reaches only addresses the
//! SSRF guard allows (the guarded client of `crate::net`, as input fetching). The URL is never
//! logged or reported: it may carry the receiver's token. `deliver` posts any signed body (the
//! endpoint API's status webhooks use it too); `notify` is a job's event through it.

use super::event::{signature, WebhookEvent};
use super::notifier::{Notifier, WebhookConfig};
use super::retry;
use crate::backoff::Backoff;
use crate::job::outcome::WebhookReport;
use crate::job::ValidWebhook;
use crate::net::guard::UrlRefusal;
use crate::net::{resolve, GuardedClient, Redirects};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Delivers webhooks over HTTP(S). Build once per process and share.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    cfg: Arc<WebhookConfig>,
    client: GuardedClient,
}

/// One message to deliver: its Standard Webhooks id, its body, and what logs call it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'a> {
    /// `webhook-id`: the same for every retry and redelivery of this message.
    pub id: &'a str,
    pub body: &'a [u8],
    /// The job it is about and the event's name, for log lines.
    pub job_id: &'a str,
    pub event: &'a str,
    /// At most this many attempts (`None`: the configured number, which is also the ceiling).
    pub max_attempts: Option<u32>,
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
    GiveUp {
        status: Option<u16>,
        error: String,
    },
}

impl HttpNotifier {
    /// A notifier with its guarded HTTP client. Fails only if the TLS stack cannot start.
    pub fn new(cfg: WebhookConfig) -> Result<Self, reqwest::Error> {
        let client = GuardedClient::new(
            cfg.allow_cidrs.clone(),
            Duration::from_secs(cfg.timeout_secs),
            Redirects::None,
        )?;
        Ok(HttpNotifier {
            cfg: Arc::new(cfg),
            client,
        })
    }

    /// POST `msg` to `url`, signed when a secret is configured, retrying connection errors,
    /// timeouts, 429 and 5xx (honouring `Retry-After`) up to the attempt budget.
    pub(crate) async fn deliver(&self, url: &str, msg: Message<'_>) -> WebhookReport {
        let mut report = WebhookReport {
            delivered: false,
            attempts: 0,
            last_status: None,
            error: None,
        };
        let url = match reqwest::Url::parse(url) {
            Ok(url) => url,
            Err(_) => {
                report.error = Some("webhook.url is not a valid URL".to_owned());
                return report;
            }
        };
        if let Err(r) = self.client.check(&url) {
            return refused_report(r);
        }
        if self.cfg.secret.is_none() {
            static UNSIGNED: std::sync::Once = std::sync::Once::new();
            UNSIGNED.call_once(|| {
                tracing::warn!("no webhook secret configured (MERCHGEN_WEBHOOK_SECRET): webhooks are sent unsigned")
            });
        }
        let backoff = Backoff {
            base: Duration::from_millis(self.cfg.base_backoff_ms),
            max: Duration::from_millis(self.cfg.max_backoff_ms),
        };
        let (job_id, event) = (msg.job_id, msg.event);
        let configured = self.cfg.max_attempts.max(1);
        let max_attempts = msg
            .max_attempts
            .map_or(configured, |n| n.clamp(1, configured));
        for n in 1..=max_attempts {
            report.attempts = n;
            let started = Instant::now();
            let outcome = self.attempt(&url, msg.id, msg.body).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let retry_after = match outcome {
                Attempt::Delivered(status) => {
                    tracing::info!(
                        job_id,
                        event,
                        attempt = n,
                        status,
                        elapsed_ms,
                        "webhook delivered"
                    );
                    report.delivered = true;
                    report.last_status = Some(status);
                    report.error = None;
                    return report;
                }
                Attempt::GiveUp { status, error } => {
                    tracing::warn!(job_id, event, attempt = n, ?status, %error, elapsed_ms, "webhook not delivered; not retrying");
                    report.last_status = status;
                    report.error = Some(error);
                    return report;
                }
                Attempt::Retry {
                    status,
                    error,
                    retry_after,
                } => {
                    tracing::warn!(job_id, event, attempt = n, ?status, %error, elapsed_ms, "webhook attempt failed");
                    report.last_status = status.or(report.last_status);
                    report.error = Some(error);
                    retry_after
                }
            };
            if n < max_attempts {
                tokio::time::sleep(backoff.jittered(n, retry_after)).await;
            }
        }
        report
    }

    async fn attempt(&self, url: &reqwest::Url, msg_id: &str, body: &[u8]) -> Attempt {
        let timestamp = unix_now();
        let mut req = self
            .client
            .http()
            .post(url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .body(body.to_vec());
        if let Some(secret) = &self.cfg.secret {
            req = req.header(
                "webhook-signature",
                signature(secret, msg_id, timestamp, body),
            );
        }
        match req.send().await {
            Ok(resp) => classify_response(&resp),
            Err(e) => classify_error(e, self.cfg.timeout_secs),
        }
    }
}

fn classify_response(resp: &reqwest::Response) -> Attempt {
    let status = resp.status().as_u16();
    if resp.status().is_success() {
        return Attempt::Delivered(status);
    }
    if resp.status().is_redirection() {
        return Attempt::GiveUp {
            status: Some(status),
            error: format!("the receiver answered HTTP {status}; redirects are not followed"),
        };
    }
    let error = format!("the receiver answered HTTP {status}");
    if retry::status_is_retryable(status) {
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry::parse_retry_after(v, SystemTime::now()));
        Attempt::Retry {
            status: Some(status),
            error,
            retry_after,
        }
    } else {
        Attempt::GiveUp {
            status: Some(status),
            error,
        }
    }
}

fn classify_error(err: reqwest::Error, timeout_secs: u64) -> Attempt {
    if let Some(why) = resolve::refusal(&err) {
        return Attempt::GiveUp {
            status: None,
            error: format!("webhook.url was refused: {why}"),
        };
    }
    let error = if err.is_timeout() {
        format!("timed out after {timeout_secs} s")
    } else if err.is_connect() {
        "could not connect to the receiver".to_owned()
    } else {
        "the request failed before an answer arrived".to_owned()
    };
    Attempt::Retry {
        status: None,
        error,
        retry_after: None,
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn refused_report(r: UrlRefusal) -> WebhookReport {
    let why = match r {
        UrlRefusal::Address(b) => format!("refers to {}", b.class),
        other => other.to_string(),
    };
    WebhookReport {
        delivered: false,
        attempts: 0,
        last_status: None,
        error: Some(format!("webhook.url {why}, which is not allowed")),
    }
}

#[async_trait::async_trait]
impl Notifier for HttpNotifier {
    async fn notify_within(
        &self,
        hook: &ValidWebhook,
        event: WebhookEvent,
        attempts: Option<u32>,
    ) -> WebhookReport {
        if !hook.events.contains(&event.kind) {
            return WebhookReport {
                delivered: false,
                attempts: 0,
                last_status: None,
                error: None,
            };
        }
        let (id, body) = (event.message_id(), event.body());
        let msg = Message {
            id: &id,
            body: &body,
            job_id: &event.job_id,
            event: event.type_name(),
            max_attempts: attempts,
        };
        self.deliver(&hook.url, msg).await
    }
}
