//! The one pipeline every door calls: validate, answer a redelivery from `result.json`, fetch
//! inputs, generate, render mockups, store outputs, write `result.json`, notify. It knows nothing
//! about doors or devices; the engine thread owns the device.

use crate::engine::thread::Progress;
use crate::engine::{EngineHandle, GenerateOutput, GenerateRequest, InitImage};
use crate::error::{ErrorCode, JobError};
use crate::fetch::Fetcher;
use crate::job::finishing::Finishing;
use crate::job::outcome::{JobOutcome, Timings};
use crate::job::validate::{self, GenerationDefaults, Limits, ValidJob};
use crate::job::{parse, ValidGeneration};
use crate::mockup::MockupLibrary;
use crate::output::{self, OutputConfig, OutputSink};
use crate::webhook::{WebhookEvent, WebhookQueue};
use image::RgbaImage;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

mod admission;
mod budget;
mod finishing;
mod images;
pub mod loras;
mod mockups;
mod rejected;

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
    pub delivery_id: String,
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
        }
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
    pub default_destination: String,
    pub limits: Limits,
    pub defaults: GenerationDefaults,
    /// `merchgen invoke --initial-noise`: start every generation from these numbers.
    pub initial_noise: Option<crate::engine::NoiseOverride>,
    /// `merchgen invoke --dump-latents`: save the final latents of every generation here.
    pub dump_latents: Option<std::path::PathBuf>,
    /// `MERCHGEN_DEVICE_MEMORY_GB`: the device's memory for the admission check, when the
    /// device cannot tell (or to leave room for others).
    pub device_memory_gb: Option<f64>,
    /// The matting and upscaling models (on the engine thread, or a thread of their own on a
    /// worker without a generator); None fails jobs that need them with `model_unavailable`.
    pub finisher: Option<crate::engine::FinishHandle>,
    /// The LoRA cache and fetch limits.
    pub loras: loras::LoraSettings,
}

/// The pipeline. Cheap to share behind an `Arc`.
pub struct Worker {
    /// None when this process serves mockup-only jobs without a model.
    engine: Option<EngineHandle>,
    parts: WorkerParts,
    cold: AtomicBool,
    /// Jobs (by `spec_sha256`) that ran this device out of memory: not tried again here.
    out_of_memory: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl Worker {
    pub fn new(engine: Option<EngineHandle>, parts: WorkerParts) -> Self {
        Worker {
            engine,
            parts,
            cold: AtomicBool::new(true),
            out_of_memory: Default::default(),
        }
    }

    pub fn engine(&self) -> Option<&EngineHandle> {
        self.engine.as_ref()
    }

    /// Which literal addresses URLs a delivery brings may name (`MERCHGEN_FETCH_ALLOW`).
    pub fn address_policy(&self) -> &crate::fetch::guard::AddressPolicy {
        &self.parts.limits.addresses
    }

    /// True once a generation failed in a way that may leave the device unusable (a CUDA
    /// error, a dead engine thread): the door should ask for this worker to be replaced.
    pub fn device_broken(&self) -> bool {
        self.engine
            .as_ref()
            .is_some_and(EngineHandle::device_broken)
    }

    /// Not retryable: the same delivery to the same model-less worker can never generate.
    fn engine_or_unavailable(&self) -> Result<&EngineHandle, JobError> {
        self.engine.as_ref().ok_or_else(|| {
            JobError::new(
                ErrorCode::ModelUnavailable,
                "this worker has no model (MERCHGEN_MODEL=none): it serves mockup-only and print-file jobs; route generation jobs to a queue served by GPU workers",
            )
            .with_retryable(false)
        })
    }

    /// Run one job to its outcome. Never panics on bad input; every failure is an outcome.
    pub async fn handle(&self, req: JobRequest) -> JobOutcome {
        let fallback_id = job_id_hint(&req.body).unwrap_or_else(|| req.delivery_id.clone());
        let job = match self.validate(&req) {
            Ok(job) => job,
            Err(e) => return self.reject(fallback_id, e, &req.body).await,
        };
        let span = tracing::info_span!("job", id = %job.id);
        let outcome = self.run(&job, &req).instrument(span.clone()).await;
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
        validate::validate(
            spec,
            &req.delivery_id,
            &self.parts.limits,
            &self.parts.defaults,
        )
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
            Err(e) => return self.finish_failed(job, e).await,
        };
        if let Some(mut stored) = output::load_succeeded(sink.as_ref(), &job.id).await {
            if stored
                .job_sha256
                .as_ref()
                .is_some_and(|theirs| *theirs != job.spec_sha256)
            {
                let error = JobError {
                    field: Some("id".to_owned()),
                    ..JobError::new(
                        ErrorCode::JobIdConflict,
                        "id: a different job with this id has already succeeded; give each job its own id",
                    )
                };
                return self.finish_failed(job, error).await;
            }
            tracing::info!(job_id = %job.id, "already succeeded; answering from result.json");
            output::refresh_urls(sink.as_ref(), &mut stored).await;
            stored.replayed = true;
            if let Some(hook) = &job.webhook {
                self.parts
                    .webhooks
                    .send(hook, WebhookEvent::finished(&stored), None);
            }
            return stored;
        }
        if let Some(hook) = &job.webhook {
            self.parts
                .webhooks
                .send(hook, WebhookEvent::started(&job.id), None);
        }
        match self.produce(job, req, sink.as_ref()).await {
            Ok(outcome) => self.finish_succeeded(job, outcome, &sink).await,
            Err(e) => self.finish_failed(job, past_deadline(e, req)).await,
        }
    }

