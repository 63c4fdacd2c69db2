//! The local endpoint's jobs: a bounded queue of waiting ids and a table of records, with the
//! RunPod state machine (`IN_QUEUE` -> `IN_PROGRESS` -> `COMPLETED` | `FAILED` | `TIMED_OUT`,
//! `CANCELLED` from either of the first two), `policy.ttl` expiry (the job is then gone:
//! `status` answers 404, as RunPod does) and a retention time for finished jobs. No I/O.
//!
//! Every job has one terminal state, the one its outcome earned: a waiting job cancelled ends
//! `CANCELLED` at once, but a cancel of a running job only asks it to stop, and the job's own
//! outcome decides (`CANCELLED` when it stopped, `COMPLETED` when it was past the point where
//! it could). A job's request body is dropped once the runner takes it, and finished jobs are
//! kept within a count and a byte budget as well as the retention time.

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

/// Most bytes of finished jobs' outputs kept (inline images can be megabytes each); finished
/// jobs are dropped oldest first beyond it, as beyond `MAX_RECORDS`.
pub(crate) const MAX_RETAINED_BYTES: usize = 256 * 1024 * 1024;

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
    /// Sum of the finished records' `retained` bytes.
    retained: usize,
}

/// The job table. Share behind an `Arc`.
pub struct Store {
    inner: Mutex<Inner>,
    /// Woken on every state change (runsync waiters).
    changed: Notify,
    /// Woken when a job is queued (the runner).
    work: Notify,
    capacity: usize,
    retention: Retention,
    expired: AtomicU64,
}

/// How long, and how much of, finished jobs are kept.
#[derive(Debug, Clone, Copy)]
struct Retention {
    time: Duration,
    records: usize,
    bytes: usize,
}

impl Store {
    pub fn new(capacity: usize, retention: Duration) -> Self {
        Self::with_limits(capacity, retention, MAX_RECORDS, MAX_RETAINED_BYTES)
    }

    /// A store that keeps at most `records` jobs and `bytes` of finished jobs' outputs.
    pub(crate) fn with_limits(
        capacity: usize,
        retention: Duration,
        records: usize,
        bytes: usize,
    ) -> Self {
        Store {
            inner: Mutex::default(),
            changed: Notify::new(),
            work: Notify::new(),
            capacity: capacity.max(1),
            retention: Retention {
                time: retention,
                records,
                bytes,
            },
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

    /// Cancel a job: a waiting one leaves the queue and ends `CANCELLED` (returned, to
    /// announce); a running one is asked to stop (between denoising steps) and stays
    /// `IN_PROGRESS` until its outcome arrives through `finish`; a finished one is left as it
    /// is. Returns its status now and, when it ended here, the final state to announce.
    pub fn cancel(&self, id: &str) -> Option<(Value, Option<Finished>)> {
        let now = Instant::now();
        let mut inner = self.lock();
        prune(&mut inner, now, self.retention, &self.expired);
        let state = inner.records.get(id)?.state;
        if state == State::InQueue {
            inner.queue.retain(|q| q != id);
        }
        let Inner {
            records, retained, ..
        } = &mut *inner;
        let record = records.get_mut(id)?;
        record.cancel.store(true, Ordering::Relaxed);
        let finished = (state == State::InQueue)
            .then(|| conclude(record, retained, State::Cancelled, None, None, now));
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
        let Inner {
            records, retained, ..
        } = &mut *inner;
        for id in &ids {
            if let Some(r) = records.get_mut(id) {
                finished.push(conclude(r, retained, State::Cancelled, None, None, now));
            }
        }
        drop(inner);
        self.changed.notify_waiters();
        finished
    }

    /// Jobs of the API key named `key` waiting or running.
    pub(crate) fn active_for(&self, key: &str) -> usize {
        self.lock()
            .records
            .values()
            .filter(|r| !r.state.terminal() && r.submission.key.as_deref() == Some(key))
            .count()
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

    /// Take the next waiting job, marking it `IN_PROGRESS`. The request body moves to the
    /// runner: the store keeps none of it (a 20 MB body is not held for the retention time).
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
                input: std::mem::take(&mut record.submission.input),
                s3_config: record.submission.s3_config.take(),
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

    /// Conclude a running job with its outcome's state. A job expired meanwhile is gone.
    pub fn finish(
        &self,
        id: &str,
        state: State,
        output: Option<Value>,
        error: Option<String>,
    ) -> Option<Finished> {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner {
            records, retained, ..
        } = &mut *inner;
        let record = records
            .get_mut(id)
            .filter(|r| r.state == State::InProgress)?;
        let finished = conclude(record, retained, state, output, error, now);
        prune(&mut inner, now, self.retention, &self.expired);
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
    retained: &mut usize,
    state: State,
    output: Option<Value>,
    error: Option<String>,
    now: Instant,
) -> Finished {
    record.state = state;
    record.finished = Some(now);
    record.output = output;
    record.error = error;
    record.retained =
        record.output.as_ref().map_or(0, json_bytes) + record.error.as_ref().map_or(0, String::len);
    *retained += record.retained;
    Finished {
        state,
        body: record.status_body(now),
        webhook: record.submission.webhook.clone(),
    }
}

/// The length of `value` as JSON (what a finished job's output costs to keep).
fn json_bytes(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Drop expired jobs (cancelling a running one), finished jobs past the retention time, and
/// the oldest finished jobs beyond the record count or the byte budget.
fn prune(inner: &mut Inner, now: Instant, retention: Retention, expired: &AtomicU64) {
    let mut gone = Vec::new();
    for r in inner.records.values() {
        let stale = r
            .finished
            .is_some_and(|f| now.duration_since(f) >= retention.time);
        if now >= r.expires || stale {
            if !r.state.terminal() {
                r.cancel.store(true, Ordering::Relaxed);
                expired.fetch_add(1, Ordering::Relaxed);
                tracing::info!(job_id = %r.id, state = r.state.as_str(), "job ttl ran out; it is dropped");
            }
            gone.push(r.id.clone());
        }
    }
    let mut records = inner.records.len() - gone.len();
    let mut bytes = inner.retained
        - gone
            .iter()
            .filter_map(|id| inner.records.get(id))
            .map(|r| r.retained)
            .sum::<usize>();
    if records > retention.records || bytes > retention.bytes {
        let mut finished: Vec<(&Record, Instant)> = inner
            .records
            .values()
            .filter(|r| !gone.contains(&r.id))
            .filter_map(|r| r.finished.map(|f| (r, f)))
            .collect();
        finished.sort_by_key(|(_, f)| *f);
        for (r, _) in finished {
            if records <= retention.records && bytes <= retention.bytes {
                break;
            }
            records -= 1;
            bytes -= r.retained;
            gone.push(r.id.clone());
        }
    }
    if gone.is_empty() {
        return;
    }
    for id in &gone {
        if let Some(r) = inner.records.remove(id) {
            inner.retained -= r.retained;
        }
    }
    inner.queue.retain(|id| inner.records.contains_key(id));
}

#[cfg(test)]
mod tests;
