//! The one pipeline every door calls: validate (`rejected` tells the client of a job that
//! fails it), answer a redelivery from `result.json` (`replay`), produce the job's files
//! (`produce`: budget and admission checks, the `generation` stage, `finishing`, `images`,
//! `mockups`), then conclude it (`conclude`: `result.json`, the completion webhook).
//! `contract` maps the few values the job contract and the engine both speak of.
//!
//! It knows nothing about doors or devices; the engine thread owns the device.

/// Denoising progress of a job (step, total), as a door receives it on `JobRequest::progress`.
pub use crate::engine::thread::Progress;
use crate::engine::EngineHandle;
use crate::error::{ErrorCode, JobError};
use crate::fetch::Fetcher;
use crate::job::outcome::JobOutcome;
use crate::job::parse;
use crate::job::validate;
use crate::job::{GenerationDefaults, Limits, ValidJob};
use crate::mockup::MockupLibrary;
use crate::output::{self, OutputConfig};
use crate::webhook::{WebhookEvent, WebhookQueue};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

mod admission;
mod budget;
mod conclude;
mod contract;
mod finishing;
mod generation;
mod images;
pub(crate) mod loras;
mod mockups;
pub(crate) mod print;
mod produce;
mod rejected;
pub mod replay;

/// A job cancelled at or after its deadline timed out; the error says so.
fn past_deadline(error: JobError, req: &JobRequest) -> JobError {
    match req.deadline {
        Some(at) if error.code == ErrorCode::Cancelled && Instant::now() >= at => JobError::new(
            ErrorCode::Timeout,
            "the job ran past its deadline (MERCHGEN_JOB_TIMEOUT, the door's execution timeout or the function's remaining time) and was stopped",
        ),
        _ => error,
    }
}

/// One job as a door hands it over.
#[derive(Debug)]
pub struct JobRequest {
    /// The job body, unparsed (so one bad record fails alone).
    pub body: serde_json::Value,
    /// The delivery's id (RunPod job id, SQS message id, a fresh UUID); the default job id.
    pub(crate) delivery_id: String,
    /// When the door received it (for `timings_ms.queued`).
    pub received: Instant,
    /// Set to cancel between denoising steps.
    pub cancel: Arc<AtomicBool>,
    /// When the job must be done (the door runtime cancels it then): a job cancelled after it
    /// ends as `timeout`, not `cancelled`.
    pub deadline: Option<Instant>,
    /// Receives denoising progress when the door reports it.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
    /// Output settings the door brings for this delivery (RunPod's bucket or `s3Config`);
    /// `None` uses the worker's own.
    pub output: Option<OutputOverride>,
    /// Which delivery of the job this is (1 at first).
    pub(crate) attempt: u32,
    /// The door hands the job out again after a retryable failure (an SQS message before its
    /// `maxReceiveCount`): such a failure is announced as `job.retrying`, not `job.failed`.
    pub(crate) retried_on_failure: bool,
}

/// A door's output settings for one delivery: the destination of a job that names none, and
/// the S3 settings (endpoint, credentials) of its sink.
#[derive(Debug, Clone)]
pub struct OutputOverride {
    pub destination: String,
    pub config: OutputConfig,
}

impl JobRequest {
    pub fn new(body: serde_json::Value, delivery_id: impl Into<String>) -> Self {
        JobRequest {
            body,
            delivery_id: delivery_id.into(),
            received: Instant::now(),
            cancel: Arc::new(AtomicBool::new(false)),
            deadline: None,
            progress: None,
            output: None,
            attempt: 1,
            retried_on_failure: false,
        }
    }

    /// The id the job's webhooks name: its own `id` when usable, else the delivery's.
    pub(crate) fn job_id(&self) -> String {
        job_id_hint(&self.body).unwrap_or_else(|| self.delivery_id.clone())
    }
}

/// What the worker needs besides the engine.
pub struct WorkerParts {
    pub fetcher: Fetcher,
    /// Webhook deliveries, in the background (`WebhookQueue`).
    pub webhooks: Arc<WebhookQueue>,
    pub mockups: Arc<MockupLibrary>,
    pub output: OutputConfig,
    /// Destination of jobs that name none.
    pub(crate) default_destination: String,
    pub limits: Limits,
    /// `merchgen invoke --initial-noise`: start every generation from these numbers.
    pub initial_noise: Option<crate::engine::NoiseOverride>,
    /// `merchgen invoke --dump-latents`: save the final latents of every generation here.
    pub dump_latents: Option<std::path::PathBuf>,
    /// `MERCHGEN_DEVICE_MEMORY_GB`: the device's memory for the admission check, when the
    /// device cannot tell (or to leave room for others).
    pub(crate) device_memory_gb: Option<f64>,
    /// The matting and upscaling models (on the engine thread, or a thread of their own on a
    /// worker without a generator); None fails jobs that need them with `model_unavailable`.
    pub(crate) finisher: Option<crate::engine::FinishHandle>,
    /// The LoRA cache and fetch limits.
    pub loras: loras::LoraSettings,
}

