//! The heartbeat: `GET {ping}&job_id=<ids in flight>&runpod_version=`
//! right away, then every `RUNPOD_PING_INTERVAL` ms, until shutdown. The answer is ignored; a
//! failed ping is logged and the next one goes out on time.

use super::client::Answer;
use super::inflight::InFlight;
use super::settings::Settings;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Start the heartbeat task (a no-op task when heartbeats are off).
pub(crate) fn spawn(
    settings: Arc<Settings>,
    inflight: InFlight,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if !settings.heartbeat {
            tracing::info!("no heartbeat: RUNPOD_AI_API_KEY, RUNPOD_POD_ID and RUNPOD_WEBHOOK_PING are not all set");
            return;
        }
        let mut tick = tokio::time::interval(settings.ping_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let ids = inflight.ids();
            let Some(url) = settings.urls.ping(&ids) else {
                return;
            };
            match settings.client.get(&url, settings.ping_interval * 2).await {
                Answer::Ok { status, .. } => {
                    tracing::debug!(status, jobs = ids.len(), "heartbeat sent")
                }
                Answer::Status(status) => {
                    tracing::warn!(status, "heartbeat answered with an error status")
                }
                Answer::TimedOut => tracing::warn!("heartbeat timed out"),
                Answer::Failed(error) => tracing::warn!(%error, "heartbeat failed"),
            }
        }
    })
}

/// Report a failed start-up check (as the SDK's fitness checks do) before exiting.
pub(crate) async fn report_unhealthy(settings: &Settings, check: &str, reason: &str) {
    if !settings.heartbeat {
        return;
    }
    if let Some(url) = settings.urls.unhealthy(check, reason) {
        let _ = settings
            .client
            .get(&url, std::time::Duration::from_secs(2))
            .await;
    }
}
