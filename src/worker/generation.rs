//! The generation stage: the job's photo and LoRAs fetched, the job turned into the engine's
//! `GenerateRequest` (`contract.rs` maps the types), the request handed to the engine thread
//! with a progress channel that feeds the door and `job.progress` webhooks, and the stage
//! timings taken from what the engine reports. A job that ran the device out of memory is
//! remembered and not tried again on this worker.

use super::{loras, JobRequest, Worker};
use crate::engine::thread::Progress;
use crate::engine::{
    EngineError, EngineHandle, GenerateOutput, GenerateRequest, InitImage, LoraInput,
};
use crate::error::{ErrorCode, JobError};
use crate::job::outcome::Timings;
use crate::job::spec::WebhookEventKind;
use crate::job::ValidGeneration;
use crate::job::ValidJob;
use crate::webhook::WebhookEvent;
use std::time::Instant;

impl Worker {
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

    /// The generation stage: the engine's request (photo and LoRAs fetched), run on the engine
    /// thread, with the stage timings of what it reports.
    pub(super) async fn generate(
        &self,
        gen: &ValidGeneration,
        max_batch: Option<u32>,
        job: &ValidJob,
        req: &JobRequest,
        timings: &mut Timings,
    ) -> Result<GenerateOutput, JobError> {
        let request = self.engine_request(gen, max_batch, timings).await?;
        let progress = self.progress_forwarder(job, req);
        let engine = self.engine_or_unavailable()?;
        let t = Instant::now();
        // Handed to the engine thread (it may wait there behind the jobs ahead of it).
        tracing::info!(stage = "generate", "stage started");
        let out = engine
            .generate(request, req.cancel.clone(), progress)
            .await
            .map_err(|e| self.generation_error(e, gen, job, t))?;
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

    /// The job as the engine's request: its photo fetched (an edit without a size gets Kontext's
    /// resolution nearest the photo's aspect ratio) and its LoRAs in the cache.
    async fn engine_request(
        &self,
        gen: &ValidGeneration,
        max_batch: Option<u32>,
        timings: &mut Timings,
    ) -> Result<GenerateRequest, JobError> {
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
                    fit: init.fit.into(),
                    edit: init.edit,
                })
            }
            None => None,
        };
        let loras = self.lora_inputs(gen, timings).await?;
        let (width, height) = match &init {
            Some(i) if gen.size_from_image => {
                crate::engine::flux::kontext::preferred_size(i.image.width(), i.image.height())
            }
            _ => (gen.width, gen.height),
        };
        Ok(GenerateRequest {
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
            true_cfg: gen.true_cfg.as_ref().map(Into::into),
            loras,
        })
    }

    /// The job's LoRAs as cached files (fetched once per volume).
    async fn lora_inputs(
        &self,
        gen: &ValidGeneration,
        timings: &mut Timings,
    ) -> Result<Vec<LoraInput>, JobError> {
        if gen.loras.is_empty() {
            return Ok(Vec::new());
        }
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
        Ok(inputs)
    }

    /// The job's error for an engine failure: only what a customer may see; the cause goes to
    /// the log, and a job that ran the device out of memory is remembered.
    fn generation_error(
        &self,
        e: EngineError,
        gen: &ValidGeneration,
        job: &ValidJob,
        started: Instant,
    ) -> JobError {
        match &e {
            EngineError::Cancelled => tracing::info!(stage = "generate", "stage cancelled"),
            EngineError::OutOfMemory(cause) => {
                tracing::error!(stage = "generate", %cause, width = gen.width, height = gen.height, num_images = gen.num_images, "the device ran out of memory; this job is not tried again on this worker");
                self.remember_oom(job);
            }
            e => {
                tracing::error!(stage = "generate", cause = %e, device_broken = e.device_broken(), elapsed_ms = started.elapsed().as_millis() as u64, "stage failed")
            }
        }
        JobError::from(e)
    }

    /// A progress channel that feeds the door's channel and, if subscribed, `job.progress` hooks.
    fn progress_forwarder(
        &self,
        job: &ValidJob,
        req: &JobRequest,
    ) -> Option<tokio::sync::mpsc::UnboundedSender<Progress>> {
        let hook = job
            .webhook
            .clone()
            .filter(|h| h.events.contains(&WebhookEventKind::Progress));
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

    /// Refuse a job that already ran this device out of memory (retryable: a worker with more
    /// memory may take it; a queue dead-letters it after its receive limit).
    pub(super) fn check_not_oom_before(&self, job: &ValidJob) -> Result<(), JobError> {
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
}
