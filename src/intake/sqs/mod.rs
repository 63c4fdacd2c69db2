//! The SQS door (`merchgen sqs`): a long-polling consumer for GPU hosts, any number of which may
//! share one queue. One job at a time with the next message prefetched, a
//! visibility heartbeat while a message is held, delete only once the worker returns
//! `succeeded` (its `result.json` is stored by then), retryable failures delayed by a growing
//! visibility timeout, terminal failures reported (failure webhook) and deleted, poison messages
//! left to the queue's redrive policy, and claim-check bodies read from S3. On SIGTERM it stops
//! receiving, gives the job in flight the grace period, then cancels it and releases its
//! message at once.
//!
//! The loop itself is the door runtime's (`intake::runtime::pull`); this module owns only what
//! is SQS. A job past its deadline that does not stop is abandoned: its heartbeat stops, so the
//! message returns after its visibility timeout and reaches the dead-letter queue through the
//! redrive policy instead of being held for ever. After a device fault the consumer stops and
//! the process exits 1, so its supervisor starts a fresh worker.

pub mod client;
pub(crate) mod heartbeat;
pub(crate) mod source;

use crate::app::{self, Door};
use crate::backoff::Backoff;
use crate::config::{Config, SqsArgs};
use crate::intake::claim_check::ClaimCheck;
use crate::intake::runtime::pull::{self, PullOptions};
use crate::intake::runtime::RunRules;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use source::{SqsSettings, SqsSource};
use std::sync::Arc;
use std::time::Duration;

/// Run the SQS consumer until SIGTERM/SIGINT. Returns the process exit code.
pub async fn run(config: &Config, args: &SqsArgs) -> i32 {
    if let Err(e) = args.check() {
        eprintln!("merchgen: {e}");
        return 2;
    }
    // Listen for signals before the (long) model load, so a stop during start-up is orderly.
    let stop = crate::shutdown::on_signals();
    crate::metrics::serve_on(config.metrics_addr).await;
    app::prewarm_mockups(config);
    let client = client::build(
        args.sqs_endpoint.as_deref(),
        &args.queue_url,
        args.wait_secs,
    )
    .await;
    let redrive = match check_queue(&client, &args.queue_url).await {
        Ok(redrive) => redrive,
        Err(e) => {
            tracing::error!(error = %e, "the job queue cannot be read");
            return 1;
        }
    };
    let engine = match app::start_engine_unless_none(config).await {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!(error = %e, "the model could not be loaded");
            return 1;
        }
    };
    let worker =
        match app::build_worker(config, engine, Door::Deployed, default_destination(config)) {
            Ok(worker) => worker,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "the worker could not be built");
                return 1;
            }
        };
    let settings = SqsSettings {
        queue_url: args.queue_url.clone(),
        wait_secs: args.wait_secs,
        visibility_secs: args.visibility_secs,
        heartbeat_every: Duration::from_secs(u64::from(args.heartbeat_every_secs())),
    };
    let source = SqsSource::new(
        client,
        settings,
        ClaimCheck::new(config.s3_settings(), config.limits().input_s3_allow),
        redrive.dead_letter_url,
        redrive.max_receives.or(config.sqs_max_receives),
    );
    let opts = PullOptions {
        door: "sqs",
        rules: RunRules::from_config(config, "sqs"),
        depth: config.pipeline_depth.max(1),
        backoff: Backoff::new(
            Duration::from_secs(u64::from(args.retry_base_secs)),
            Duration::from_secs(u64::from(args.retry_max_secs)),
        ),
        receive_backoff: pull::RECEIVE_BACKOFF,
        // A long poll takes up to 20 s: the next message is received while the job runs.
        prefetch: true,
    };
    tracing::info!(
        wait_secs = args.wait_secs,
        visibility_secs = args.visibility_secs,
        "consuming the job queue"
    );
    let worker = Arc::new(worker);
    let report = pull::run(Arc::new(source), worker.clone(), stop, opts).await;
    worker
        .drain_webhooks(Duration::from_secs(config.shutdown_grace_secs))
        .await;
    if report.device_broken {
        tracing::error!(
            "stopped after a device fault; exiting so that a fresh worker replaces this one"
        );
        return 1;
    }
    0
}

