//! The visibility heartbeat: while this worker holds a message (prefetched or running), its
//! visibility timeout is renewed on a timer, so no other worker receives it; if this process
//! dies, the beats stop and the message reappears within one visibility timeout.
//!
//! A heartbeat is stopped and awaited before its message is settled, so a late beat can never
//! undo a release or a retry delay. It never logs the receipt handle.

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::Client;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What one heartbeat renews.
#[derive(Debug, Clone)]
pub(crate) struct Beat {
    pub client: Client,
    pub queue_url: String,
    pub(crate) receipt_handle: String,
    pub message_id: String,
    /// Visibility set on each beat, in seconds.
    pub(crate) visibility_secs: u32,
    /// Time between beats.
    pub every: Duration,
}

/// A running heartbeat; it also stops when dropped (without waiting).
#[derive(Debug)]
pub(crate) struct Heartbeat {
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Start renewing the message's visibility every `beat.every`.
    pub(crate) fn start(beat: Beat) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(beat, stop.clone()));
        Heartbeat {
            stop,
            task: Some(task),
        }
    }

    /// Stop beating and wait for a beat in flight to finish.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn run(beat: Beat, stop: CancellationToken) {
    let mut beats: u32 = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(beat.every) => {}
            () = stop.cancelled() => return,
        }
        // Once started, a beat completes even if `stop` fires: settling waits for it.
        let sent = beat
            .client
            .change_message_visibility()
            .queue_url(&beat.queue_url)
            .receipt_handle(&beat.receipt_handle)
            .visibility_timeout(i32::try_from(beat.visibility_secs).unwrap_or(i32::MAX))
            .send()
            .await;
        beats += 1;
        match sent {
            Ok(_) => {
                tracing::debug!(message_id = %beat.message_id, beats, visibility_secs = beat.visibility_secs, "visibility extended")
            }
            Err(e) => tracing::warn!(
                message_id = %beat.message_id,
                beats,
                error = %DisplayErrorContext(&e),
                "visibility heartbeat failed; another worker may receive this message (its result.json keeps the job from running twice once stored)"
            ),
        }
    }
}
