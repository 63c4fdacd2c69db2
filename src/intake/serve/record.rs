//! One job of the local endpoint API: its RunPod state (`IN_QUEUE` ... `TIMED_OUT`), request
//! settings and result, and the `/status` body RunPod answers for it:
//! `id`, `status`, `delayTime`, `executionTime`, `output` or `error`, `workerId`.

use serde_json::{json, Value};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `workerId` reported in status bodies.
pub(crate) const WORKER_ID: &str = "merchgen-local";

/// RunPod's job states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    InQueue,
    InProgress,
    Completed,
    Failed,
    Cancelled,
    TimedOut,
}

impl State {
    /// The wire string, e.g. `IN_QUEUE`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::InQueue => "IN_QUEUE",
            State::InProgress => "IN_PROGRESS",
            State::Completed => "COMPLETED",
            State::Failed => "FAILED",
            State::Cancelled => "CANCELLED",
            State::TimedOut => "TIMED_OUT",
        }
    }

    /// True for the states a job never leaves.
    pub fn terminal(self) -> bool {
        !matches!(self, State::InQueue | State::InProgress)
    }
}

/// What a client sent to `run` / `runsync`, checked.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub input: Value,
    pub webhook: Option<String>,
    pub s3_config: Option<Value>,
    pub execution_timeout: Duration,
    pub ttl: Duration,
    /// The name of the API key that submitted it (for its per-key limits).
    pub key: Option<String>,
}

/// One job and everything `status` reports about it.
#[derive(Debug)]
pub(crate) struct Record {
    pub id: String,
    pub state: State,
    pub(crate) submission: Submission,
    pub(crate) created: Instant,
    /// `created + ttl`: after it the job is gone (`status` answers 404), even mid-run.
    pub(crate) expires: Instant,
    pub started: Option<Instant>,
    pub finished: Option<Instant>,
    /// The merchgen outcome (COMPLETED) or the latest progress (IN_PROGRESS).
    pub output: Option<Value>,
    /// The error string (FAILED, TIMED_OUT).
    pub error: Option<String>,
    pub cancel: Arc<AtomicBool>,
    /// Bytes of output and error kept for `status` once finished (the store's byte budget).
    pub(crate) retained: usize,
}

impl Record {
    pub(crate) fn new(id: String, submission: Submission, now: Instant) -> Self {
        let expires = now + submission.ttl;
        Record {
            id,
            state: State::InQueue,
            submission,
            created: now,
            expires,
            started: None,
            finished: None,
            output: None,
            error: None,
            cancel: Arc::default(),
            retained: 0,
        }
    }

    /// The `/status` body.
    pub(crate) fn status_body(&self, now: Instant) -> Value {
        let mut body = json!({ "id": self.id, "status": self.state.as_str() });
        if let Some(started) = self.started {
            body["delayTime"] = ms(started.duration_since(self.created)).into();
            body["executionTime"] = ms(self.finished.unwrap_or(now).duration_since(started)).into();
            body["workerId"] = WORKER_ID.into();
        }
        if let Some(output) = &self.output {
            body["output"] = output.clone();
        }
        if let Some(error) = &self.error {
            body["error"] = error.clone().into();
        }
        body
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_body_reports_times_once_started() {
        let now = Instant::now();
        let sub = Submission {
            input: json!({}),
            webhook: None,
            s3_config: None,
            execution_timeout: Duration::from_secs(1),
            ttl: Duration::from_secs(9),
            key: None,
        };
        let mut r = Record::new("j".into(), sub, now);
        let b = r.status_body(now);
        assert_eq!(b, json!({"id": "j", "status": "IN_QUEUE"}));
        r.state = State::Completed;
        r.started = Some(now + Duration::from_millis(30));
        r.finished = Some(now + Duration::from_millis(80));
        r.output = Some(json!({"status": "succeeded"}));
        let b = r.status_body(now);
        assert_eq!(
            (b["delayTime"].as_u64(), b["executionTime"].as_u64()),
            (Some(30), Some(50))
        );
        assert_eq!(b["output"]["status"], "succeeded");
        assert!(State::Cancelled.terminal() && !State::InProgress.terminal());
    }
}
