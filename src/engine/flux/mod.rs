//! `FluxPipeline`: FLUX.1 text-to-image with candle. CLIP pooled + T5 hidden states, noise from
//! the seed on the CPU, the schnell (or dev) sigma schedule, Euler steps in f32 as diffusers does,
//! VAE decode, `num_images` variations batched.
//!
//! Its parts: `text/` the text encoders (CLIP, T5, merchgen's quantized T5); `loader` loads the
//! pipeline (through `weights` for GGUF, `dense` for safetensors, `names` for diffusers/BFL
//! naming, `infer` for sizes from the tensors) onto merchgen's own `transformer/`; `lora/` the
//! jobs' LoRAs; generating in this file and `denoise` (with `schedule`, `noise`, `img2img`,
//! `kontext`), `batch` (jobs sharing a forward pass) and `warm_up` (the pass after loading).

mod batch;
mod denoise;
pub mod dense;
pub mod img2img;
pub mod infer;
pub mod kontext;
pub mod loader;
pub mod lora;
pub mod names;
pub mod noise;
pub mod schedule;
pub mod text;
pub mod transformer;
mod warm_up;
pub mod weights;

pub use denoise::{euler_step, true_cfg_step};
use denoise::{save_latents, Conditioning, Control};

use crate::engine::files::manifest::Schedule;
use crate::engine::flux::text::{ClipEncoder, T5Encoder};
use crate::engine::flux::weights::{Transformer, WeightsMode};
use crate::engine::{
    EngineError, GenerateOutput, GenerateRequest, GeneratedImage, Generator, LoadReport,
    StageTimings, StepCallback,
};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::{
    self as cflux,
    autoencoder::{self, AutoEncoder},
    sampling,
};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Load options.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub weights: WeightsMode,
    /// Most images denoised in one batch.
    pub max_batch: u32,
}

/// A loaded FLUX model.
pub struct FluxPipeline {
    device: Device,
    act_dtype: DType,
    vae_dtype: DType,
    transformer: Transformer,
    vae: AutoEncoder,
    /// The VAE's encoder again, called directly so image-to-image draws its own posterior noise.
    vae_encoder: autoencoder::Encoder,
    vae_shift: f64,
    vae_scale: f64,
    clip: ClipEncoder,
    t5: T5Encoder,
    schedule: Schedule,
    max_batch: usize,
    report: LoadReport,
    /// The LoRA set on the transformer's weights.
    loras: lora::LoraState,
}

impl FluxPipeline {
    fn encode_text(&mut self, req: &GenerateRequest) -> Result<(Tensor, Tensor)> {
        self.encode_prompt(&req.prompt, req.max_sequence_length)
    }

    /// Make the request's LoRAs the transformer's (nothing to do when they already are).
    fn apply_loras(
        &mut self,
        req: &GenerateRequest,
        timings: &mut StageTimings,
    ) -> Result<(), EngineError> {
        let t = self
            .loras
            .ensure(&mut self.transformer, &req.loras, &self.device)?;
        timings.lora_load_ms = t.load_ms;
        timings.lora_apply_ms = t.apply_ms;
        Ok(())
    }

    /// T5 hidden states and CLIP's pooled output of one prompt, in the activation dtype.
    fn encode_prompt(
        &mut self,
        prompt: &str,
        max_sequence_length: u32,
    ) -> Result<(Tensor, Tensor)> {
        let t5 = self
            .t5
            .encode(prompt, max_sequence_length as usize)?
            .to_dtype(self.act_dtype)?;
        let clip = self.clip.encode(prompt)?.to_dtype(self.act_dtype)?;
        Ok((t5, clip))
    }

    /// Scaled VAE latents `(1, 16, h/8, w/8)` of the request's photo, in f32.
    fn encode_image(
        &self,
        init: &crate::engine::InitImage,
        req: &GenerateRequest,
    ) -> Result<Tensor> {
        let photo = img2img::prepare(&init.image, req.width, req.height, init.fit);
        let pixels = img2img::to_tensor(&photo, &self.device)?.to_dtype(self.vae_dtype)?;
        let eps = req.noise.as_ref().and_then(|o| o.vae_eps.as_ref());
        Ok(img2img::encode(
            &self.vae_encoder,
            &pixels,
            eps,
            req.seed,
            self.vae_shift,
            self.vae_scale,
        )?)
    }

    /// Encode then decode a photo through the VAE (what image-to-image at strength ~0 returns).
    pub fn vae_round_trip(&self, photo: &RgbaImage, seed: u64) -> Result<RgbaImage> {
        let (w, h) = photo.dimensions();
        let req = GenerateRequest {
            prompt: String::new(),
            width: w,
            height: h,
            steps: 1,
            guidance: 0.0,
            seed,
            num_images: 1,
            max_sequence_length: 1,
            init: Some(crate::engine::InitImage {
                image: photo.clone(),
                strength: 1.0,
                fit: crate::engine::ImageFit::Cover,
                edit: false,
            }),
            noise: None,
            dump_latents: None,
            max_batch: None,
            true_cfg: None,
            loras: Vec::new(),
        };
        let x0 = self.encode_image(req.init.as_ref().expect("set above"), &req)?;
        Ok(self.decode_latents(&x0)?.remove(0))
    }

