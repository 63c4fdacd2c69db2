//! The request-level `webhook` of the endpoint API: when a job
//! reaches a final state, its `/status` body is POSTed to the URL, as RunPod does. Same client
//! rules as merchgen's own webhooks: the SSRF guard (`MERCHGEN_FETCH_ALLOW` opens ranges), no
//! redirects, bounded timeout and retries (connect errors, 429, 5xx), Standard Webhooks
//! signature when `MERCHGEN_WEBHOOK_SECRET` is set. The URL is never logged.

use crate::backoff::Backoff;
use crate::fetch::guard::{self, AddressPolicy};
use crate::fetch::resolve;
use crate::webhook::event::signature;
use crate::webhook::retry;
use crate::webhook::WebhookConfig;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Posts final status bodies. Cheap to clone.
#[derive(Clone)]
pub struct StatusWebhook {
    cfg: Arc<WebhookConfig>,
    policy: Arc<AddressPolicy>,
    client: reqwest::Client,
}

impl StatusWebhook {
    pub fn new(cfg: WebhookConfig) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(AddressPolicy::new(cfg.allow_cidrs.clone()));
        let opts = resolve::ClientOptions {
            timeout: Duration::from_secs(cfg.timeout_secs),
            connect_timeout: Duration::from_secs(cfg.timeout_secs.min(10)),
            redirect: reqwest::redirect::Policy::none(),
            user_agent: concat!("merchgen/", env!("CARGO_PKG_VERSION")),
        };
        let client = resolve::guarded_client(Arc::clone(&policy), opts)?;
        Ok(StatusWebhook {
            cfg: Arc::new(cfg),
            policy,
            client,
        })
    }

    /// Deliver in the background; failures are logged, never retried past the budget.
    pub fn spawn(&self, url: String, body: Value) {
        let this = self.clone();
        tokio::spawn(async move {
            let job_id = body["id"].as_str().unwrap_or_default().to_owned();
            match this.deliver(&url, &body).await {
                Ok(attempts) => tracing::info!(%job_id, attempts, "status webhook delivered"),
                Err(error) => tracing::warn!(%job_id, %error, "status webhook not delivered"),
            }
        });
    }

    /// POST `body` until a 2xx, a final refusal or the attempt budget; Ok(attempts).
    pub async fn deliver(&self, url: &str, body: &Value) -> Result<u32, String> {
        let url = reqwest::Url::parse(url).map_err(|_| "webhook is not a valid URL".to_owned())?;
        guard::check_url(&url, &self.policy).map_err(|r| format!("webhook URL refused: {r}"))?;
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let msg_id = format!(
            "msg_{}_{}",
            body["id"].as_str().unwrap_or_default(),
            body["status"].as_str().unwrap_or_default()
        );
        let backoff = Backoff {
            base: Duration::from_millis(self.cfg.base_backoff_ms),
            max: Duration::from_millis(self.cfg.max_backoff_ms),
        };
        let attempts = self.cfg.max_attempts.max(1);
        let mut last = String::new();
        for n in 1..=attempts {
            let mut req = self
                .client
                .post(url.clone())
                .header("content-type", "application/json")
                .body(bytes.clone());
            if let Some(secret) = &self.cfg.secret {
                let ts = unix_now();
                req = req
                    .header("webhook-id", &msg_id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signature(secret, &msg_id, ts, &bytes));
            }
            match req.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(n),
                Ok(resp) if !retry::status_is_retryable(resp.status().as_u16()) => {
                    return Err(format!(
                        "the receiver answered HTTP {}",
                        resp.status().as_u16()
                    ))
                }
                Ok(resp) => last = format!("the receiver answered HTTP {}", resp.status().as_u16()),
                Err(e) => match resolve::refusal(&e) {
                    Some(why) => return Err(format!("webhook URL refused: {why}")),
                    None => {
                        last = if e.is_timeout() {
                            "timed out".into()
                        } else {
                            "the request failed".into()
                        }
                    }
                },
            }
            if n < attempts {
                tokio::time::sleep(backoff.jittered(n, None)).await;
            }
        }
        Err(last)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
