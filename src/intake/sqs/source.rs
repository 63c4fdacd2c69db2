//! `SqsSource`: the `JobSource` over one SQS queue. `next` long-polls for one message, starts
//! its visibility heartbeat and decodes its body (claim checks included); `settle` stops the
//! heartbeat, then deletes the message (ack), delays it (retry later), makes it visible at once
//! (release), or leaves it for the queue's redrive policy (dead-letter).

use super::claim_check::ClaimCheck;
use super::heartbeat::{Beat, Heartbeat};
use crate::intake::source::{Delivery, JobSource, Settlement, SourceError};
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest visibility timeout SQS accepts, in seconds (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;

/// Receive settings.
#[derive(Debug, Clone)]
pub struct SqsSettings {
    pub queue_url: String,
    /// Long-poll wait per receive (0 to 20 seconds).
    pub wait_secs: u32,
    /// Visibility given on receive and renewed by each heartbeat.
    pub visibility_secs: u32,
    /// Time between heartbeats.
    pub heartbeat_every: Duration,
}

/// What settling an SQS delivery needs.
#[derive(Debug)]
pub struct SqsTicket {
    receipt_handle: String,
    heartbeat: Heartbeat,
}

/// One SQS queue as a `JobSource`.
pub struct SqsSource {
    client: Client,
    settings: SqsSettings,
    claims: ClaimCheck,
}

impl SqsSource {
    pub fn new(client: Client, settings: SqsSettings, claims: ClaimCheck) -> Self {
        SqsSource {
            client,
            settings,
            claims,
        }
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
        let body = self.claims.decode(body.as_deref()).await;
        Ok(Some(Delivery {
            id,
            attempt,
            received,
            body,
            ticket: SqsTicket {
                receipt_handle,
                heartbeat,
            },
        }))
    }

    async fn settle(
        &self,
        id: &str,
        ticket: SqsTicket,
        settlement: Settlement,
    ) -> Result<(), SourceError> {
        ticket.heartbeat.stop().await;
        let receipt = ticket.receipt_handle.as_str();
        let done = match settlement {
            Settlement::Ack => self.delete(receipt).await,
            Settlement::RetryLater(delay) => self.set_visibility(receipt, delay.as_secs()).await,
            Settlement::Release => self.set_visibility(receipt, 0).await,
            // Untouched, it reappears after its visibility timeout; each receive counts toward
            // the redrive policy's maxReceiveCount, after which SQS moves it to the dead-letter
            // queue.
            Settlement::DeadLetter => Ok(()),
        };
        done.map_err(|detail| SourceError::Settle {
            id: id.to_owned(),
            action: settlement.as_str(),
            detail,
        })
    }
}
