//! Webhooks off the critical path: the worker hands each event to a bounded background queue
//! and goes on; lanes deliver them with the notifier's retries. Events of one job keep their
//! order (a job always maps to the same lane), and a progress event that would go out after its
//! job's `job.completed` / `job.failed` is dropped. A full queue refuses the event (logged and
//! reported to its `on_report`) rather than holding up the engine. The doors settle a job (ack,
//! post its result) only once its events are delivered (`job_settled`), so a crash never loses a
//! completion webhook; with jobs in flight the engine meanwhile generates the next one. At
//! shutdown `drain` gives
//! pending deliveries a grace period; what is left is then reported as not delivered (so a
//! completion report lands in `result.json`) without being sent, and logged.

use super::event::WebhookEvent;
use super::notifier::Notifier;
use crate::job::outcome::WebhookReport;
use crate::job::ValidWebhook;
use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Called once with what became of a delivery (e.g. to record it in `result.json`).
pub type OnReport =
    Box<dyn FnOnce(WebhookReport) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Jobs per lane whose completion was sent, remembered to drop late progress events.
const FINISHED_MEMORY: usize = 1024;

struct Queued {
    hook: ValidWebhook,
    event: WebhookEvent,
    on_report: Option<OnReport>,
}

/// The queue; share behind an `Arc`.
pub struct WebhookQueue {
    lanes: Vec<mpsc::Sender<Queued>>,
    shared: Arc<Shared>,
}

struct Shared {
    /// Events accepted and not yet settled, per job id; `changed` wakes `job_settled` waiters.
    per_job: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    changed: tokio::sync::Notify,
    /// Set once the shutdown grace is over: what is still queued is reported, not sent.
    abandon: AtomicBool,
}

impl WebhookQueue {
    /// `lanes` delivery tasks, each holding at most `capacity` waiting events.
    pub fn start(notifier: Arc<dyn Notifier>, lanes: usize, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            per_job: Default::default(),
            changed: tokio::sync::Notify::new(),
            abandon: AtomicBool::new(false),
        });
        let lanes = (0..lanes.max(1))
            .map(|_| {
                let (tx, rx) = mpsc::channel(capacity.max(1));
                tokio::spawn(lane(rx, notifier.clone(), shared.clone()));
                tx
            })
            .collect();
        WebhookQueue { lanes, shared }
    }

    /// Queue `event` for `hook`; never waits. `false` when the queue is full (the event is
    /// dropped, logged, and `on_report` told).
    pub fn send(
        &self,
        hook: &ValidWebhook,
        event: WebhookEvent,
        on_report: Option<OnReport>,
    ) -> bool {
        let mut h = DefaultHasher::new();
        event.job_id.hash(&mut h);
        let lane = &self.lanes[(h.finish() as usize) % self.lanes.len()];
        self.shared.job_added(&event.job_id);
        let queued = Queued {
            hook: hook.clone(),
            event,
            on_report,
        };
        match lane.try_send(queued) {
            Ok(()) => true,
            Err(e) => {
                let queued = match e {
                    mpsc::error::TrySendError::Full(q) | mpsc::error::TrySendError::Closed(q) => q,
                };
                self.shared.job_done(&queued.event.job_id);
                tracing::error!(job_id = %queued.event.job_id, event = queued.event.type_name(), "the webhook queue is full: this event is not sent");
                if let Some(report) = queued.on_report {
                    tokio::spawn(report(not_sent("the webhook queue was full")));
                }
                false
            }
        }
    }

    /// Wait until every event queued for `job_id` so far has been delivered or given up, at most
    /// `limit`; true when none is left. The doors settle a job after this, so a crash after the
    /// settlement never loses its completion webhook (at-least-once, as before the queue).
    pub(crate) async fn job_settled(&self, job_id: &str, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if !self
                .shared
                .per_job
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(job_id)
            {
                return true;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return false;
            }
        }
    }

    /// Events accepted and not yet settled.
    pub fn pending(&self) -> usize {
        self.shared
            .per_job
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// Wait up to `grace` for pending deliveries; then report the rest as not delivered
    /// (waiting up to a few seconds for that). Returns how many were left after the grace.
    pub(crate) async fn drain(&self, grace: Duration) -> usize {
        let until = Instant::now() + grace;
        while self.pending() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.pending();
        if left == 0 {
            return 0;
        }
        tracing::warn!(
            left,
            grace_secs = grace.as_secs(),
            "shutdown: webhook deliveries still pending after the grace period are recorded as not delivered"
        );
        self.shared.abandon.store(true, Ordering::SeqCst);
        let until = Instant::now() + Duration::from_secs(3);
        while self.pending() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        left
    }
}

impl Shared {
    fn job_added(&self, job_id: &str) {
        *self
            .per_job
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(job_id.to_owned())
            .or_default() += 1;
    }

    fn job_done(&self, job_id: &str) {
        let mut per_job = self.per_job.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per_job.get_mut(job_id) {
            *n -= 1;
            if *n == 0 {
                per_job.remove(job_id);
            }
        }
        drop(per_job);
        self.changed.notify_waiters();
    }
}

fn not_sent(why: &str) -> WebhookReport {
    WebhookReport {
        delivered: false,
        attempts: 0,
        last_status: None,
        error: Some(why.to_owned()),
    }
}