    /// Scaled latents `(b, 16, h/8, w/8)` to RGBA images.
    fn decode_latents(&self, latents: &Tensor) -> Result<Vec<RgbaImage>> {
        let pixels = self.vae.decode(&latents.to_dtype(self.vae_dtype)?)?;
        let pixels = ((pixels.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
            .round()?
            .to_dtype(DType::U8)?
            .to_device(&Device::Cpu)?;
        let (n, _c, h, w) = pixels.dims4()?;
        (0..n)
            .map(|i| {
                let rgb: Vec<u8> = pixels
                    .get(i)?
                    .permute((1, 2, 0))?
                    .flatten_all()?
                    .to_vec1()?;
                let rgba: Vec<u8> = rgb
                    .chunks_exact(3)
                    .flat_map(|p| [p[0], p[1], p[2], 255])
                    .collect();
                RgbaImage::from_raw(w as u32, h as u32, rgba)
                    .context("decoded image has the wrong size")
            })
            .collect()
    }
}

impl Generator for FluxPipeline {
    fn load_report(&self) -> &LoadReport {
        &self.report
    }

    fn free_memory(&self) -> Option<u64> {
        crate::engine::flux::weights::free_device_memory(&self.device)
    }

    fn batch_images(&self) -> usize {
        self.max_batch
    }

    fn generate_batch(
        &mut self,
        members: &mut [crate::engine::BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        self.generate_together(members)
    }

    fn generate(
        &mut self,
        req: &GenerateRequest,
        cancel: &AtomicBool,
        on_step: StepCallback<'_>,
    ) -> Result<GenerateOutput, EngineError> {
        let mut timings = StageTimings::default();
        self.apply_loras(req, &mut timings)?;
        let started = Instant::now();
        let text = self.encode_text(req).map_err(EngineError::from_candle)?;
        let negative = match &req.true_cfg {
            Some(cfg) => Some((
                self.encode_prompt(&cfg.negative_prompt, req.max_sequence_length)
                    .map_err(EngineError::from_candle)?,
                cfg.scale,
            )),
            None => None,
        };
        timings.encode_text_ms = started.elapsed().as_millis() as u64;
        let schedule = self.timesteps(req);
        let mut reference = None;
        let (t_start, x0) =
            match &req.init {
                Some(init) if init.edit => {
                    let t = Instant::now();
                    reference = Some(
                        kontext::Reference::encode(
                            &self.vae_encoder,
                            &init.image,
                            (self.vae_dtype, self.vae_shift, self.vae_scale),
                            &self.device,
                        )
                        .map_err(EngineError::from_candle)?,
                    );
                    timings.encode_image_ms = t.elapsed().as_millis() as u64;
                    (0, None)
                }
                Some(init) => {
                    let t_start = img2img::start_index(req.steps as usize, init.strength)
                        .ok_or_else(|| EngineError::Invalid {
                            field: "strength".into(),
                            message: "is too small to keep any denoising step".into(),
                        })?;
                    let t = Instant::now();
                    let x0 = self
                        .encode_image(init, req)
                        .map_err(EngineError::from_candle)?;
                    timings.encode_image_ms = t.elapsed().as_millis() as u64;
                    (t_start, Some(x0))
                }
                None => (0, None),
            };
        let timesteps = &schedule[t_start..];
        let n = req.num_images as usize;
        let max_batch = req.max_batch.map_or(self.max_batch, |cap| {
            self.max_batch.min(cap.max(1) as usize)
        });
        let batches = n.div_ceil(max_batch);
        let mut ctl = Control {
            cancel,
            on_step,
            done: 0,
            total: (timesteps.len() as u32 - 1) * batches as u32,
            step_ms: Vec::new(),
        };
        let mut images = Vec::with_capacity(n);
        let mut dumped = Vec::new();
        for first in (0..n).step_by(max_batch) {
            let count = max_batch.min(n - first);
            let seed = req.seed + first as u64;
            let mut latents = self
                .batch_noise(req, first, count)
                .map_err(EngineError::from_candle)?;
            if let Some(x0) = &x0 {
                latents =
                    img2img::mix(&latents, x0, timesteps[0]).map_err(EngineError::from_candle)?;
            }
            let t = Instant::now();
            let negative = negative.as_ref().map(|(t, scale)| (t, *scale));
            let cond = Conditioning {
                text: &text,
                negative,
                reference: reference.as_ref(),
            };
            let packed = self.denoise(&latents, &cond, req, timesteps, &mut ctl)?;
            timings.denoise_ms += t.elapsed().as_millis() as u64;
            let t = Instant::now();
            let unpacked = sampling::unpack(&packed, req.height as usize, req.width as usize)
                .map_err(EngineError::from_candle)?;
            if req.dump_latents.is_some() {
                dumped.push(unpacked.clone());
            }
            let decoded = self
                .decode_latents(&unpacked)
                .map_err(EngineError::from_candle)?;
            timings.decode_ms += t.elapsed().as_millis() as u64;
            images.extend(
                decoded
                    .into_iter()
                    .enumerate()
                    .map(|(i, image)| GeneratedImage {
                        image,
                        seed: seed + i as u64,
                    }),
            );
        }
        if let Some(path) = &req.dump_latents {
            save_latents(path, &dumped).map_err(EngineError::from_candle)?;
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

/// The model config candle's own module would use, re-exported for the benchmark.
pub use cflux::model::Config as FluxConfig;
