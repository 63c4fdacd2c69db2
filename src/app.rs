//! Assembles a `Worker` from the configuration: resolves and loads the model on the engine
//! thread (once, at cold start), and builds the fetcher, notifier and template library.

use crate::config::{Config, MockupWarmup};
use crate::engine::files::hub;
use crate::engine::finish::Finishers;
use crate::engine::flux::{FluxPipeline, LoadOptions};
use crate::engine::thread::{EngineOptions, Loaded};
use crate::engine::{self, EngineError, EngineHandle, FinishHandle};
use crate::fetch::Fetcher;
use crate::mockup::MockupLibrary;
use crate::webhook::{HttpNotifier, QueueLimits, WebhookQueue};
use crate::worker::{Worker, WorkerParts};
use anyhow::Context;
use std::sync::Arc;

/// Webhook receivers with events waiting at once, and the events each may hold waiting (each
/// receiver has its own queue: a slow one delays only its own events).
const WEBHOOK_RECEIVERS: usize = 256;
const WEBHOOK_QUEUE_PER_RECEIVER: usize = 1024;

/// Which door builds the worker; `invoke` may read local files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Invoke,
    Deployed,
}

/// `MERCHGEN_MODEL` value of a worker that loads no model: it serves mockup-only and
/// print-file jobs (a CPU Lambda function), and generation jobs fail with `model_unavailable`
/// saying to route them to a GPU queue.
pub(crate) const NO_MODEL: &str = "none";

/// The configured model on its own engine thread, or `None` under `MERCHGEN_MODEL=none`.
pub(crate) async fn start_engine_unless_none(
    config: &Config,
) -> Result<Option<EngineHandle>, EngineError> {
    if config.model.trim().eq_ignore_ascii_case(NO_MODEL) {
        tracing::info!("MERCHGEN_MODEL=none: no model is loaded; this worker serves mockup-only and print-file jobs, generation jobs fail with model_unavailable");
        return Ok(None);
    }
    start_engine(config).await.map(Some)
}

/// Resolve and load the configured model on its own engine thread.
pub async fn start_engine(config: &Config) -> Result<EngineHandle, EngineError> {
    let model = config.model.clone();
    let hub_settings = config.hub_settings();
    let device_spec = config.device.clone();
    let opts = LoadOptions {
        weights: config.weights,
        max_batch: config.max_batch,
    };
    let finish = config.finish_settings();
    let warm_up = config.warm_up;
    EngineHandle::start(
        move || {
            let resolved = hub::resolve(&model, &hub_settings, true)
                .map_err(|e| EngineError::ModelUnavailable(e.to_string()))?;
            let device = engine::device::open(&device_spec)
                .map_err(|e| EngineError::Failed(e.to_string()))?;
            let mut pipeline =
                FluxPipeline::load(&resolved, &device, &opts).map_err(EngineError::from_candle)?;
            if warm_up.runs_on(&device) {
                match pipeline.warm_up() {
                    Ok(ms) => tracing::info!(elapsed_ms = ms, "warm-up pass done"),
                    // Jobs will meet the same fault and fail with their own codes.
                    Err(e) => tracing::error!(error = %e, "the warm-up pass failed"),
                }
            }
            // The finishing models share the generator's device (and thread).
            Ok(Loaded {
                generator: Box::new(pipeline),
                finishers: Some(Finishers::new(finish, device)),
            })
        },
        EngineOptions {
            batch: config.batch_policy(),
        },
    )
    .await
    .inspect(report_to_metrics)
}

/// `/metrics` reads the engine's load time and counters.
fn report_to_metrics(engine: &EngineHandle) {
    let metrics = crate::metrics::global();
    metrics.model_loaded(engine.load_report().load_ms as f64 / 1000.0);
    let counters = engine.counters();
    metrics.read(
        "merchgen_engine_batched_jobs_total",
        "counter",
        "Jobs generated in a forward pass shared with other jobs.",
        move || Some(counters.batched_jobs() as f64),
    );
    let counters = engine.counters();
    metrics.read(
        "merchgen_device_memory_free_bytes",
        "gauge",
        "Device memory free after the last generation (host memory on the CPU).",
        move || counters.memory_free().map(|b| b as f64),
    );
}

/// The finishing models of a worker: the engine thread's, or a thread of their own when the
/// worker has no generator (mockup-only jobs can still be cut out and upscaled).
pub(crate) fn finisher(
    config: &Config,
    engine: Option<&EngineHandle>,
) -> anyhow::Result<FinishHandle> {
    if let Some(engine) = engine {
        return Ok(engine.finisher());
    }
    let settings = config.finish_settings();
    let device_spec = config.device.clone();
    FinishHandle::start(move || {
        let device =
            engine::device::open(&device_spec).map_err(|e| EngineError::Failed(e.to_string()))?;
        Ok(Finishers::new(settings, device))
    })
    .context("starting the finishing thread")
}

