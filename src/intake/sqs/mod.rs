//! The SQS door (`merchgen sqs`): a long-polling consumer for GPU hosts, any number of which may
//! share one queue (DESIGN §11). One job at a time with the next message prefetched, a
//! visibility heartbeat while a message is held, delete only once the worker returns
//! `succeeded` (its `result.json` is stored by then), retryable failures delayed by a growing
//! visibility timeout, terminal failures reported (failure webhook) and deleted, poison messages
//! left to the queue's redrive policy, and claim-check bodies read from S3. On SIGTERM it stops
//! receiving, gives the job in flight the grace period, then cancels it and releases its
//! message at once.
//!
//! The loop itself is generic (`intake::pull`); this module owns only what is SQS.

pub mod claim_check;
pub mod client;
pub mod heartbeat;
pub mod source;

use crate::app::{self, Door};
use crate::config::{Config, SqsArgs};
use crate::intake::pull::{self, PullOptions};
use crate::intake::source::Backoff;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use claim_check::ClaimCheck;
use source::{SqsSettings, SqsSource};
use std::sync::Arc;
use std::time::Duration;

/// After the grace period a job is cancelled; this long it may take to stop before its message
/// is released regardless.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// Run the SQS consumer until SIGTERM/SIGINT. Returns the process exit code.
pub async fn run(config: &Config, args: &SqsArgs) -> i32 {
    if let Err(e) = args.check() {
        eprintln!("merchgen: {e}");
        return 2;
    }
    // Listen for signals before the (long) model load, so a stop during start-up is orderly.
    let stop = crate::shutdown::on_signals();
    let client = client::build(
        args.sqs_endpoint.as_deref(),
        &args.queue_url,
        args.wait_secs,
    )
    .await;
    if let Err(e) = check_queue(&client, &args.queue_url).await {
        tracing::error!(error = %e, "the job queue cannot be read");
        return 1;
    }
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
    let source = SqsSource::new(client, settings, ClaimCheck::new(config.output_config()));
    let opts = PullOptions {
        door: "sqs",
        grace: Duration::from_secs(config.shutdown_grace_secs),
        wind_down: WIND_DOWN,
        backoff: Backoff {
            base: Duration::from_secs(u64::from(args.retry_base_secs)),
            max: Duration::from_secs(u64::from(args.retry_max_secs)),
        },
    };
    tracing::info!(
        wait_secs = args.wait_secs,
        visibility_secs = args.visibility_secs,
        "consuming the job queue"
    );
    pull::run(Arc::new(source), Arc::new(worker), stop, opts).await;
    0
}

/// `MERCHGEN_OUTPUT`, else `inline` (outputs then reach clients only through the webhook).
fn default_destination(config: &Config) -> String {
    config.output.clone().unwrap_or_else(|| {
        tracing::warn!("MERCHGEN_OUTPUT is not set: jobs without `output.destination` return outputs inline (webhook only) and are not idempotent; set it to s3://bucket/prefix");
        "inline".to_owned()
    })
}

/// Fail fast on a queue that cannot be read; warn when it has no dead-letter queue.
async fn check_queue(client: &aws_sdk_sqs::Client, queue_url: &str) -> Result<(), String> {
    let attrs = client
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| DisplayErrorContext(&e).to_string())?;
    let attrs = attrs.attributes.unwrap_or_default();
    match attrs.get(&QueueAttributeName::RedrivePolicy) {
        Some(policy) => tracing::info!(queue = queue_url, redrive_policy = %policy, "job queue ready"),
        None => tracing::warn!(
            queue = queue_url,
            "the job queue has no RedrivePolicy: poison messages will be received again forever; give it a dead-letter queue"
        ),
    }
    Ok(())
}