    /// Generate (or fetch the design), render mockups, store every file.
    async fn produce(
        &self,
        job: &ValidJob,
        req: &JobRequest,
        sink: &dyn OutputSink,
    ) -> Result<JobOutcome, JobError> {
        let started = Instant::now();
        let mut timings = Timings {
            queued: Some(req.received.elapsed().as_millis() as u64),
            ..Timings::default()
        };
        let cold = self.cold.swap(false, Ordering::Relaxed);
        if let (true, Some(engine)) = (cold, &self.engine) {
            timings.load = Some(engine.load_report().load_ms);
        }
        let mut outcome = JobOutcome::started(job.id.clone());
        outcome.cold_start = cold;

        // Products, colours and the pixel budget are checked before any GPU work.
        let renders = match &job.mockups {
            Some(spec) => mockups::plan(&self.parts.mockups, spec)?,
            None => Vec::new(),
        };
        // Memory admission, before any work: at most this many images at once.
        let mut max_batch = None;
        if let Some(gen) = &job.generation {
            self.check_budget(job, &renders, gen.num_images, (gen.width, gen.height))?;
            self.check_not_oom_before(job)?;
            max_batch = admission::admit(self.engine.as_ref(), self.parts.device_memory_gb, gen)?;
        }
        finishing::prepare(
            self.parts.finisher.as_ref(),
            &job.finishing,
            &req.cancel,
            &mut timings,
        )
        .await?;
        let (designs, seeds): (Vec<RgbaImage>, Vec<Option<u64>>) =
            match (&job.generation, &job.design) {
                (Some(gen), _) => {
                    let generated = self
                        .generate(gen, max_batch, job, req, &mut timings)
                        .await?;
                    outcome.seed = Some(gen.seed);
                    outcome.model = self.engine.as_ref().map(|e| e.load_report().info.clone());
                    generated
                        .images
                        .into_iter()
                        .map(|g| (g.image, Some(g.seed)))
                        .unzip()
                }
                (None, Some(design)) => {
                    let t = Instant::now();
                    let image = self.parts.fetcher.fetch_image(design, "design").await?;
                    timings.fetch_inputs = Some(t.elapsed().as_millis() as u64);
                    self.check_budget(job, &renders, 1, image.dimensions())?;
                    (vec![image], vec![None])
                }
                (None, None) => {
                    return Err(JobError::internal(
                        "validated job has neither prompt nor design",
                    ))
                }
            };
        let finishing = &job.finishing;
        let designs = finishing::run(
            self.parts.finisher.as_ref(),
            finishing,
            designs,
            &req.cancel,
            &mut timings,
        )
        .await?;
        let designs: Vec<(RgbaImage, Option<u64>)> = designs.into_iter().zip(seeds).collect();
        // A mockup-only job stores its design too once finishing changed it (the cut-out).
        if job.generation.is_some() || *finishing != Finishing::default() {
            outcome.images = images::store(job, &designs, sink, &mut timings).await?;
        }
        if let Some(spec) = &job.mockups {
            let t = Instant::now();
            let images = designs.into_iter().map(|(img, _)| img).collect();
            outcome.mockups =
                mockups::render_and_store(&self.parts.mockups, job, spec, &renders, images, sink)
                    .await?;
            let ms = t.elapsed().as_millis() as u64;
            timings.mockups = Some(ms);
            tracing::info!(
                stage = "mockups",
                files = outcome.mockups.len(),
                elapsed_ms = ms,
                "stage finished"
            );
        }
        timings.total = started.elapsed().as_millis() as u64 + timings.queued.unwrap_or(0);
        outcome.timings_ms = Some(timings);
        Ok(outcome)
    }