/// `MERCHGEN_OUTPUT`, else `inline` (outputs then reach clients only through the webhook).
fn default_destination(config: &Config) -> String {
    config.output.clone().unwrap_or_else(|| {
        tracing::warn!("MERCHGEN_OUTPUT is not set: jobs without `output.destination` return outputs inline (webhook only) and are not idempotent; set it to s3://bucket/prefix");
        "inline".to_owned()
    })
}

/// What the queue's redrive policy says.
#[derive(Debug, Default)]
struct Redrive {
    /// The dead-letter queue's URL (from `deadLetterTargetArn`), when it can be found.
    dead_letter_url: Option<String>,
    /// `maxReceiveCount`: the receive after which the queue dead-letters a message.
    max_receives: Option<u32>,
}

/// Fail fast on a queue that cannot be read; warn when it has no dead-letter queue. Returns
/// what its redrive policy says.
async fn check_queue(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Redrive, String> {
    let attrs = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let attrs = attrs.attributes.unwrap_or_default();
    let Some(policy) = attrs.get(&QueueAttributeName::RedrivePolicy) else {
        tracing::warn!(
            queue = queue_url,
            "the job queue has no RedrivePolicy: poison messages will be received again forever; give it a dead-letter queue"
        );
        return Ok(Redrive::default());
    };
    tracing::info!(queue = queue_url, redrive_policy = %policy, "job queue ready");
    let max_receives = max_receive_count(policy);
    let Some((account, name)) = dead_letter_target(policy) else {
        tracing::warn!(redrive_policy = %policy, "the redrive policy names no dead-letter queue ARN; poison messages are left to it");
        return Ok(Redrive {
            dead_letter_url: None,
            max_receives,
        });
    };
    let dead_letter_url = match client
        .get_queue_url()
        .queue_name(&name)
        .queue_owner_aws_account_id(&account)
        .send()
        .await
    {
        Ok(found) => found.queue_url,
        Err(e) => {
            tracing::warn!(dead_letter_queue = %name, error = %DisplayErrorContext(&e), "the dead-letter queue cannot be found; poison messages are left to the redrive policy");
            None
        }
    };
    Ok(Redrive {
        dead_letter_url,
        max_receives,
    })
}

/// A redrive policy's `maxReceiveCount` (SQS writes it as a string, tools as a number).
fn max_receive_count(policy: &str) -> Option<u32> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    match policy.get("maxReceiveCount")? {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_u64().and_then(|n| u32::try_from(n).ok()),
    }
}

/// (account id, queue name) of a redrive policy's `deadLetterTargetArn`
/// (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
fn dead_letter_target(policy: &str) -> Option<(String, String)> {
    let policy: serde_json::Value = serde_json::from_str(policy).ok()?;
    let arn = policy.get("deadLetterTargetArn")?.as_str()?;
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        ["arn", _, "sqs", _, account, name] if !name.is_empty() => {
            Some(((*account).to_owned(), (*name).to_owned()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_target_reads_the_arn_of_a_redrive_policy() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:jobs-dlq","maxReceiveCount":"5"}"#;
        assert_eq!(
            dead_letter_target(policy),
            Some(("123456789012".into(), "jobs-dlq".into()))
        );
        assert_eq!(dead_letter_target(r#"{"maxReceiveCount":5}"#), None);
        assert_eq!(
            dead_letter_target(r#"{"deadLetterTargetArn":"nope"}"#),
            None
        );
        assert_eq!(dead_letter_target("not json"), None);
        assert_eq!(max_receive_count(policy), Some(5));
        assert_eq!(max_receive_count(r#"{"maxReceiveCount":3}"#), Some(3));
        assert_eq!(max_receive_count(r#"{"deadLetterTargetArn":"x"}"#), None);
    }
}
