//! Running a request on a loaded `FluxPipeline` (the `Generator` seam): the job's LoRAs, the
//! prompt's (and negative prompt's) embeddings, where denoising starts (pure noise, a photo
//! noised part-way for image-to-image, or a Kontext reference beside the latents), then batch by
//! batch: noise from the seed, denoise, decode.

use super::denoise::{save_latents, Conditioning, Control};
use super::pipeline::FluxPipeline;
use super::{img2img, kontext, weights};
use crate::engine::{
    BatchMember, EngineError, GenerateOutput, GenerateRequest, GeneratedImage, Generator,
    LoadReport, StageTimings, StepCallback,
};
use candle_core::Tensor;
use candle_transformers::models::flux::sampling;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// The prompt's T5 and CLIP embeddings, and the negative prompt's with the true-CFG scale.
type Prompts = ((Tensor, Tensor), Option<((Tensor, Tensor), f64)>);

/// Where denoising starts: the schedule index, the photo's latents (image-to-image) and the
/// reference tokens (a Kontext edit).
struct Start {
    t_start: usize,
    x0: Option<Tensor>,
    reference: Option<kontext::Reference>,
}

impl FluxPipeline {
    /// The request's prompt and negative prompt, encoded.
    fn prompts(&mut self, req: &GenerateRequest) -> Result<Prompts, EngineError> {
        let c = EngineError::from_candle;
        let text = self.encode_text(req).map_err(c)?;
        let negative = match &req.true_cfg {
            Some(cfg) => Some((
                self.encode_prompt(&cfg.negative_prompt, req.max_sequence_length)
                    .map_err(c)?,
                cfg.scale,
            )),
            None => None,
        };
        Ok((text, negative))
    }

    /// Where the request's denoising starts, and how long encoding its photo took.
    fn start(
        &self,
        req: &GenerateRequest,
        timings: &mut StageTimings,
    ) -> Result<Start, EngineError> {
        let c = EngineError::from_candle;
        let mut start = Start {
            t_start: 0,
            x0: None,
            reference: None,
        };
        let Some(init) = &req.init else {
            return Ok(start);
        };
        let t = Instant::now();
        if init.edit {
            let vae = (self.vae_dtype, self.vae_shift, self.vae_scale);
            start.reference = Some(
                kontext::Reference::encode(&self.vae_encoder, &init.image, vae, &self.device)
                    .map_err(c)?,
            );
        } else {
            start.t_start =
                img2img::start_index(req.steps as usize, init.strength).ok_or_else(|| {
                    EngineError::Invalid {
                        field: "strength".into(),
                        message: "is too small to keep any denoising step".into(),
                    }
                })?;
            start.x0 = Some(self.encode_image(init, req).map_err(c)?);
        }
        timings.encode_image_ms = t.elapsed().as_millis() as u64;
        Ok(start)
    }
}

impl Generator for FluxPipeline {
    fn load_report(&self) -> &LoadReport {
        &self.report
    }

    fn free_memory(&self) -> Option<u64> {
        weights::free_device_memory(&self.device)
    }

    fn batch_images(&self) -> usize {
        self.max_batch
    }

    fn generate_batch(
        &mut self,
        members: &mut [BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        self.generate_together(members)
    }

    fn generate(
        &mut self,
        req: &GenerateRequest,
        cancel: &AtomicBool,
        on_step: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        let c = EngineError::from_candle;
        let mut timings = StageTimings::default();
        self.apply_loras(req, &mut timings)?;
        let started = Instant::now();
        let (text, negative) = self.prompts(req)?;
        timings.encode_text_ms = started.elapsed().as_millis() as u64;
        let start = self.start(req, &mut timings)?;
        let schedule = self.timesteps(req);
        let timesteps = &schedule[start.t_start..];
        let n = req.num_images as usize;
        let max_batch = req.max_batch.map_or(self.max_batch, |cap| {
            self.max_batch.min(cap.max(1) as usize)
        });
        let mut ctl = Control {
            cancel,
            on_step,
            done: 0,
            total: (timesteps.len() as u32 - 1) * n.div_ceil(max_batch) as u32,
            step_ms: Vec::new(),
        };
        let cond = Conditioning {
            text: &text,
            negative: negative.as_ref().map(|(t, scale)| (t, *scale)),
            reference: start.reference.as_ref(),
        };
        let mut images = Vec::with_capacity(n);
        let mut dumped = Vec::new();
        for first in (0..n).step_by(max_batch) {
            let count = max_batch.min(n - first);
            let mut latents = self.batch_noise(req, first, count).map_err(c)?;
            if let Some(x0) = &start.x0 {
                latents =
                    img2img::mix(&latents, x0, timesteps[0]).map_err(EngineError::from_candle)?;
            }
            let t = Instant::now();
            let packed = self.denoise(&latents, &cond, req, timesteps, &mut ctl)?;
            timings.denoise_ms += t.elapsed().as_millis() as u64;
            let t = Instant::now();
            let unpacked = sampling::unpack(&packed, req.height as usize, req.width as usize)
                .map_err(EngineError::from_candle)?;
            if req.dump_latents.is_some() {
                dumped.push(unpacked.clone());
            }
            let seed = req.seed + first as u64;
            let decoded = self.decode_latents(&unpacked).map_err(c)?;
            timings.decode_ms += t.elapsed().as_millis() as u64;
            images.extend(
                decoded
                    .into_iter()
                    .zip(seed..)
                    .map(|(image, seed)| GeneratedImage { image, seed }),
            );
        }
        if let Some(path) = &req.dump_latents {
            save_latents(path, &dumped).map_err(c)?;
        }
        timings.step_ms = ctl.step_ms;
        tracing::info!(
            encode_text_ms = timings.encode_text_ms,
            denoise_ms = timings.denoise_ms,
            decode_ms = timings.decode_ms,
            steps = req.steps,
            images = n,
            "generated"
        );
        Ok(GenerateOutput { images, timings })
    }
}