    /// The job's output pixels against the worker's budget (`design` is one image's size
    /// before upscaling).
    fn check_budget(
        &self,
        job: &ValidJob,
        renders: &[mockups::Render],
        images: u32,
        design: (u32, u32),
    ) -> Result<(), JobError> {
        let factor = u64::from(job.finishing.upscale.unwrap_or(1));
        let n = u64::from(images);
        let (mockup_px, print_px) = match &job.mockups {
            Some(spec) => {
                mockups::pixels_per_design(&self.parts.mockups, renders, spec, job.output.print_dpi)
            }
            None => (0, 0),
        };
        let pixels = budget::JobPixels {
            images: n * u64::from(design.0) * u64::from(design.1) * factor * factor,
            mockups: n * mockup_px,
            prints: n * print_px,
        };
        let fields = budget::BudgetFields {
            images: if job.finishing.upscale.is_some() {
                "upscale"
            } else {
                "num_images"
            },
            mockups: if job.mockups.as_ref().is_some_and(|m| m.size.is_some()) {
                "mockups.size"
            } else {
                "mockups.products"
            },
            prints: "output.print_dpi",
        };
        budget::check(pixels, self.parts.limits.max_job_pixels, fields)
    }

    async fn generate(
        &self,
        gen: &ValidGeneration,
        max_batch: Option<u32>,
        job: &ValidJob,
        req: &JobRequest,
        timings: &mut Timings,
    ) -> Result<GenerateOutput, JobError> {
        let init = match &gen.init_image {
            Some(init) => {
                let t = Instant::now();
                let image = self
                    .parts
                    .fetcher
                    .fetch_image(&init.source, "image")
                    .await?;
                timings.fetch_inputs = Some(t.elapsed().as_millis() as u64);
                Some(InitImage {
                    image,
                    strength: init.strength,
                    fit: match init.fit {
                        crate::job::spec::ImageFit::Cover => {
                            crate::engine::flux::img2img::ImageFit::Cover
                        }
                        crate::job::spec::ImageFit::Contain => {
                            crate::engine::flux::img2img::ImageFit::Contain
                        }
                    },
                    edit: init.edit,
                })
            }
            None => None,
        };
        let lora_inputs = if gen.loras.is_empty() {
            Vec::new()
        } else {
            let t = Instant::now();
            let (inputs, counts) =
                loras::resolve(&gen.loras, &self.parts.fetcher, &self.parts.loras).await?;
            tracing::info!(
                stage = "fetch_loras",
                cached = counts.cached,
                fetched = counts.fetched,
                elapsed_ms = t.elapsed().as_millis() as u64,
                "stage finished"
            );
            *timings.fetch_inputs.get_or_insert(0) += t.elapsed().as_millis() as u64;
            inputs
        };
        // An edit without a size: Kontext's resolution nearest the photo's aspect ratio.
        let (width, height) = match &init {
            Some(i) if gen.size_from_image => {
                crate::engine::flux::kontext::preferred_size(i.image.width(), i.image.height())
            }
            _ => (gen.width, gen.height),
        };
        let request = GenerateRequest {
            prompt: gen.prompt.clone(),
            width,
            height,
            steps: gen.steps,
            guidance: gen.guidance,
            seed: gen.seed,
            num_images: gen.num_images,
            max_sequence_length: gen.max_sequence_length,
            init,
            noise: self.parts.initial_noise.clone(),
            dump_latents: self.parts.dump_latents.clone(),
            max_batch,
            true_cfg: gen.true_cfg.clone(),
            loras: lora_inputs,
        };
        let progress = self.progress_forwarder(job, req);
        let engine = self.engine_or_unavailable()?;
        let t = Instant::now();
        // Handed to the engine thread (it may wait there behind the jobs ahead of it).
        tracing::info!(stage = "generate", "stage started");
        let out = engine
            .generate(request, req.cancel.clone(), progress)
            .await
            .map_err(|e| {
                // The job's error says only what a customer may see; the cause goes to the log.
                match &e {
                    crate::engine::EngineError::Cancelled => {
                        tracing::info!(stage = "generate", "stage cancelled")
                    }
                    crate::engine::EngineError::OutOfMemory(cause) => {
                        tracing::error!(stage = "generate", %cause, width = gen.width, height = gen.height, num_images = gen.num_images, "the device ran out of memory; this job is not tried again on this worker");
                        self.remember_oom(job);
                    }
                    e => tracing::error!(stage = "generate", cause = %e, device_broken = e.device_broken(), elapsed_ms = t.elapsed().as_millis() as u64, "stage failed"),
                }
                JobError::from(e)
            })?;
        tracing::info!(
            stage = "generate",
            images = out.images.len(),
            elapsed_ms = t.elapsed().as_millis() as u64,
            "stage finished"
        );
        timings.encode_text = Some(out.timings.encode_text_ms);
        if !gen.loras.is_empty() {
            timings.lora_load = Some(out.timings.lora_load_ms);
            timings.lora_apply = Some(out.timings.lora_apply_ms);
        }
        if gen.init_image.is_some() {
            timings.encode_image = Some(out.timings.encode_image_ms);
        }
        timings.denoise = Some(out.timings.denoise_ms);
        timings.decode = Some(out.timings.decode_ms);
        Ok(out)
    }

