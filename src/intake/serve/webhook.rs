//! The request-level `webhook` of the endpoint API: when a job reaches a final state, its
//! `/status` body is POSTed to the URL, as RunPod does. Delivered by the worker's one webhook
//! client (`crate::webhook::HttpNotifier`): the SSRF guard (`MERCHGEN_FETCH_ALLOW` opens
//! ranges), no redirects, bounded timeout and retries (connect errors, 429 and 5xx, honouring
//! `Retry-After`), Standard Webhooks signature when `MERCHGEN_WEBHOOK_SECRET` is set. The URL is
//! never logged.

use super::metrics::Metrics;
use super::store::Finished;
use crate::webhook::http::Message;
use crate::webhook::{HttpNotifier, WebhookConfig};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::task::TaskTracker;

/// Posts final status bodies. Cheap to clone (clones share their deliveries in flight).
#[derive(Clone)]
pub struct StatusWebhook {
    notifier: Arc<HttpNotifier>,
    /// Deliveries in flight, so shutdown can wait for them.
    in_flight: TaskTracker,
}

impl StatusWebhook {
    pub fn new(cfg: WebhookConfig) -> Result<Self, reqwest::Error> {
        Ok(StatusWebhook {
            notifier: Arc::new(HttpNotifier::new(cfg)?),
            in_flight: TaskTracker::new(),
        })
    }

    /// Wait up to `grace` for the deliveries in flight (at shutdown: the `CANCELLED` of the
    /// jobs that were waiting goes out before the process exits); how many were left.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.in_flight.close();
        let _ = tokio::time::timeout(grace, self.in_flight.wait()).await;
        self.in_flight.len()
    }

    /// Count a job that reached a final state and send its request's webhook, if it has one.
    pub(crate) fn announce(&self, metrics: &Metrics, finished: Finished) {
        metrics.finished(finished.state);
        if let Some(url) = finished.webhook {
            self.spawn(url, finished.body);
        }
    }

    /// Deliver in the background; failures are logged, never retried past the budget.
    pub fn spawn(&self, url: String, body: Value) {
        let this = self.clone();
        self.in_flight.spawn(async move {
            match this.deliver(&url, &body).await {
                Ok(attempts) => tracing::info!(attempts, "status webhook delivered"),
                Err(error) => tracing::warn!(%error, "status webhook not delivered"),
            }
        });
    }

    /// POST `body` until a 2xx, a final refusal or the attempt budget; Ok(attempts).
    pub(crate) async fn deliver(&self, url: &str, body: &Value) -> Result<u32, String> {
        let job_id = body["id"].as_str().unwrap_or_default();
        let status = body["status"].as_str().unwrap_or_default();
        let id = format!("msg_{job_id}_{status}");
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let msg = Message {
            id: &id,
            body: &bytes,
            job_id,
            event: "status",
            max_attempts: None,
        };
        let report = self.notifier.deliver(url, msg).await;
        match report.delivered {
            true => Ok(report.attempts),
            false => Err(report.error.unwrap_or_else(|| "not delivered".to_owned())),
        }
    }
}
