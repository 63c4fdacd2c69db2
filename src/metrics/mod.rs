//! The process's metrics on `/metrics` (Prometheus text, `prometheus`): jobs by door, status and
//! error code, jobs running, jobs given up, per-stage latency, the model's load time, and
//! figures read from the layers that keep them (the engine's batched jobs and free device
//! memory), registered with [`Metrics::read`] by whoever assembles the worker. Exposed by the
//! endpoint API on its own port and by every other door on `MERCHGEN_METRICS_ADDR` (`serve_on`).
//!
//! Ground floor: a lower layer never calls up to report; it keeps its own counters, and this
//! module reads them when scraped. One process runs one worker, so the metrics are one
//! process-wide value (`global`).

pub(crate) mod prometheus;

use prometheus::Histogram;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};

/// How a job ended, as the metrics count it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JobEnd {
    /// With an outcome: its error code (`None`: succeeded) and its stage timings in ms.
    Outcome {
        code: Option<String>,
        stages_ms: Vec<(String, u64)>,
    },
    /// It did not stop when cancelled (deadline or shutdown) and was given up.
    GivenUp,
}

/// A figure read when the metrics are scraped (`None`: nothing to report yet).
type Reader = Box<dyn Fn() -> Option<f64> + Send + Sync>;

/// One registered figure: its family and how to read it.
struct Reading {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    read: Reader,
}

#[derive(Default)]
struct Inner {
    /// (door, status, error code or "") -> jobs.
    jobs: BTreeMap<(&'static str, &'static str, String), u64>,
    running: BTreeMap<&'static str, i64>,
    given_up: BTreeMap<&'static str, u64>,
    stages: BTreeMap<String, Histogram>,
    model_load_seconds: Option<f64>,
    readings: Vec<Reading>,
}

/// The metrics. See the module header.
#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

/// The process's metrics.
pub(crate) fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A job started on `door`.
    pub(crate) fn started(&self, door: &'static str) {
        *self.lock().running.entry(door).or_default() += 1;
    }

    /// A job of `door` ended.
    pub(crate) fn ended(&self, door: &'static str, end: JobEnd) {
        let mut inner = self.lock();
        *inner.running.entry(door).or_default() -= 1;
        let (code, stages_ms) = match end {
            JobEnd::GivenUp => {
                *inner.given_up.entry(door).or_default() += 1;
                return;
            }
            JobEnd::Outcome { code, stages_ms } => (code, stages_ms),
        };
        let status = if code.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        *inner
            .jobs
            .entry((door, status, code.unwrap_or_default()))
            .or_default() += 1;
        for (stage, ms) in stages_ms {
            inner
                .stages
                .entry(stage)
                .or_default()
                .observe(ms as f64 / 1000.0);
        }
    }

    /// The engine loaded its model in this long.
    pub(crate) fn model_loaded(&self, seconds: f64) {
        self.lock().model_load_seconds = Some(seconds);
    }

    /// Report `read()` as the unlabelled family `name` (`kind`: `counter` or `gauge`) at every
    /// scrape. A family registered again replaces the earlier reader (a process that starts a
    /// second engine reports the newest).
    pub(crate) fn read(
        &self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) {
        let mut inner = self.lock();
        inner.readings.retain(|r| r.name != name);
        inner.readings.push(Reading {
            name,
            kind,
            help,
            read: Box::new(read),
        });
    }

    /// The text exposition.
    pub(crate) fn render(&self) -> String {
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
        for r in &inner.readings {
            if let Some(value) = (r.read)() {
                prometheus::family(&mut out, r.name, r.kind, r.help);
                let _ = writeln!(out, "{} {value}", r.name);
            }
        }
        if let Some(load) = inner.model_load_seconds {
            prometheus::gauge(
                &mut out,
                "merchgen_model_load_seconds",
                "Seconds the engine spent loading the model.",
                load,
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
pub(crate) async fn serve_on(addr: Option<SocketAddr>) {
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

    fn outcome(code: Option<&str>, stages_ms: &[(&str, u64)]) -> JobEnd {
        JobEnd::Outcome {
            code: code.map(str::to_owned),
            stages_ms: stages_ms
                .iter()
                .map(|(s, ms)| (s.to_string(), *ms))
                .collect(),
        }
    }

    #[test]
    fn render_counts_jobs_by_door_status_and_code_and_stage_buckets() {
        let m = Metrics::default();
        m.started("sqs");
        m.ended("sqs", outcome(None, &[("denoise", 300), ("total", 2_000)]));
        m.started("sqs");
        m.ended("sqs", outcome(Some("timeout"), &[]));
        m.started("lambda");
        m.ended("lambda", JobEnd::GivenUp);
        m.started("serve");
        m.model_loaded(1.25);
        m.read(
            "merchgen_device_memory_free_bytes",
            "gauge",
            "Device memory free.",
            || Some(4096.0),
        );
        m.read("merchgen_unread", "gauge", "Nothing yet.", || None);
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
        assert!(!text.contains("merchgen_unread"), "{text}");
    }
}