    /// A progress channel that feeds the door's channel and, if subscribed, `job.progress` hooks.
    fn progress_forwarder(
        &self,
        job: &ValidJob,
        req: &JobRequest,
    ) -> Option<tokio::sync::mpsc::UnboundedSender<Progress>> {
        let hook = job.webhook.clone().filter(|h| {
            h.events
                .contains(&crate::job::spec::WebhookEventKind::Progress)
        });
        if hook.is_none() && req.progress.is_none() {
            return None;
        }
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
        let door = req.progress.clone();
        let webhooks = self.parts.webhooks.clone();
        let job_id = job.id.clone();
        tokio::spawn(async move {
            while let Some(p) = rx.recv().await {
                if let Some(door) = &door {
                    let _ = door.send(p);
                }
                if let Some(hook) = &hook {
                    webhooks.send(hook, WebhookEvent::progress(&job_id, p.step, p.total), None);
                }
            }
        });
        Some(tx)
    }

    async fn finish_succeeded(
        &self,
        job: &ValidJob,
        mut outcome: JobOutcome,
        sink: &Arc<dyn OutputSink>,
    ) -> JobOutcome {
        outcome.job_sha256 = Some(job.spec_sha256.clone());
        // result.json is written after every output, so its presence means the job is complete.
        if let Err(e) = output::store_result(sink.as_ref(), &outcome).await {
            return self.finish_failed(job, e.into()).await;
        }
        if let Some(hook) = &job.webhook {
            // Delivered in the background; a delivery that fails for good is recorded in
            // result.json then, so the next replay says so.
            let (sink, stored) = (sink.clone(), outcome.clone());
            let on_report: crate::webhook::OnReport = Box::new(move |report| {
                Box::pin(async move {
                    if report.delivered || report.attempts == 0 && report.error.is_none() {
                        return;
                    }
                    tracing::warn!(job_id = %stored.id, error = report.error.as_deref(), "completion webhook could not be delivered; recorded in result.json");
                    let mut stored = stored;
                    stored.webhook = Some(report);
                    if let Err(e) = output::store_result(sink.as_ref(), &stored).await {
                        tracing::warn!(job_id = %stored.id, error = %e, "could not record the webhook failure");
                    }
                })
            });
            self.parts
                .webhooks
                .send(hook, WebhookEvent::finished(&outcome), Some(on_report));
        }
        outcome
    }

    /// Refuse a job that already ran this device out of memory (retryable: a worker with more
    /// memory may take it; a queue dead-letters it after its receive limit).
    fn check_not_oom_before(&self, job: &ValidJob) -> Result<(), JobError> {
        let seen = self
            .out_of_memory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&job.spec_sha256);
        if seen {
            return Err(JobError::new(
                ErrorCode::GpuOutOfMemory,
                "this worker already ran out of device memory on this job and does not try it again; try fewer images or a smaller size",
            ));
        }
        Ok(())
    }

    fn remember_oom(&self, job: &ValidJob) {
        let mut seen = self.out_of_memory.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= 256 {
            seen.pop_front();
        }
        seen.push_back(job.spec_sha256.clone());
    }

    /// Wait at most `limit` until the webhook events of job `id` are delivered or given up.
    pub async fn webhooks_settled(&self, id: &str, limit: std::time::Duration) -> bool {
        self.parts.webhooks.job_settled(id, limit).await
    }

    /// Wait up to `grace` for webhook deliveries still queued (at shutdown); the rest is
    /// recorded as not delivered. Returns how many were
    /// left after the grace.
    pub async fn drain_webhooks(&self, grace: std::time::Duration) -> usize {
        self.parts.webhooks.drain(grace).await
    }

    async fn finish_failed(&self, job: &ValidJob, error: JobError) -> JobOutcome {
        tracing::warn!(job_id = %job.id, code = %error.code, message = %error.message, "job failed");
        let outcome = JobOutcome::failed(job.id.clone(), error);
        if let Some(hook) = &job.webhook {
            self.parts
                .webhooks
                .send(hook, WebhookEvent::finished(&outcome), None);
        }
        outcome
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
