//! Webhooks off the critical path: the worker hands each event to a bounded background queue
//! and goes on. Each receiver (the scheme, host and port of a webhook URL) has a queue and a
//! delivery task of its own, so a receiver that hangs delays only its own events, never a job,
//! the engine or another receiver's deliveries. A job's events go to one receiver and keep
//! their order; a progress event still waiting is replaced by the job's next one (a receiver
//! wants the latest step, not every step), the progress events of a job share one retry budget
//! (the configured attempts, once), and a progress event that would go out after its job's
//! `job.completed` / `job.failed` is dropped. A full queue refuses the event (logged and
//! reported to its `on_report`) rather than holding anything up.
//!
//! A job's pipeline slot is released once its outputs and `result.json` are stored; a delivery
//! that fails for good is recorded in `result.json` by its `on_report`. Doors whose process
//! may be frozen or end right after a job (Lambda, `invoke`) wait for `job_settled` first. At
//! shutdown `drain` gives pending deliveries a grace period; what is left is then reported as
//! not delivered (so a completion report lands in `result.json`) without being sent, and logged.

use super::event::WebhookEvent;
use super::notifier::Notifier;
use crate::job::outcome::WebhookReport;
use crate::job::spec::WebhookEventKind;
use crate::job::ValidWebhook;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Called once with what became of a delivery (e.g. to record it in `result.json`).
pub type OnReport =
    Box<dyn FnOnce(WebhookReport) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Jobs per receiver whose completion was sent, remembered to drop late progress events.
const FINISHED_MEMORY: usize = 1024;

/// A receiver's delivery task ends after this long without events (a new one starts with
/// its next event).
const IDLE: Duration = Duration::from_secs(30);

/// Most jobs whose progress budget is remembered (a job's entry goes with its completion).
const BUDGETS: usize = 4096;

struct Queued {
    hook: ValidWebhook,
    event: WebhookEvent,
    on_report: Option<OnReport>,
}

/// How big the queue may grow.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Receivers with events waiting at once; an event for one more is refused.
    pub receivers: usize,
    /// Events waiting per receiver.
    pub per_receiver: usize,
    /// Failed attempts the progress events of one job share, all together (the notifier's
    /// configured attempts): a receiver that keeps failing gets no more progress events.
    pub progress_attempts: u32,
}

/// The queue; share behind an `Arc`.
pub struct WebhookQueue {
    notifier: Arc<dyn Notifier>,
    limits: QueueLimits,
    /// Receivers with a delivery task, by receiver key.
    receivers: Arc<Mutex<HashMap<String, Arc<Receiver>>>>,
    shared: Arc<Shared>,
}

/// One receiver's waiting events; its task delivers them in order.
#[derive(Default)]
struct Receiver {
    waiting: Mutex<VecDeque<Queued>>,
    wake: tokio::sync::Notify,
}

struct Shared {
    /// Events accepted and not yet settled, per job id; `changed` wakes `job_settled` waiters.
    per_job: Mutex<HashMap<String, usize>>,
    changed: tokio::sync::Notify,
    /// Attempts left to the progress events of each job.
    progress_budget: Mutex<HashMap<String, u32>>,
    /// Set once the shutdown grace is over: what is still queued is reported, not sent.
    abandon: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The receiver an URL names: its scheme, host and port (the whole URL when it does not parse;
/// validation refused such URLs long before).
fn receiver_key(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| url.to_owned())
}

impl WebhookQueue {
    /// An empty queue; receivers' delivery tasks start with their first event.
    pub fn start(notifier: Arc<dyn Notifier>, limits: QueueLimits) -> Self {
        WebhookQueue {
            notifier,
            limits,
            receivers: Arc::default(),
            shared: Arc::new(Shared {
                per_job: Mutex::default(),
                changed: tokio::sync::Notify::new(),
                progress_budget: Mutex::default(),
                abandon: AtomicBool::new(false),
            }),
        }
    }

    /// Queue `event` for `hook`; never waits. `false` when the event is refused (its receiver's
    /// queue is full, or too many receivers have events waiting): it is dropped, logged, and
    /// `on_report` told. A progress event may replace its job's waiting one.
    pub fn send(
        &self,
        hook: &ValidWebhook,
        event: WebhookEvent,
        on_report: Option<OnReport>,
    ) -> bool {
        let key = receiver_key(&hook.url);
        let queued = Queued {
            hook: hook.clone(),
            event,
            on_report,
        };
        // The receivers' lock is held while queueing, so a task that finds its queue empty and
        // retires (under the same lock) never strands an event.
        let mut receivers = lock(&self.receivers);
        let receiver = match receivers.get(&key) {
            Some(r) => Arc::clone(r),
            None if receivers.len() >= self.limits.receivers => {
                drop(receivers);
                return self.refuse(queued, "too many webhook receivers have events waiting");
            }
            None => {
                let r = Arc::new(Receiver::default());
                receivers.insert(key.clone(), Arc::clone(&r));
                tokio::spawn(deliver(
                    key,
                    Arc::clone(&r),
                    Arc::clone(&self.receivers),
                    Arc::clone(&self.notifier),
                    Arc::clone(&self.shared),
                    self.limits.progress_attempts,
                ));
                r
            }
        };
        let mut waiting = lock(&receiver.waiting);
        if queued.event.kind == WebhookEventKind::Progress {
            let job = &queued.event.job_id;
            let older = waiting
                .iter_mut()
                .find(|q| q.event.kind == WebhookEventKind::Progress && &q.event.job_id == job);
            if let Some(older) = older {
                // The latest step replaces the one still waiting; the job's count is unchanged.
                *older = queued;
                return true;
            }
        }
        if waiting.len() >= self.limits.per_receiver {
            drop(waiting);
            drop(receivers);
            return self.refuse(queued, "the webhook queue was full");
        }
        self.shared.job_added(&queued.event.job_id);
        waiting.push_back(queued);
        drop(waiting);
        drop(receivers);
        receiver.wake.notify_one();
        true
    }

