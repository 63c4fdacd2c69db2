//! Signed completion webhooks: Standard Webhooks headers and HMAC signature, only
//! the events a job subscribed to, bounded retries, no redirects, and the same address rules as
//! input fetching.
//!
//! Delivery never fails a job: `notify` returns a `WebhookReport` that the worker records in
//! `result.json`. Secrets and webhook URLs are never logged.

pub(crate) mod event;
pub(crate) mod http;
pub(crate) mod notifier;
pub(crate) mod queue;
pub(crate) mod retry;
pub(crate) mod secret;

pub use event::WebhookEvent;
pub use http::HttpNotifier;
pub use notifier::{Notifier, WebhookConfig};
pub use queue::{OnReport, QueueLimits, WebhookQueue};
pub use secret::Secret;
pub use secret::SecretError;
