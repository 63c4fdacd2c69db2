//! Jobs that fail validation. They never run, but their client is still told: when the body
//! names a usable webhook on its own, the `job.failed` event goes out (queue doors acknowledge
//! such jobs, so this is the only word the client gets).

use super::Worker;
use crate::error::JobError;
use crate::job::outcome::JobOutcome;
use crate::job::spec::WebhookSpec;
use crate::job::validate;
use crate::job::ValidWebhook;
use crate::net::guard::AddressPolicy;
use crate::webhook::WebhookEvent;
use serde_json::Value;

impl Worker {
    /// The failed outcome of a job rejected by validation, its failure webhook sent if possible.
    pub(super) async fn reject(&self, id: String, error: JobError, body: &Value) -> JobOutcome {
        tracing::warn!(job_id = %id, code = %error.code, field = error.field.as_deref(), "job rejected");
        let outcome = JobOutcome::failed(id, error);
        if let Some(hook) = body
            .get("webhook")
            .and_then(|w| usable_webhook(w, &self.parts.limits.addresses))
        {
            let event = WebhookEvent::finished(&outcome);
            self.parts.webhooks.send(&hook, event, None);
        }
        outcome
    }
}

/// A job's `webhook` when it is valid by itself (the rest of the job may not be).
pub(super) fn usable_webhook(webhook: &Value, policy: &AddressPolicy) -> Option<ValidWebhook> {
    let spec: WebhookSpec = serde_json::from_value(webhook.clone()).ok()?;
    validate::validate_webhook(&spec, policy).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usable_webhook_of(body: &Value) -> Option<ValidWebhook> {
        usable_webhook(body.get("webhook")?, &AddressPolicy::default())
    }

    #[test]
    fn usable_webhook_to_a_forbidden_literal_address_is_not_used() {
        let body = json!({"webhook": {"url": "http://169.254.169.254/latest/meta-data"}});
        assert!(usable_webhook_of(&body).is_none());
    }

    #[test]
    fn usable_webhook_needs_a_valid_webhook_only() {
        let body = json!({"prompt": 7, "webhook": {"url": "https://shop.example/h"}});
        assert_eq!(
            usable_webhook_of(&body).unwrap().url,
            "https://shop.example/h"
        );
        assert!(usable_webhook_of(&json!({"webhook": {"url": "ftp://x"}})).is_none());
        assert!(
            usable_webhook_of(&json!({"webhook": {"url": "https://a.example", "x": 1}})).is_none()
        );
        assert!(usable_webhook_of(&json!({"prompt": "x"})).is_none());
        assert!(usable_webhook_of(&json!("not an object")).is_none());
    }
}
