//! The local endpoint's jobs: a bounded queue of waiting ids and a table of records, with the
//! RunPod state machine (`IN_QUEUE` -> `IN_PROGRESS` -> `COMPLETED` | `FAILED` | `TIMED_OUT`,
//! `CANCELLED` from either of the first two), `policy.ttl` expiry (the job is then gone:
//! `status` answers 404, as RunPod does) and a retention time for finished jobs. No I/O.

use super::record::{Record, State, Submission};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Most records kept, finished ones dropped oldest first beyond it (memory stays bounded).
const MAX_RECORDS: usize = 10_000;

/// `run` refused: the queue is at capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the queue is full ({0} jobs waiting); try again later")]
pub(crate) struct QueueFull(pub usize);

/// A job the runner took off the queue.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: String,
    pub input: Value,
    pub s3_config: Option<Value>,
    pub cancel: Arc<AtomicBool>,
    /// When the runner cancels it: start + execution timeout, or the ttl, whichever is first.
    pub deadline: Instant,
}

/// A job that reached a final state: its status body, for the webhook and the metrics.
#[derive(Debug, Clone)]
pub struct Finished {
    pub state: State,
    pub body: Value,
    pub webhook: Option<String>,
}

/// Jobs waiting and in progress right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub(crate) in_queue: usize,
    pub(crate) in_progress: usize,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Record>,
    queue: VecDeque<String>,
}

/// The job table. Share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    /// Woken on every state change (runsync waiters).
    changed: Notify,
    /// Woken when a job is queued (the runner).
    work: Notify,
    capacity: usize,
    retention: Duration,
    expired: AtomicU64,
}