/// The pipeline. Cheap to share behind an `Arc`.
pub struct Worker {
    /// None when this process serves mockup-only jobs without a model.
    engine: Option<EngineHandle>,
    parts: WorkerParts,
    /// What validation fills in from the model (FLUX.1-schnell's without one).
    defaults: GenerationDefaults,
    cold: AtomicBool,
    /// Jobs (by `spec_sha256`) that ran this device out of memory: not tried again here.
    out_of_memory: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Worker {
    pub fn new(engine: Option<EngineHandle>, parts: WorkerParts) -> Self {
        let defaults = engine
            .as_ref()
            .map(|e| GenerationDefaults::from(&e.load_report().defaults))
            .unwrap_or_default();
        Worker {
            engine,
            parts,
            defaults,
            cold: AtomicBool::new(true),
            out_of_memory: Default::default(),
        }
    }

    pub fn engine(&self) -> Option<&EngineHandle> {
        self.engine.as_ref()
    }

    /// True once a generation failed in a way that may leave the device unusable (a CUDA
    /// error, a dead engine thread): the door should ask for this worker to be replaced.
    pub(crate) fn device_broken(&self) -> bool {
        self.engine
            .as_ref()
            .is_some_and(EngineHandle::device_broken)
    }

    /// Run one job to its outcome. Never panics on bad input; every failure is an outcome.
    pub async fn handle(&self, req: JobRequest) -> JobOutcome {
        let fallback_id = req.job_id();
        let job = match self.validate(&req) {
            Ok(job) => job,
            Err(e) => return self.reject(fallback_id, e, &req.body).await,
        };
        let span = tracing::info_span!("job", id = %job.id);
        // Boxed: the pipeline's future is deep (a plain build's layout queries overflow
        // otherwise).
        let outcome = Box::pin(self.run(&job, &req))
            .instrument(span.clone())
            .await;
        let status = if outcome.succeeded() {
            "succeeded"
        } else {
            "failed"
        };
        tracing::info!(parent: &span, status, replayed = outcome.replayed, "job finished");
        outcome
    }

    fn validate(&self, req: &JobRequest) -> Result<ValidJob, JobError> {
        let spec = parse::job_from_value(req.body.clone())?;
        validate::validate(spec, &req.delivery_id, &self.parts.limits, &self.defaults)
    }

    async fn run(&self, job: &ValidJob, req: &JobRequest) -> JobOutcome {
        let (default_destination, output_cfg) = match &req.output {
            Some(o) => (&o.destination, &o.config),
            None => (&self.parts.default_destination, &self.parts.output),
        };
        let destination = job
            .output
            .destination
            .as_deref()
            .unwrap_or(default_destination);
        let sink = match output::open_sink(destination, output_cfg).await {
            Ok(sink) => sink,
            Err(e) => return self.conclude_failed(job, req, e).await,
        };
        match self.replay(job, sink.as_ref()).await {
            Some(Ok(stored)) => return stored,
            Some(Err(conflict)) => return self.conclude_failed(job, req, conflict).await,
            None => {}
        }
        if let Some(hook) = &job.webhook {
            self.parts
                .webhooks
                .send(hook, WebhookEvent::started(&job.id), None);
        }
        match self.produce(job, req, sink.as_ref()).await {
            Ok(outcome) => self.conclude_succeeded(job, req, outcome, &sink).await,
            Err(e) => self.conclude_failed(job, req, past_deadline(e, req)).await,
        }
    }

    /// Wait at most `limit` until the webhook events of job `id` are delivered or given up.
    pub(crate) async fn webhooks_settled(&self, id: &str, limit: std::time::Duration) -> bool {
        self.parts.webhooks.job_settled(id, limit).await
    }

    /// Wait up to `grace` for webhook deliveries still queued (at shutdown); the rest is
    /// recorded as not delivered. Returns how many were
    /// left after the grace.
    pub async fn drain_webhooks(&self, grace: std::time::Duration) -> usize {
        self.parts.webhooks.drain(grace).await
    }
}

/// The job's own id when the body has a usable one, so even invalid jobs report it.
fn job_id_hint(body: &serde_json::Value) -> Option<String> {
    let id = body.get("id")?.as_str()?;
    let ok = (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| id.to_owned())
}
