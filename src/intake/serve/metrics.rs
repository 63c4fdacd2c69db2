//! The endpoint API's own metrics on its `/metrics`: jobs by final status (as `/status` reports
//! them), submissions refused for a full queue, queue depth, jobs running, model readiness and
//! cold start; followed by the job metrics every door has (`crate::metrics`: jobs by door and
//! code, stage latency, model load time).

use super::record::State;
use super::store::Counts;
use crate::metrics;
use crate::metrics::prometheus::{counter, family, gauge};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
struct Inner {
    finished: BTreeMap<&'static str, u64>,
    submitted: u64,
    rejected: u64,
    /// Requests and jobs refused for a key's limit, by (key name, limit).
    limited: BTreeMap<(String, &'static str), u64>,
    cold_start_seconds: Option<f64>,
}

/// Jobs finished so far, for `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub completed: u64,
    pub failed: u64,
}

/// The server's metrics. Share behind an `Arc`.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn submitted(&self) {
        self.lock().submitted += 1;
    }

    pub fn rejected(&self) {
        self.lock().rejected += 1;
    }

    /// A request or job of the key named `key` refused for its `limit`.
    pub(crate) fn limited(&self, key: &str, limit: &'static str) {
        *self
            .lock()
            .limited
            .entry((key.to_owned(), limit))
            .or_default() += 1;
    }

    /// A job reached a final state.
    pub fn finished(&self, state: State) {
        *self.lock().finished.entry(label(state)).or_default() += 1;
    }

    /// Completed and failed (failed, cancelled, timed out) jobs so far.
    pub(crate) fn totals(&self) -> Totals {
        let inner = self.lock();
        let n = |s: State| inner.finished.get(label(s)).copied().unwrap_or(0);
        Totals {
            completed: n(State::Completed),
            failed: n(State::Failed) + n(State::TimedOut) + n(State::Cancelled),
        }
    }

    /// The model is ready: `cold_start` since start-up, `load` spent by the engine.
    pub(crate) fn model_ready(&self, cold_start_seconds: f64, load_seconds: f64) {
        self.lock().cold_start_seconds = Some(cold_start_seconds);
        metrics::global().model_loaded(load_seconds);
    }

    /// The text exposition.
    pub fn render(&self, counts: Counts, expired: u64) -> String {
        let inner = self.lock();
        let mut out = String::new();
        let ready = inner.cold_start_seconds.is_some();
        family(
            &mut out,
            "merchgen_jobs_total",
            "counter",
            "Jobs that reached a final state, by status.",
        );
        for state in [
            State::Completed,
            State::Failed,
            State::Cancelled,
            State::TimedOut,
        ] {
            let n = inner.finished.get(label(state)).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "merchgen_jobs_total{{status=\"{}\"}} {n}",
                label(state)
            );
        }
        let _ = writeln!(out, "merchgen_jobs_total{{status=\"expired\"}} {expired}");
        counter(
            &mut out,
            "merchgen_jobs_submitted_total",
            "Jobs accepted by run and runsync.",
            inner.submitted as f64,
        );
        counter(
            &mut out,
            "merchgen_jobs_rejected_total",
            "Jobs refused with 429 because the queue was full.",
            inner.rejected as f64,
        );
        if !inner.limited.is_empty() {
            family(
                &mut out,
                "merchgen_api_key_limited_total",
                "counter",
                "Requests and jobs refused with 429 for an API key's limit, by key name and limit.",
            );
            for ((key, limit), n) in &inner.limited {
                let key = key.replace(['\\', '"', '\n'], "_");
                let _ = writeln!(
                    out,
                    "merchgen_api_key_limited_total{{key=\"{key}\",limit=\"{limit}\"}} {n}"
                );
            }
        }
        gauge(
            &mut out,
            "merchgen_queue_depth",
            "Jobs waiting in the queue.",
            counts.in_queue as f64,
        );
        gauge(
            &mut out,
            "merchgen_jobs_in_progress",
            "Jobs running on the device.",
            counts.in_progress as f64,
        );
        gauge(
            &mut out,
            "merchgen_model_ready",
            "1 once the model is loaded.",
            if ready { 1.0 } else { 0.0 },
        );
        if let Some(cold) = inner.cold_start_seconds {
            gauge(
                &mut out,
                "merchgen_cold_start_seconds",
                "Seconds from start-up (the port opening) until the model was ready.",
                cold,
            );
        }
        out.push_str(&metrics::global().render());
        out
    }
}

fn label(state: State) -> &'static str {
    match state {
        State::InQueue => "in_queue",
        State::InProgress => "in_progress",
        State::Completed => "completed",
        State::Failed => "failed",
        State::Cancelled => "cancelled",
        State::TimedOut => "timed_out",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.submitted();
        m.finished(State::Completed);
        m.model_ready(1.5, 1.25);
        let text = m.render(
            Counts {
                in_queue: 3,
                in_progress: 1,
            },
            0,
        );
        for line in [
            "merchgen_jobs_total{status=\"completed\"} 1",
            "merchgen_queue_depth 3",
            "merchgen_model_ready 1",
            "merchgen_cold_start_seconds 1.5",
            "merchgen_model_load_seconds 1.25",
            "# TYPE merchgen_door_jobs_total counter",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
