//! `merchgen serve`: RunPod's endpoint API on a local port, so RunPod's client libraries and
//! tools can drive merchgen without RunPod. `routes` is the HTTP surface, `auth` the key check,
//! `store` the bounded queue and job table, `record` one job's state and status body, `source`
//! the store as a `JobSource` for the doors' one consumer loop (a bounded number of jobs in
//! flight), `webhook` the request-level webhook, `metrics` the Prometheus text. The server
//! answers (`/healthz`: 503) before the model has loaded; jobs wait in the queue until it has.
//! After a device fault the waiting jobs end as `CANCELLED` (retryable), the health check
//! answers 503, and `serve` exits 1 so its supervisor starts a fresh worker.

pub mod body;
pub mod keys;
pub(crate) mod listener;
pub mod metrics;
pub(crate) mod record;
pub mod routes;
pub(crate) mod source;
pub mod store;
pub mod webhook;

use crate::app::{self, Door};
use crate::backoff::Backoff;
use crate::config::{Config, ServeArgs};
use crate::intake::runtime::pull::{self, PullOptions};
use crate::intake::runtime::RunRules;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Serve until SIGTERM/SIGINT; returns the exit status.
pub async fn run(config: &Config, args: &ServeArgs) -> i32 {
    let started = Instant::now();
    let shutdown = crate::shutdown::on_signals();
    let listener = match tokio::net::TcpListener::bind((args.host, args.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "merchgen serve: cannot listen on {}:{}: {e}",
                args.host, args.port
            );
            return 2;
        }
    };
    let hooks = match webhook::StatusWebhook::new(config.webhook_config()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("merchgen serve: cannot start the webhook client: {e}");
            return 2;
        }
    };
    let single = args.api_key.as_ref().filter(|k| !k.is_empty());
    let keys = match (&args.api_keys_file, single) {
        (Some(path), single) => match keys::ApiKeys::from_file(path, single) {
            Ok(keys) => keys,
            Err(e) => {
                eprintln!("merchgen serve: {e}");
                return 2;
            }
        },
        (None, Some(key)) => keys::ApiKeys::single(key),
        (None, None) => keys::ApiKeys::open(),
    };
    let store = Arc::new(store::Store::new(
        args.queue_capacity,
        Duration::from_secs(args.retention_secs),
    ));
    let metrics = Arc::new(metrics::Metrics::default());
    let state = Arc::new(routes::AppState {
        store: store.clone(),
        metrics: metrics.clone(),
        hooks: hooks.clone(),
        keys: Arc::new(keys),
        ready: false.into(),
        runsync_wait: Duration::from_secs(args.runsync_wait_secs),
        execution_timeout: Duration::from_secs(args.execution_timeout_secs),
        ttl: Duration::from_secs(args.ttl_secs),
        shutdown: shutdown.clone(),
    });
    if let Ok(addr) = listener.local_addr() {
        // On stdout, so scripts (and tests) starting it on port 0 learn the port.
        println!("merchgen serve: listening on http://{addr}");
        tracing::info!(%addr, auth = !state.keys.is_open(), "endpoint API listening; loading the model");
    }
    let rate = body::BodyRate {
        grace: Duration::from_secs(args.body_grace_secs),
        min_rate: args.body_min_rate,
        limit: crate::job::parse::MAX_BODY_BYTES,
    };
    let limits = listener::ConnectionLimits {
        header_timeout: Duration::from_secs(args.header_timeout_secs.max(1)),
        max_connections: args.max_connections,
    };
    let app = routes::router(state.clone(), rate);
    let server = tokio::spawn(listener::serve(listener, app, limits, shutdown.clone()));
    let code = load_and_run(config, state.clone(), started, hooks.clone()).await;
    shutdown.cancel();
    // Jobs that waited for a model that never loaded (or that a purge missed) end CANCELLED,
    // and every status webhook in flight gets the grace period to go out.
    for finished in state.store.purge() {
        hooks.announce(&state.metrics, finished);
    }
    let left = hooks
        .drain(Duration::from_secs(config.shutdown_grace_secs))
        .await;
    if left > 0 {
        tracing::warn!(left, "status webhooks still in flight at exit");
    }
    match server.await {
        Ok(()) => code,
        Err(e) => {
            tracing::error!(error = %e, "the HTTP server failed");
            1
        }
    }
}

/// Load the model, then run jobs until shutdown.
async fn load_and_run(
    config: &Config,
    state: Arc<routes::AppState>,
    started: Instant,
    hooks: webhook::StatusWebhook,
) -> i32 {
    app::prewarm_mockups(config);
    let engine = tokio::select! {
        _ = state.shutdown.cancelled() => return 0,
        engine = app::start_engine(config) => engine,
    };
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!(error = %e, "the model could not be loaded");
            eprintln!("merchgen serve: the model could not be loaded: {e}");
            return 1;
        }
    };
    let load_seconds = engine.load_report().load_ms as f64 / 1000.0;
    let destination = config.output.clone().unwrap_or_else(|| "inline".to_owned());
    let worker = match app::build_worker(config, Some(engine), Door::Deployed, destination) {
        Ok(worker) => Arc::new(worker),
        Err(e) => {
            eprintln!("merchgen serve: {e:#}");
            return 1;
        }
    };
    state
        .metrics
        .model_ready(started.elapsed().as_secs_f64(), load_seconds);
    state.ready.store(true, Ordering::Relaxed);
    tracing::info!(
        cold_start_ms = started.elapsed().as_millis() as u64,
        "model ready; running jobs"
    );
    let source = Arc::new(source::ServeSource {
        store: state.store.clone(),
        metrics: state.metrics.clone(),
        hooks,
        base_output: config.output_config(),
        addresses: crate::net::AddressPolicy::new(config.fetch_allow.clone()),
    });
    let options = PullOptions {
        door: "serve",
        rules: RunRules::from_config(config, "serve"),
        // A failed job is final here (its caller sees FAILED and may submit it again).
        backoff: Backoff::NONE,
        receive_backoff: pull::RECEIVE_BACKOFF,
        depth: config.pipeline_depth,
        prefetch: false,
    };
    let report = pull::run(source, worker.clone(), state.shutdown.clone(), options).await;
    let healthy = !report.device_broken;
    worker
        .drain_webhooks(Duration::from_secs(config.shutdown_grace_secs))
        .await;
    if !healthy {
        state.ready.store(false, Ordering::Relaxed);
        tracing::error!(
            "stopped after a device fault; exiting so that a fresh worker replaces this one"
        );
        return 1;
    }
    0
}
