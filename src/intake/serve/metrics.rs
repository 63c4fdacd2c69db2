//! `/metrics` in the Prometheus text format (version 0.0.4), written by hand: a few counters,
//! gauges and one histogram family do not justify a metrics crate and its global registry.
//! Jobs by final status, submissions refused for a full queue, queue depth, jobs running,
//! model readiness, cold start, and per-stage latency histograms from each outcome's
//! `timings_ms`.

use super::record::State;
use super::store::Counts;
use crate::job::outcome::JobOutcome;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Histogram bucket bounds, seconds: from a fast mockup stage to a slow cold denoise.
const BUCKETS: [f64; 13] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

#[derive(Default)]
struct Inner {
    finished: BTreeMap<&'static str, u64>,
    submitted: u64,
    rejected: u64,
    stages: BTreeMap<String, Histogram>,
    cold_start_seconds: Option<f64>,
    model_load_seconds: Option<f64>,
}

/// Jobs finished so far, for `/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
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

    /// A job reached a final state.
    pub fn finished(&self, state: State) {
        *self.lock().finished.entry(label(state)).or_default() += 1;
    }

    /// Completed and failed (failed, cancelled, timed out) jobs so far.
    pub fn totals(&self) -> Totals {
        let inner = self.lock();
        let n = |s: State| inner.finished.get(label(s)).copied().unwrap_or(0);
        Totals {
            completed: n(State::Completed),
            failed: n(State::Failed) + n(State::TimedOut) + n(State::Cancelled),
        }
    }

    /// The per-stage timings of an outcome.
    pub fn observe(&self, outcome: &JobOutcome) {
        let Some(timings) = outcome
            .timings_ms
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok())
        else {
            return;
        };
        let Some(stages) = timings.as_object() else {
            return;
        };
        let mut inner = self.lock();
        for (stage, ms) in stages {
            if let Some(ms) = ms.as_u64() {
                inner
                    .stages
                    .entry(stage.clone())
                    .or_default()
                    .observe(ms as f64 / 1000.0);
            }
        }
    }

    /// The model is ready: `cold_start` since start-up, `load` spent by the engine.
    pub fn model_ready(&self, cold_start_seconds: f64, load_seconds: f64) {
        let mut inner = self.lock();
        inner.cold_start_seconds = Some(cold_start_seconds);
        inner.model_load_seconds = Some(load_seconds);
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
        if let (Some(cold), Some(load)) = (inner.cold_start_seconds, inner.model_load_seconds) {
            gauge(
                &mut out,
                "merchgen_cold_start_seconds",
                "Seconds from start-up (the port opening) until the model was ready.",
                cold,
            );
            gauge(
                &mut out,
                "merchgen_model_load_seconds",
                "Seconds the engine spent loading the model.",
                load,
            );
        }
        family(
            &mut out,
            "merchgen_stage_duration_seconds",
            "histogram",
            "Per-stage latency of jobs (timings_ms of each outcome).",
        );
        for (stage, h) in &inner.stages {
            for (bound, count) in BUCKETS.iter().zip(h.counts.iter()) {
                let _ = writeln!(out, "merchgen_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(
                out,
                "merchgen_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "merchgen_stage_duration_seconds_sum{{stage=\"{stage}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "merchgen_stage_duration_seconds_count{{stage=\"{stage}\"}} {}",
                h.count
            );
        }
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

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: f64) {
    family(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;
    use crate::job::outcome::Timings;

    #[test]
    fn render_has_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.submitted();
        m.finished(State::Completed);
        let mut o = JobOutcome::failed("j", JobError::internal("x"));
        o.timings_ms = Some(Timings {
            denoise: Some(300),
            total: 2_000,
            ..Timings::default()
        });
        m.observe(&o);
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
            "merchgen_stage_duration_seconds_bucket{stage=\"denoise\",le=\"0.25\"} 0",
            "merchgen_stage_duration_seconds_bucket{stage=\"denoise\",le=\"0.5\"} 1",
            "merchgen_stage_duration_seconds_count{stage=\"total\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
