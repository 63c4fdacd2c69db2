//! Job metrics of every door, recorded by `run::run_job` for each job whatever door it came
//! through, and exposed on `/metrics`: by the endpoint API on its own port, and by every other
//! door on `MERCHGEN_METRICS_ADDR` when set (`serve_on`). Jobs by door, status and error code,
//! jobs running, jobs given up, per-stage latency from each outcome's `timings_ms`, the model's
//! load time, and the device memory free after the last generation.
//!
//! One process runs one worker, so the metrics are one process-wide value (`global`).

use super::prometheus::{self, Histogram};
use crate::job::outcome::JobOutcome;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

#[derive(Default)]
struct Inner {
    /// (door, status, error code or "") -> jobs.
    jobs: BTreeMap<(&'static str, &'static str, String), u64>,
    running: BTreeMap<&'static str, i64>,
    given_up: BTreeMap<&'static str, u64>,
    stages: BTreeMap<String, Histogram>,
    model_load_seconds: Option<f64>,
    device_memory_free: Option<u64>,
    batched_jobs: u64,
}

/// The job metrics. See the module header.
#[derive(Default)]
pub struct JobMetrics {
    inner: Mutex<Inner>,
}

/// The process's job metrics.
pub fn global() -> &'static JobMetrics {
    static METRICS: OnceLock<JobMetrics> = OnceLock::new();
    METRICS.get_or_init(JobMetrics::default)
}

impl JobMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job started on `door`.
    pub fn started(&self, door: &'static str) {
        *self.lock().running.entry(door).or_default() += 1;
    }

    /// A job of `door` ended: with its outcome, or given up (`None`).
    pub fn ended(&self, door: &'static str, outcome: Option<&JobOutcome>) {
        let mut inner = self.lock();
        *inner.running.entry(door).or_default() -= 1;
        let Some(outcome) = outcome else {
            *inner.given_up.entry(door).or_default() += 1;
            return;
        };
        let (status, code) = match &outcome.error {
            None => ("succeeded", String::new()),
            Some(e) => ("failed", e.code.as_str().to_owned()),
        };
        *inner.jobs.entry((door, status, code)).or_default() += 1;
        let stages = outcome
            .timings_ms
            .as_ref()
            .and_then(|t| serde_json::to_value(t).ok());
        if let Some(serde_json::Value::Object(stages)) = stages {
            for (stage, ms) in stages {
                if let Some(ms) = ms.as_u64() {
                    inner
                        .stages
                        .entry(stage)
                        .or_default()
                        .observe(ms as f64 / 1000.0);
                }
            }
        }
    }

    /// The engine loaded its model in this long.
    pub fn model_loaded(&self, seconds: f64) {
        self.lock().model_load_seconds = Some(seconds);
    }

    /// Device bytes free after the last generation.
    pub fn device_memory_free(&self, bytes: u64) {
        self.lock().device_memory_free = Some(bytes);
    }

    /// `jobs` jobs shared one batched generation.
    pub fn batched(&self, jobs: u64) {
        self.lock().batched_jobs += jobs;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let inner = self.lock();
        let mut out = String::new();
        prometheus::family(
            &mut out,
            "merchgen_door_jobs_total",
            "counter",
            "Jobs that ended with an outcome, by door, status and error code.",
        );
        for ((door, status, code), n) in &inner.jobs {
            let _ = writeln!(
                out,
                "merchgen_door_jobs_total{{door=\"{door}\",status=\"{status}\",code=\"{}\"}} {n}",
                prometheus::escape(code)
            );
        }
        prometheus::family(
            &mut out,
            "merchgen_door_jobs_given_up_total",
            "counter",
            "Jobs that did not stop when cancelled (deadline or shutdown) and were given up.",
        );
        for (door, n) in &inner.given_up {
            let _ = writeln!(
                out,
                "merchgen_door_jobs_given_up_total{{door=\"{door}\"}} {n}"
            );
        }
        prometheus::family(
            &mut out,
            "merchgen_door_jobs_running",
            "gauge",
            "Jobs running now, by door.",
        );
        for (door, n) in &inner.running {
            let _ = writeln!(out, "merchgen_door_jobs_running{{door=\"{door}\"}} {n}");
        }
        prometheus::family(
            &mut out,
            "merchgen_engine_batched_jobs_total",
            "counter",
            "Jobs generated in a forward pass shared with other jobs.",
        );
        let _ = writeln!(
            out,
            "merchgen_engine_batched_jobs_total {}",
            inner.batched_jobs
        );
        if let Some(load) = inner.model_load_seconds {
            prometheus::gauge(
                &mut out,
                "merchgen_model_load_seconds",
                "Seconds the engine spent loading the model.",
                load,
            );
        }
        if let Some(free) = inner.device_memory_free {
            prometheus::gauge(
                &mut out,
                "merchgen_device_memory_free_bytes",
                "Device memory free after the last generation (host memory on the CPU).",
                free as f64,
            );
        }
        prometheus::family(
            &mut out,
            "merchgen_stage_duration_seconds",
            "histogram",
            "Per-stage latency of jobs (timings_ms of each outcome).",
        );
        for (stage, h) in &inner.stages {
            h.render(
                &mut out,
                "merchgen_stage_duration_seconds",
                &format!("stage=\"{}\"", prometheus::escape(stage)),
            );
        }
        out
    }
}

/// Serve `/metrics` (the global job metrics) on `addr` in the background, for doors without an
/// HTTP server of their own. A port that cannot be bound is logged; the worker goes on.
pub async fn serve_on(addr: Option<SocketAddr>) {
    let Some(addr) = addr else {
        return;
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%addr, error = %e, "cannot listen for /metrics (MERCHGEN_METRICS_ADDR); running without it");
            return;
        }
    };
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; version=0.0.4",
                )],
                global().render(),
            )
        }),
    );
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the /metrics server stopped");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorCode, JobError};
    use crate::job::outcome::Timings;

    #[test]
    fn render_counts_jobs_by_door_status_and_code_and_stage_buckets() {
        let m = JobMetrics::default();
        m.started("sqs");
        let mut ok = JobOutcome::started("a");
        ok.timings_ms = Some(Timings {
            denoise: Some(300),
            total: 2_000,
            ..Timings::default()
        });
        m.ended("sqs", Some(&ok));
        m.started("sqs");
        m.ended(
            "sqs",
            Some(&JobOutcome::failed(
                "b",
                JobError::new(ErrorCode::Timeout, "late"),
            )),
        );
        m.started("lambda");
        m.ended("lambda", None);
        m.started("serve");
        m.model_loaded(1.25);
        m.device_memory_free(4096);
        let text = m.render();
        for line in [
            "merchgen_door_jobs_total{door=\"sqs\",status=\"succeeded\",code=\"\"} 1",
            "merchgen_door_jobs_total{door=\"sqs\",status=\"failed\",code=\"timeout\"} 1",
            "merchgen_door_jobs_given_up_total{door=\"lambda\"} 1",
            "merchgen_door_jobs_running{door=\"serve\"} 1",
            "merchgen_door_jobs_running{door=\"sqs\"} 0",
            "merchgen_model_load_seconds 1.25",
            "merchgen_device_memory_free_bytes 4096",
            "merchgen_stage_duration_seconds_bucket{stage=\"denoise\",le=\"0.25\"} 0",
            "merchgen_stage_duration_seconds_bucket{stage=\"denoise\",le=\"0.5\"} 1",
            "merchgen_stage_duration_seconds_count{stage=\"total\"} 1",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