    fn refuse(&self, queued: Queued, why: &'static str) -> bool {
        tracing::error!(job_id = %queued.event.job_id, event = queued.event.type_name(), reason = why, "this webhook event is not sent");
        if let Some(report) = queued.on_report {
            tokio::spawn(report(not_sent(why)));
        }
        false
    }

    /// Wait until every event queued for `job_id` so far has been delivered or given up, at most
    /// `limit`; true when none is left.
    pub(crate) async fn job_settled(&self, job_id: &str, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.shared.changed.notified();
            if !lock(&self.shared.per_job).contains_key(job_id) {
                return true;
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return false;
            }
        }
    }

    /// Events accepted and not yet settled.
    pub fn pending(&self) -> usize {
        lock(&self.shared.per_job).values().sum()
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
        *lock(&self.per_job).entry(job_id.to_owned()).or_default() += 1;
    }

    fn job_done(&self, job_id: &str) {
        let mut per_job = lock(&self.per_job);
        if let Some(n) = per_job.get_mut(job_id) {
            *n -= 1;
            if *n == 0 {
                per_job.remove(job_id);
            }
        }
        drop(per_job);
        self.changed.notify_waiters();
    }

    /// Attempts left to `job_id`'s progress events.
    fn progress_budget(&self, job_id: &str, full: u32) -> u32 {
        lock(&self.progress_budget)
            .get(job_id)
            .copied()
            .unwrap_or(full)
    }

    fn spend_progress(&self, job_id: &str, full: u32, attempts: u32) {
        let mut budgets = lock(&self.progress_budget);
        if budgets.len() >= BUDGETS && !budgets.contains_key(job_id) {
            budgets.clear();
        }
        let left = budgets.entry(job_id.to_owned()).or_insert(full);
        *left = left.saturating_sub(attempts);
    }

    fn forget_progress(&self, job_id: &str) {
        lock(&self.progress_budget).remove(job_id);
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

/// One receiver's delivery task: its events in order, until it has been idle for `IDLE`.
async fn deliver(
    key: String,
    receiver: Arc<Receiver>,
    receivers: Arc<Mutex<HashMap<String, Arc<Receiver>>>>,
    notifier: Arc<dyn Notifier>,
    shared: Arc<Shared>,
    progress_attempts: u32,
) {
    let mut finished: VecDeque<String> = VecDeque::new();
    loop {
        let next = lock(&receiver.waiting).pop_front();
        let Some(q) = next else {
            let woken = receiver.wake.notified();
            if tokio::time::timeout(IDLE, woken).await.is_err() {
                let mut all = lock(&receivers);
                if lock(&receiver.waiting).is_empty() {
                    all.remove(&key);
                    return;
                }
            }
            continue;
        };
        let job_id = q.event.job_id.clone();
        deliver_one(q, &*notifier, &shared, progress_attempts, &mut finished).await;
        shared.job_done(&job_id);
    }
}

async fn deliver_one(
    q: Queued,
    notifier: &dyn Notifier,
    shared: &Shared,
    progress_attempts: u32,
    finished: &mut VecDeque<String>,
) {
    let kind = q.event.kind;
    let job_id = q.event.job_id.clone();
    let progress = kind == WebhookEventKind::Progress;
    if progress && finished.contains(&job_id) {
        tracing::debug!(%job_id, "progress after the job's completion event: not sent");
        return;
    }
    if shared.abandon.load(Ordering::SeqCst) {
        tracing::warn!(%job_id, event = q.event.type_name(), "not delivered before shutdown");
        if let Some(report) = q.on_report {
            report(not_sent(
                "the worker shut down before the webhook was delivered",
            ))
            .await;
        }
        return;
    }
    if matches!(kind, WebhookEventKind::Completed | WebhookEventKind::Failed) {
        if finished.len() == FINISHED_MEMORY {
            finished.pop_front();
        }
        finished.push_back(job_id.clone());
        shared.forget_progress(&job_id);
    }
    let budget = progress.then(|| shared.progress_budget(&job_id, progress_attempts));
    if budget == Some(0) {
        tracing::debug!(%job_id, "the job's progress events used their retry budget: not sent");
        return;
    }
    let report = notifier.notify_within(&q.hook, q.event, budget).await;
    if progress {
        let failed = report.attempts - u32::from(report.delivered);
        shared.spend_progress(&job_id, progress_attempts, failed);
    }
    if let Some(on_report) = q.on_report {
        on_report(report).await;
    }
}

#[cfg(test)]
mod tests;