/// Build the worker around an engine (or none, for mockup-only local runs).
pub fn build_worker(
    config: &Config,
    engine: Option<EngineHandle>,
    door: Door,
    default_destination: String,
) -> anyhow::Result<Worker> {
    let mut parts = build_parts(config, door, default_destination)?;
    parts.finisher = Some(finisher(config, engine.as_ref())?);
    Ok(Worker::new(engine, parts))
}

/// The mockup library for `config`'s templates, loaded once per process (and shared, so that the
/// layers `prewarm_mockups` draws are the ones jobs use).
fn mockup_library(config: &Config) -> anyhow::Result<Arc<MockupLibrary>> {
    type Loaded = std::sync::Mutex<Option<(Option<std::path::PathBuf>, Arc<MockupLibrary>)>>;
    static LOADED: Loaded = std::sync::Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((dir, lib)) = loaded.as_ref() {
        if *dir == config.templates {
            return Ok(lib.clone());
        }
    }
    let lib = Arc::new(
        MockupLibrary::load(config.templates.as_deref()).context("loading mockup templates")?,
    );
    *loaded = Some((config.templates.clone(), lib.clone()));
    Ok(lib)
}

fn prewarm(config: &Config, mockups: &Arc<MockupLibrary>) {
    static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if STARTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    // `Config::check` refused a setting it cannot read at start-up.
    match config.mockup_warmup().unwrap_or(MockupWarmup::All) {
        MockupWarmup::All => warm_in_background(mockups.clone(), None),
        MockupWarmup::Only(pairs) => {
            let known = mockups.products();
            for (product, _) in pairs.iter().filter(|(p, _)| !known.contains(&p.as_str())) {
                tracing::warn!(product = %product, known = %known.join(", "), "MERCHGEN_MOCKUP_WARMUP names a product this worker does not have; skipped");
            }
            warm_in_background(mockups.clone(), Some(pairs));
        }
    }
}

/// Draw the layers of these (product, size) pairs (every product at its canvas size for
/// `None`) on a thread of their own, outside rayon's pool (see `MockupLibrary::warm`), and log
/// when they are ready.
fn warm_in_background(lib: Arc<MockupLibrary>, wanted: Option<Vec<(String, Option<u32>)>>) {
    if wanted.as_ref().is_some_and(Vec::is_empty) {
        return;
    }
    std::thread::spawn(move || {
        let t = std::time::Instant::now();
        match &wanted {
            None => lib.warm(None),
            Some(pairs) => lib.warm_products(pairs),
        }
        tracing::info!(
            elapsed_ms = t.elapsed().as_millis() as u64,
            products = wanted.as_ref().map_or(lib.products().len(), Vec::len),
            "mockup layers ready"
        );
    });
}

/// Draw the products' layers (`MERCHGEN_MOCKUP_WARMUP`, every product by default) in the
/// background from process start, while the model loads, so the first mockup job does not pay
/// for them (a template's layers are drawn once; a job that needs one still being drawn waits
/// for it). Errors in custom templates surface when the worker is built.
pub(crate) fn prewarm_mockups(config: &Config) {
    if let Ok(lib) = mockup_library(config) {
        prewarm(config, &lib);
    }
}

/// Draw the layers of the (product, size) pairs an event file's jobs ask for, in the background
/// (while `invoke` loads the model, or while the first job reads its design); a job needing one
/// still being drawn waits for it, so nothing is drawn twice.
pub(crate) fn prewarm_mockups_for(config: &Config, wanted: Vec<(String, Option<u32>)>) {
    if let Ok(lib) = mockup_library(config) {
        warm_in_background(lib, Some(wanted));
    }
}

/// Everything the worker needs besides the engine (callers may adjust it before `Worker::new`).
pub(crate) fn build_parts(
    config: &Config,
    door: Door,
    default_destination: String,
) -> anyhow::Result<WorkerParts> {
    let fetcher = Fetcher::new(config.fetch_config(door == Door::Invoke))
        .context("starting the HTTP client for inputs")?;
    let webhook_config = config.webhook_config();
    let progress_attempts = webhook_config.max_attempts;
    let notifier = HttpNotifier::new(webhook_config).context("starting the webhook client")?;
    let mockups = mockup_library(config)?;
    if door == Door::Deployed {
        // Doors call `prewarm_mockups` before loading the model; this covers the rest.
        prewarm(config, &mockups);
    }
    let mut limits = config.limits();
    if door == Door::Invoke {
        // The operator's own command: no allow-lists.
        limits.output_allow = None;
        limits.input_s3_allow = None;
    }
    Ok(WorkerParts {
        fetcher,
        webhooks: Arc::new(WebhookQueue::start(
            Arc::new(notifier),
            QueueLimits {
                receivers: WEBHOOK_RECEIVERS,
                per_receiver: WEBHOOK_QUEUE_PER_RECEIVER,
                progress_attempts,
            },
        )),
        mockups,
        output: config.output_config(),
        default_destination,
        limits,
        initial_noise: None,
        dump_latents: None,
        finisher: None,
        device_memory_gb: config.device_memory_gb,
        loras: config.lora_settings(),
    })
}