async fn lane(mut rx: mpsc::Receiver<Queued>, notifier: Arc<dyn Notifier>, shared: Arc<Shared>) {
    let mut finished: VecDeque<String> = VecDeque::new();
    while let Some(q) = rx.recv().await {
        let kind = q.event.type_name();
        let job_id = q.event.job_id.clone();
        if kind == "job.progress" && finished.contains(&job_id) {
            tracing::debug!(%job_id, "progress after the job's completion event: not sent");
        } else if shared.abandon.load(Ordering::SeqCst) {
            tracing::warn!(%job_id, event = kind, "not delivered before shutdown");
            if let Some(report) = q.on_report {
                report(not_sent(
                    "the worker shut down before the webhook was delivered",
                ))
                .await;
            }
        } else {
            if matches!(kind, "job.completed" | "job.failed") {
                if finished.len() == FINISHED_MEMORY {
                    finished.pop_front();
                }
                finished.push_back(job_id.clone());
            }
            let report = notifier.notify(&q.hook, q.event).await;
            if let Some(on_report) = q.on_report {
                on_report(report).await;
            }
        }
        shared.job_done(&job_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::outcome::JobOutcome;
    use crate::job::spec::WebhookEventKind;
    use std::sync::Mutex;

    /// Records what it was asked to send; each delivery takes `delay`.
    struct Recorder {
        sent: Mutex<Vec<(String, String)>>,
        delay: Duration,
    }

    #[async_trait::async_trait]
    impl Notifier for Recorder {
        async fn notify(&self, _: &ValidWebhook, event: WebhookEvent) -> WebhookReport {
            tokio::time::sleep(self.delay).await;
            self.sent
                .lock()
                .unwrap()
                .push((event.job_id.clone(), event.type_name().to_owned()));
            WebhookReport {
                delivered: true,
                attempts: 1,
                last_status: Some(200),
                error: None,
            }
        }
    }

    fn hook() -> ValidWebhook {
        ValidWebhook {
            url: "https://shop.example/hooks".into(),
            events: vec![WebhookEventKind::Completed, WebhookEventKind::Progress],
        }
    }

    fn recorder(delay: Duration) -> Arc<Recorder> {
        Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            delay,
        })
    }

    #[tokio::test]
    async fn events_of_a_job_keep_their_order_and_late_progress_is_dropped() {
        let rec = recorder(Duration::from_millis(5));
        let queue = WebhookQueue::start(rec.clone(), 4, 16);
        let done = JobOutcome::started("j");
        assert!(queue.send(&hook(), WebhookEvent::started("j"), None));
        assert!(queue.send(&hook(), WebhookEvent::progress("j", 1, 2), None));
        assert!(queue.send(&hook(), WebhookEvent::finished(&done), None));
        assert!(queue.send(&hook(), WebhookEvent::progress("j", 2, 2), None));
        assert_eq!(queue.drain(Duration::from_secs(5)).await, 0);
        let sent: Vec<String> = rec
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, k)| k.clone())
            .collect();
        assert_eq!(sent, ["job.started", "job.progress", "job.completed"]);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_without_waiting_and_reports_it() {
        let rec = recorder(Duration::from_secs(30));
        let queue = WebhookQueue::start(rec, 1, 1);
        let reports = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let mut accepted = 0;
        for i in 0..4 {
            let reports = reports.clone();
            let on_report: OnReport =
                Box::new(move |r| Box::pin(async move { reports.lock().unwrap().push(r) }));
            accepted += usize::from(queue.send(
                &hook(),
                WebhookEvent::started(&format!("j{i}")),
                Some(on_report),
            ));
        }
        assert!(started.elapsed() < Duration::from_secs(1), "never waits");
        assert!(accepted < 4, "bounded");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(reports.lock().unwrap().iter().all(|r| !r.delivered));
        assert!(!reports.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn drain_records_what_the_grace_period_left_as_not_delivered() {
        let rec = recorder(Duration::from_millis(300));
        let queue = WebhookQueue::start(rec, 1, 16);
        let reports = Arc::new(Mutex::new(Vec::new()));
        for i in 0..3 {
            let reports = reports.clone();
            let on_report: OnReport =
                Box::new(move |r| Box::pin(async move { reports.lock().unwrap().push(r) }));
            queue.send(
                &hook(),
                WebhookEvent::started(&format!("j{i}")),
                Some(on_report),
            );
        }
        let left = queue.drain(Duration::from_millis(100)).await;
        assert!(left >= 2, "{left}");
        assert_eq!(queue.pending(), 0);
        let reports = reports.lock().unwrap();
        assert_eq!(reports.len(), 3);
        assert!(reports[0].delivered, "the delivery in flight completes");
        assert!(
            !reports[2].delivered && reports[2].error.as_deref().unwrap().contains("shut down")
        );
    }

    #[tokio::test]
    async fn job_settled_waits_for_that_jobs_events_only() {
        let rec = recorder(Duration::from_millis(100));
        let queue = WebhookQueue::start(rec.clone(), 4, 16);
        assert!(queue.job_settled("none", Duration::ZERO).await);
        queue.send(&hook(), WebhookEvent::started("j"), None);
        queue.send(
            &hook(),
            WebhookEvent::finished(&JobOutcome::started("j")),
            None,
        );
        assert!(
            !queue.job_settled("j", Duration::from_millis(10)).await,
            "still on its way"
        );
        assert!(queue.job_settled("j", Duration::from_secs(5)).await);
        assert_eq!(rec.sent.lock().unwrap().len(), 2, "both delivered by then");
    }
}