impl Store {
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Store {
            inner: Mutex::default(),
            changed: Notify::new(),
            work: Notify::new(),
            capacity: capacity.max(1),
            retention,
            expired: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a job under `id`; refused when the queue is full.
    pub(crate) fn submit(&self, id: String, submission: Submission) -> Result<(), QueueFull> {
        let now = Instant::now();
        let mut inner = self.lock();
        prune(&mut inner, now, self.retention, &self.expired);
        if inner.queue.len() >= self.capacity {
            return Err(QueueFull(inner.queue.len()));
        }
        inner.queue.push_back(id.clone());
        inner
            .records
            .insert(id.clone(), Record::new(id, submission, now));
        drop(inner);
        self.work.notify_one();
        Ok(())
    }

    /// The status body of a job, `None` when unknown or expired.
    pub fn status(&self, id: &str) -> Option<Value> {
        let now = Instant::now();
        let mut inner = self.lock();
        prune(&mut inner, now, self.retention, &self.expired);
        inner.records.get(id).map(|r| r.status_body(now))
    }

    /// Cancel a job: a waiting one leaves the queue, a running one stops between denoising
    /// steps; a finished one is left as it is. Returns its status and, when it changed, the
    /// final state to announce.
    pub fn cancel(&self, id: &str) -> Option<(Value, Option<Finished>)> {
        let now = Instant::now();
        let mut inner = self.lock();
        prune(&mut inner, now, self.retention, &self.expired);
        let was_queued = inner.records.get(id)?.state == State::InQueue;
        if was_queued {
            inner.queue.retain(|q| q != id);
        }
        let record = inner.records.get_mut(id)?;
        let finished = (!record.state.terminal()).then(|| {
            record.cancel.store(true, Ordering::Relaxed);
            conclude(record, State::Cancelled, None, None, now)
        });
        let body = record.status_body(now);
        drop(inner);
        self.changed.notify_waiters();
        Some((body, finished))
    }

    /// Cancel every waiting job; returns them.
    pub fn purge(&self) -> Vec<Finished> {
        let now = Instant::now();
        let mut inner = self.lock();
        let ids: Vec<String> = inner.queue.drain(..).collect();
        let mut finished = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(r) = inner.records.get_mut(id) {
                finished.push(conclude(r, State::Cancelled, None, None, now));
            }
        }
        drop(inner);
        self.changed.notify_waiters();
        finished
    }

    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        let in_progress = inner
            .records
            .values()
            .filter(|r| r.state == State::InProgress)
            .count();
        Counts {
            in_queue: inner.queue.len(),
            in_progress,
        }
    }

    /// Jobs dropped because their ttl ran out.
    pub fn expired(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }

    /// Take the next waiting job, marking it `IN_PROGRESS`.
    pub fn claim(&self) -> Option<Claimed> {
        let now = Instant::now();
        let mut inner = self.lock();
        prune(&mut inner, now, self.retention, &self.expired);
        while let Some(id) = inner.queue.pop_front() {
            let Some(record) = inner.records.get_mut(&id) else {
                continue;
            };
            record.state = State::InProgress;
            record.started = Some(now);
            let deadline = (now + record.submission.execution_timeout).min(record.expires);
            let claimed = Claimed {
                id,
                input: record.submission.input.clone(),
                s3_config: record.submission.s3_config.clone(),
                cancel: record.cancel.clone(),
                deadline,
            };
            drop(inner);
            self.changed.notify_waiters();
            return Some(claimed);
        }
        None
    }

    /// Wait for the next job; `None` once `stop` fires.
    pub async fn next(&self, stop: &CancellationToken) -> Option<Claimed> {
        loop {
            if let Some(claimed) = self.claim() {
                return Some(claimed);
            }
            tokio::select! {
                _ = stop.cancelled() => return None,
                _ = self.work.notified() => {}
                // Expiry of waiting jobs needs no wake-up; this only bounds the wait.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Record the latest progress of a running job (shown as `output` while `IN_PROGRESS`).
    pub(crate) fn set_progress(&self, id: &str, progress: Value) {
        if let Some(r) = self
            .lock()
            .records
            .get_mut(id)
            .filter(|r| r.state == State::InProgress)
        {
            r.output = Some(progress);
        }
        self.changed.notify_waiters();
    }

    /// Conclude a running job. A job cancelled (or expired) meanwhile keeps that fate.
    pub fn finish(
        &self,
        id: &str,
        state: State,
        output: Option<Value>,
        error: Option<String>,
    ) -> Option<Finished> {
        let now = Instant::now();
        let mut inner = self.lock();
        let record = inner
            .records
            .get_mut(id)
            .filter(|r| r.state == State::InProgress)?;
        let finished = conclude(record, state, output, error, now);
        drop(inner);
        self.changed.notify_waiters();
        Some(finished)
    }

    /// Wait until the job is final or `until`, then return its status (`None`: gone).
    pub(crate) async fn wait_final(
        &self,
        id: &str,
        until: Instant,
        stop: &CancellationToken,
    ) -> Option<Value> {
        loop {
            let changed = self.changed.notified();
            let body = self.status(id)?;
            let done = body["status"]
                .as_str()
                .is_some_and(|s| !matches!(s, "IN_QUEUE" | "IN_PROGRESS"));
            if done || Instant::now() >= until || stop.is_cancelled() {
                return Some(body);
            }
            tokio::select! {
                _ = changed => {}
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep_until(until.into()) => {}
                // Bounds each wait, so a ttl expiry (no notification) is seen.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

fn conclude(
    record: &mut Record,
    state: State,
    output: Option<Value>,
    error: Option<String>,
    now: Instant,
) -> Finished {
    record.state = state;
    record.finished = Some(now);
    record.output = output;
    record.error = error;
    Finished {
        state,
        body: record.status_body(now),
        webhook: record.submission.webhook.clone(),
    }
}

/// Drop expired jobs (cancelling a running one) and finished jobs past retention.
fn prune(inner: &mut Inner, now: Instant, retention: Duration, expired: &AtomicU64) {
    let mut gone = Vec::new();
    for r in inner.records.values() {
        let stale = r
            .finished
            .is_some_and(|f| now.duration_since(f) >= retention);
        if now >= r.expires || stale {
            if !r.state.terminal() {
                r.cancel.store(true, Ordering::Relaxed);
                expired.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job_id = %r.id, state = r.state.as_str(), "job ttl ran out; it is dropped");
            }
            gone.push(r.id.clone());
        }
    }
    if inner.records.len() - gone.len() > MAX_RECORDS {
        let mut finished: Vec<(&String, Instant)> = inner
            .records
            .values()
            .filter_map(|r| r.finished.map(|f| (&r.id, f)))
            .collect();
        finished.sort_by_key(|(_, f)| *f);
        let excess = inner.records.len() - gone.len() - MAX_RECORDS;
        gone.extend(finished.into_iter().take(excess).map(|(id, _)| id.clone()));
    }
    if gone.is_empty() {
        return;
    }
    for id in &gone {
        inner.records.remove(id);
    }
    inner.queue.retain(|id| inner.records.contains_key(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sub(ttl_ms: u64) -> Submission {
        Submission {
            input: json!({"prompt": "x"}),
            webhook: Some("http://hook".into()),
            s3_config: None,
            execution_timeout: Duration::from_secs(60),
            ttl: Duration::from_millis(ttl_ms),
        }
    }

    #[test]
    fn queue_is_bounded_and_claims_in_order() {
        let s = Store::new(2, Duration::from_secs(60));
        s.submit("a".into(), sub(60_000)).unwrap();
        s.submit("b".into(), sub(60_000)).unwrap();
        assert_eq!(s.submit("c".into(), sub(60_000)), Err(QueueFull(2)));
        assert_eq!(s.claim().unwrap().id, "a");
        assert_eq!(
            s.counts(),
            Counts {
                in_queue: 1,
                in_progress: 1
            }
        );
        assert_eq!(s.status("a").unwrap()["status"], "IN_PROGRESS");
        let f = s
            .finish("a", State::Completed, Some(json!({"ok": true})), None)
            .unwrap();
        assert_eq!(
            (f.body["status"].as_str(), f.webhook.as_deref()),
            (Some("COMPLETED"), Some("http://hook"))
        );
        assert!(
            s.finish("a", State::Failed, None, None).is_none(),
            "final states are final"
        );
    }

    #[test]
    fn cancel_queued_and_running_and_purge() {
        let s = Store::new(8, Duration::from_secs(60));
        for id in ["a", "b", "c"] {
            s.submit(id.into(), sub(60_000)).unwrap();
        }
        let running = s.claim().unwrap();
        let (body, fin) = s.cancel("a").unwrap();
        assert_eq!(body["status"], "CANCELLED");
        assert!(fin.is_some() && running.cancel.load(Ordering::Relaxed));
        assert!(
            s.finish("a", State::Failed, None, Some("cancelled".into()))
                .is_none(),
            "stays CANCELLED"
        );
        assert_eq!(s.cancel("b").unwrap().0["status"], "CANCELLED");
        assert_eq!(s.purge().len(), 1);
        assert_eq!(s.status("c").unwrap()["status"], "CANCELLED");
        assert!(s.claim().is_none());
        assert!(s.cancel("nope").is_none());
    }

    #[test]
    fn ttl_expiry_drops_the_job() {
        let s = Store::new(8, Duration::from_secs(60));
        s.submit("a".into(), sub(0)).unwrap();
        assert!(s.status("a").is_none());
        assert!(s.claim().is_none());
        assert_eq!(s.expired(), 1);
    }
}
