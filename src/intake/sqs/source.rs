//! `SqsSource`: the `JobSource` over one SQS queue. `next` long-polls for one message, starts
//! its visibility heartbeat and decodes its body (claim checks included); `settle` stops the
//! heartbeat, then deletes the message (ack), delays it (retry later), makes it visible at once
//! (release), moves it to the dead-letter queue (dead-letter: sent there with attributes that
//! say why and where from, then deleted; left for the redrive policy when the worker may not
//! write there), or leaves it to its visibility timeout (abandon).

use super::heartbeat::{Beat, Heartbeat};
use crate::intake::claim_check::ClaimCheck;
use crate::intake::runtime::source::{
    BodyError, Delivery, JobSource, Settled, Settlement, SourceError,
};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest visibility timeout SQS accepts, in seconds (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;

/// Receive settings.
#[derive(Debug, Clone)]
pub(crate) struct SqsSettings {
    pub queue_url: String,
    /// Long-poll wait per receive (0 to 20 seconds).
    pub(crate) wait_secs: u32,
    /// Visibility given on receive and renewed by each heartbeat.
    pub(crate) visibility_secs: u32,
    /// Time between heartbeats.
    pub(crate) heartbeat_every: Duration,
}

/// Message attributes of a message moved to the dead-letter queue.
pub(crate) const DEAD_LETTER_REASON: &str = "merchgen-dead-letter-reason";
pub(crate) const DEAD_LETTER_SOURCE_QUEUE: &str = "merchgen-source-queue";
pub(crate) const DEAD_LETTER_SOURCE_ID: &str = "merchgen-source-message-id";
pub(crate) const DEAD_LETTER_RECEIVES: &str = "merchgen-receive-count";

/// What settling an SQS delivery needs.
#[derive(Debug)]
pub(crate) struct SqsTicket {
    receipt_handle: String,
    heartbeat: Heartbeat,
    /// What the dead-letter copy needs, when the body is not a job.
    poison: Option<Poison>,
}

/// A message that is not a job: its body as received, why, and its receive count.
#[derive(Debug)]
struct Poison {
    body: Option<String>,
    why: String,
    attempt: u32,
}

/// One SQS queue as a `JobSource`.
pub(crate) struct SqsSource {
    client: Client,
    settings: SqsSettings,
    claims: ClaimCheck,
    /// The queue's dead-letter queue (from its redrive policy), when it has one.
    dead_letter_url: Option<String>,
    /// The redrive policy's `maxReceiveCount`: the last receive of a message (`None`: none).
    max_receives: Option<u32>,
}

impl SqsSource {
    pub(crate) fn new(
        client: Client,
        settings: SqsSettings,
        claims: ClaimCheck,
        dead_letter_url: Option<String>,
        max_receives: Option<u32>,
    ) -> Self {
        SqsSource {
            client,
            settings,
            claims,
            dead_letter_url,
            max_receives,
        }
    }

    /// Copy a poison message to the dead-letter queue, then delete it. Without a dead-letter
    /// queue, or when the copy is refused, the message is left untouched, for the redrive policy.
    async fn move_to_dead_letter(
        &self,
        id: &str,
        receipt: &str,
        poison: Option<&Poison>,
    ) -> Result<(), String> {
        let (Some(dlq), Some(poison)) = (&self.dead_letter_url, poison) else {
            return Ok(());
        };
        let attr = |value: String| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type and value are set")
        };
        let reason = poison.why.clone();
        let body = match poison.body.as_deref() {
            Some(b) if !b.is_empty() => b.to_owned(),
            _ => "(empty body)".to_owned(),
        };
        let mut send = self
            .client
            .send_message()
            .queue_url(dlq)
            .message_body(body)
            .message_attributes(DEAD_LETTER_REASON, attr(reason))
            .message_attributes(
                DEAD_LETTER_SOURCE_QUEUE,
                attr(self.settings.queue_url.clone()),
            )
            .message_attributes(DEAD_LETTER_SOURCE_ID, attr(id.to_owned()))
            .message_attributes(DEAD_LETTER_RECEIVES, attr(poison.attempt.to_string()));
        if dlq.ends_with(".fifo") {
            send = send
                .message_group_id("merchgen-dead-letters")
                .message_deduplication_id(id);
        }
        if let Err(e) = send.send().await {
            tracing::warn!(error = %DisplayErrorContext(&e), "could not send the poison message to the dead-letter queue; leaving it to the redrive policy");
            return Ok(());
        }
        self.delete(receipt).await?;
        tracing::info!(dead_letter_queue = %dlq, "poison message moved to the dead-letter queue");
        Ok(())
    }

    async fn set_visibility(&self, receipt: &str, secs: u64) -> Result<(), String> {
        self.client
            .change_message_visibility()
            .queue_url(&self.settings.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(secs.min(MAX_VISIBILITY_SECS) as i32)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }

    async fn delete(&self, receipt: &str) -> Result<(), String> {
        self.client
            .delete_message()
            .queue_url(&self.settings.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }
}

#[async_trait::async_trait]
impl JobSource for SqsSource {
    type Ticket = SqsTicket;

    async fn next(
        &self,
        stop: &CancellationToken,
    ) -> Result<Option<Delivery<SqsTicket>>, SourceError> {
        let receive = self
            .client
            .receive_message()
            .queue_url(&self.settings.queue_url)
            .max_number_of_messages(1)
            .wait_time_seconds(self.settings.wait_secs as i32)
            .visibility_timeout(self.settings.visibility_secs as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let out = tokio::select! {
            out = receive => out.map_err(|e| SourceError::Receive(DisplayErrorContext(&e).to_string()))?,
            // A message received by an abandoned poll is not lost: it reappears after its
            // visibility timeout.
            () = stop.cancelled() => return Ok(None),
        };
        let Some(message) = out.messages.unwrap_or_default().into_iter().next() else {
            return Ok(None);
        };
        let received = Instant::now();
        let Message {
            message_id,
            receipt_handle,
            body,
            attributes,
            ..
        } = message;
        let (Some(id), Some(receipt_handle)) = (message_id, receipt_handle) else {
            return Err(SourceError::Receive(
                "a message came without id or receipt handle".into(),
            ));
        };
        let heartbeat = Heartbeat::start(Beat {
            client: self.client.clone(),
            queue_url: self.settings.queue_url.clone(),
            receipt_handle: receipt_handle.clone(),
            message_id: id.clone(),
            visibility_secs: self.settings.visibility_secs,
            every: self.settings.heartbeat_every,
        });
        let attempt = attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        tracing::debug!(message_id = %id, attempt, "received");
        let decoded = self.claims.decode(body.as_deref()).await;
        let poison = match &decoded {
            Err(BodyError::Poison(why)) => Some(Poison {
                body,
                why: why.clone(),
                attempt,
            }),
            _ => None,
        };
        Ok(Some(Delivery {
            id,
            attempt,
            received,
            body: decoded,
            ticket: SqsTicket {
                receipt_handle,
                heartbeat,
                poison,
            },
        }))
    }

    /// The queue hands a message out again until its redrive policy's `maxReceiveCount` (and
    /// forever without one).
    fn settles_after_webhooks(&self) -> bool {
        true
    }

    fn retries_failure(&self, attempt: u32) -> bool {
        self.max_receives.is_none_or(|max| attempt < max)
    }

    async fn settle(
        &self,
        id: &str,
        ticket: SqsTicket,
        settled: Settled,
    ) -> Result<(), SourceError> {
        let settlement = settled.settlement;
        let SqsTicket {
            receipt_handle,
            heartbeat,
            poison,
        } = ticket;
        heartbeat.stop().await;
        let receipt = receipt_handle.as_str();
        let done = match settlement {
            Settlement::Ack => self.delete(receipt).await,
            Settlement::RetryLater(delay) => self.set_visibility(receipt, delay.as_secs()).await,
            Settlement::Release => self.set_visibility(receipt, 0).await,
            // Moved to the dead-letter queue at once; failing that, untouched: it reappears
            // after its visibility timeout, and each receive counts toward the redrive policy's
            // maxReceiveCount, after which SQS moves it there.
            Settlement::DeadLetter => self.move_to_dead_letter(id, receipt, poison.as_ref()).await,
            // Given up after its deadline: with the heartbeat stopped it comes back after its
            // visibility timeout, counted toward maxReceiveCount like any receive.
            Settlement::Abandon => Ok(()),
        };
        done.map_err(|detail| SourceError::Settle {
            id: id.to_owned(),
            action: settlement.as_str(),
            detail,
        })
    }
}
