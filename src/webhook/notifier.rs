//! The seam of webhook delivery (`Notifier`: `HttpNotifier` for real, scripted ones in the
//! queue's tests) and its settings (`WebhookConfig`).

use super::event::WebhookEvent;
use super::secret::Secret;
use crate::job::outcome::WebhookReport;
use crate::job::ValidWebhook;

/// Something that tells a job's client what happened.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Deliver `event` to `hook` if the job subscribed to its kind, in at most `attempts` tries
    /// (`None`: the configured number; never more). An unsubscribed event is not sent and
    /// reports `attempts: 0` with no error.
    async fn notify_within(
        &self,
        hook: &ValidWebhook,
        event: WebhookEvent,
        attempts: Option<u32>,
    ) -> WebhookReport;

    /// Deliver `event` to `hook` with the configured number of tries (see `notify_within`).
    async fn notify(&self, hook: &ValidWebhook, event: WebhookEvent) -> WebhookReport {
        self.notify_within(hook, event, None).await
    }
}

/// Delivery settings (from the worker's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    /// Signing secret (`MERCHGEN_WEBHOOK_SECRET`); without one, webhooks go unsigned.
    pub secret: Option<Secret>,
    /// Per-attempt timeout, connect to last byte.
    pub timeout_secs: u64,
    /// Attempts in all (first try included).
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt (full jitter below it).
    pub base_backoff_ms: u64,
    /// Largest wait between attempts, `Retry-After` included.
    pub max_backoff_ms: u64,
    /// Address ranges opened despite the SSRF rules (`MERCHGEN_FETCH_ALLOW`).
    pub allow_cidrs: Vec<ipnet::IpNet>,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            secret: None,
            timeout_secs: 10,
            max_attempts: 5,
            base_backoff_ms: 500,
            max_backoff_ms: 30_000,
            allow_cidrs: Vec::new(),
        }
    }
}
