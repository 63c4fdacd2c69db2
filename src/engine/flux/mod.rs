//! `FluxPipeline`: FLUX.1 text-to-image with candle. CLIP pooled + T5 hidden states, noise from
//! the seed on the CPU, the schnell (or dev) sigma schedule, Euler steps in f32 as diffusers does,
//! VAE decode, `num_images` variations batched.
//!
//! Its parts: `text/` the text encoders (CLIP, T5, merchgen's quantized T5); loading the
//! transformer and VAE in `loader` (through `weights` for GGUF, `dense` for safetensors, `names`
//! for diffusers/BFL naming, `infer` for sizes from the tensors) and `quantized` (merchgen's
//! quantized transformer); generating in this file with `schedule`, `noise`, `img2img`, `batch`
//! (jobs sharing a forward pass) and `warm_up` (the pass after loading).

mod batch;
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

use crate::engine::files::hub::ResolvedModel;
use crate::engine::files::manifest::{Role, Schedule};
use crate::engine::flux::text::{ClipEncoder, T5Encoder};
use crate::engine::flux::weights::{Transformer, WeightsMode};
use crate::engine::{
    EngineError, GenerateOutput, GenerateRequest, GeneratedImage, Generator, LoadReport,
    StageTimings, StepCallback,
};
use crate::job::outcome::ModelInfo;
use crate::job::validate::GenerationDefaults;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::{
    self as cflux,
    autoencoder::{self, AutoEncoder},
    sampling,
};
use image::RgbaImage;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Load every component of `model` onto `device`.
    pub fn load(model: &ResolvedModel, device: &Device, opts: &LoadOptions) -> Result<Self> {
        let started = Instant::now();
        let m = &model.manifest;
        let dense_dtype = crate::engine::device::dense_dtype(device);
        // The four components are independent: load them at once (the transformer and T5 are
        // most of the bytes; each loader is mostly copying and converting, so this overlaps
        // that work with the other's disk reads and uses every core).
        let (loaded, vae, clip, t5) = std::thread::scope(|scope| {
            let t5 = scope.spawn(|| {
                T5Encoder::load(
                    model.path(Role::T5),
                    model.path(Role::T5Config),
                    model.path(Role::T5Tokenizer),
                    dense_dtype,
                    device,
                )
            });
            let clip = scope.spawn(|| {
                ClipEncoder::load(
                    model.path(Role::Clip),
                    model.path(Role::ClipConfig),
                    model.path(Role::ClipTokenizer),
                    dense_dtype,
                    device,
                )
            });
            let vae = scope.spawn(|| loader::vae(model, dense_dtype, device));
            let loaded = loader::transformer(model, opts.weights, device);
            let join = |name: &str| anyhow::anyhow!("the {name} loader panicked");
            (
                loaded,
                vae.join().unwrap_or_else(|_| Err(join("VAE"))),
                clip.join().unwrap_or_else(|_| Err(join("CLIP"))),
                t5.join().unwrap_or_else(|_| Err(join("T5"))),
            )
        });
        let loaded = loaded?;
        let guidance_embed = loaded.guidance_embed();
        let (transformer, dense) = (loaded.model, loaded.dense);
        let footprint = crate::engine::memory::Footprint {
            hidden: loaded.hidden as u64,
            heads: loaded.heads as u64,
            act_bytes: if dense {
                dense_dtype.size_in_bytes() as u64
            } else {
                4
            },
            vae_bytes: dense_dtype.size_in_bytes() as u64,
        };
        let act_dtype = if dense { dense_dtype } else { DType::F32 };
        let (vae, vae_encoder) = vae?;
        let (clip, t5) = (clip?, t5?);
        let report = LoadReport {
            info: ModelInfo {
                preset: m.name.clone(),
                weights: loaded.label,
                device: crate::engine::device::name(device),
                load_bytes: Some(model.total_bytes()),
                peak_host_memory_bytes: crate::engine::memory::peak_resident_bytes(),
            },
            load_ms: started.elapsed().as_millis() as u64,
            bytes: model.total_bytes(),
            source: model.source.clone(),
            defaults: GenerationDefaults {
                width: m.defaults.width,
                height: m.defaults.height,
                steps: m.defaults.steps,
                guidance: m.defaults.guidance,
                max_sequence_length: m.defaults.max_sequence_length,
                // diffusers runs true CFG on any FLUX; merchgen offers it where a guidance
                // embedding shows a dev-type model (schnell's distillation has no use for it).
                true_cfg: guidance_embed,
                edit: m.flux.kontext,
            },
            footprint: Some(footprint),
            free_after_load: crate::engine::flux::weights::free_device_memory(device),
            warm_up_ms: None,
        };
        tracing::info!(elapsed_ms = report.load_ms, bytes = report.bytes, weights = %report.info.weights,
            device = %report.info.device, peak_host_memory_bytes = report.info.peak_host_memory_bytes,
            "model loaded");
        match m.license {
            Some(l @ crate::engine::files::manifest::License::Apache2) => {
                tracing::info!(license = l.name(), preset = %m.name, "model licence: {}", l.commercial_note())
            }
            Some(l) => {
                tracing::warn!(license = l.name(), preset = %m.name, "model licence: {}", l.commercial_note())
            }
            None => tracing::info!(preset = %m.name, "model licence not recorded in its manifest"),
        }
        Ok(FluxPipeline {
            device: device.clone(),
            act_dtype,
            vae_dtype: dense_dtype,
            transformer,
            vae,
            vae_encoder,
            vae_shift: m.vae.shift_factor,
            vae_scale: m.vae.scale_factor,
            clip,
            t5,
            schedule: m.flux.schedule,
            // Both weight modes batch (the quantized transformer is merchgen's own, see
            // `quantized.rs`).
            max_batch: opts.max_batch.max(1) as usize,
            report,
            loras: lora::LoraState::default(),
        })
    }

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

    fn timesteps(&self, req: &GenerateRequest) -> Vec<f64> {
        let seq = (req.height as usize / 16) * (req.width as usize / 16);
        schedule::sigmas(&self.schedule, req.steps as usize, seq)
    }

    /// Denoise one batch of initial latents `(b, 16, h/8, w/8)`; returns packed latents. With a
    /// negative prompt (true CFG) each step runs the transformer twice, as diffusers does: on the
    /// prompt and on the negative prompt, and steps along `neg + scale * (pos - neg)`; with a
    /// reference (a Kontext edit) its tokens join the image's at every step.
    fn denoise(
        &self,
        latents: &Tensor,
        cond: &Conditioning<'_>,
        req: &GenerateRequest,
        timesteps: &[f64],
        ctl: &mut Control<'_, '_>,
    ) -> Result<Tensor, EngineError> {
        let Conditioning {
            text,
            negative,
            reference,
        } = *cond;
        let c = EngineError::from_candle;
        let start = latents.to_dtype(self.act_dtype).map_err(c)?;
        let b = latents.dim(0).map_err(c)?;
        // `State` repeats the text rows for every image of the batch.
        let state =
            |text: &(Tensor, Tensor)| sampling::State::new(&text.0, &text.1, &start).map_err(c);
        let state_pos = state(text)?;
        let state_neg = negative
            .map(|(t, scale)| state(t).map(|s| (s, scale)))
            .transpose()?;
        let guidance = Tensor::full(req.guidance as f32, b, &self.device).map_err(c)?;
        let mut img = state_pos.img.to_dtype(DType::F32).map_err(c)?;
        let edit = match reference {
            Some(r) => {
                let (img, ids) = r.rows(b, self.act_dtype).map_err(c)?;
                Some(kontext::WithReference {
                    model: self.transformer.as_forward(),
                    img,
                    ids,
                })
            }
            None => None,
        };
        let model: &dyn cflux::WithForward = match &edit {
            Some(e) => e,
            None => self.transformer.as_forward(),
        };
        for window in timesteps.windows(2) {
            if ctl.cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Cancelled);
            }
            let step_start = Instant::now();
            let t = (window[0], window[1]);
            img = match &state_neg {
                None => euler_step(model, &state_pos, &img, t, Some(&guidance), self.act_dtype),
                Some((neg, scale)) => true_cfg_step(
                    model,
                    (&state_pos, neg),
                    *scale,
                    &img,
                    t,
                    &guidance,
                    self.act_dtype,
                ),
            }
            .map_err(c)?;
            ctl.step_done(step_start.elapsed().as_millis() as u64);
        }
        Ok(img)
    }

    /// Initial latents of images `first..first+count`: from the override when given, else drawn
    /// from the seed on the CPU.
    fn batch_noise(&self, req: &GenerateRequest, first: usize, count: usize) -> Result<Tensor> {
        let (h, w) = (req.height as usize, req.width as usize);
        match &req.noise {
            Some(o) => {
                let want = (
                    req.num_images as usize,
                    noise::LATENT_CHANNELS,
                    h / 8,
                    w / 8,
                );
                if o.latents.dims4()? != want {
                    anyhow::bail!(
                        "--initial-noise has shape {:?}; this job needs {want:?}",
                        o.latents.dims()
                    );
                }
                Ok(o.latents.narrow(0, first, count)?.to_device(&self.device)?)
            }
            None => Ok(noise::initial_latents(
                req.seed + first as u64,
                count,
                h,
                w,
                &self.device,
            )?),
        }
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
                fit: img2img::ImageFit::Cover,
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

/// The transformer's velocity on the packed latents `x` (already in the activation dtype) at
/// timestep `t_vec`, conditioned on `state`'s text.
fn velocity(
    model: &dyn cflux::WithForward,
    state: &sampling::State,
    x: &Tensor,
    t_vec: &Tensor,
    guidance: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    model.forward(
        x,
        &state.img_ids,
        &state.txt,
        &state.txt_ids,
        t_vec,
        &state.vec,
        guidance,
    )
}

/// One Euler step of FLUX's flow matching from `t.0` to `t.1`: the transformer's velocity on the
/// packed latents `img` (kept in f32, run in `act_dtype`), applied in f32 as diffusers' scheduler
/// upcasts. `guidance` is for guidance-distilled models (dev), `None` for schnell. The pipeline
/// and `merchgen bench --random-weights` both step through here.
pub fn euler_step(
    model: &dyn cflux::WithForward,
    state: &sampling::State,
    img: &Tensor,
    t: (f64, f64),
    guidance: Option<&Tensor>,
    act_dtype: DType,
) -> candle_core::Result<Tensor> {
    let t_vec = Tensor::full(t.0 as f32, img.dim(0)?, img.device())?;
    let pred = velocity(model, state, &img.to_dtype(act_dtype)?, &t_vec, guidance)?;
    euler_update(img, &pred, t)
}

/// One Euler step with true classifier-free guidance: the transformer's velocity on the prompt
/// (`states.0`) and on the negative prompt (`states.1`), combined as diffusers' FluxPipeline does
/// (`neg + scale * (pos - neg)`, in the activation dtype), then applied in f32.
pub fn true_cfg_step(
    model: &dyn cflux::WithForward,
    states: (&sampling::State, &sampling::State),
    scale: f64,
    img: &Tensor,
    t: (f64, f64),
    guidance: &Tensor,
    act_dtype: DType,
) -> candle_core::Result<Tensor> {
    let t_vec = Tensor::full(t.0 as f32, img.dim(0)?, img.device())?;
    let x = img.to_dtype(act_dtype)?;
    let pos = velocity(model, states.0, &x, &t_vec, Some(guidance))?;
    let neg = velocity(model, states.1, &x, &t_vec, Some(guidance))?;
    let pred = (&neg + ((pos - &neg)? * scale)?)?;
    euler_update(img, &pred, t)
}

/// `img + pred * (t.1 - t.0)` in f32.
fn euler_update(img: &Tensor, pred: &Tensor, t: (f64, f64)) -> candle_core::Result<Tensor> {
    img.add(&(pred.to_dtype(DType::F32)? * (t.1 - t.0))?)
}

/// Final latents of every batch as one f32 tensor `latents` in a safetensors file.
fn save_latents(path: &std::path::Path, batches: &[Tensor]) -> Result<()> {
    let all = Tensor::cat(batches, 0)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    all.save_safetensors("latents", path)
        .with_context(|| format!("writing {}", path.display()))
}

/// What a denoising run is conditioned on: the prompt's T5 and CLIP embeddings, the negative
/// prompt's with the true-CFG scale, and a Kontext reference photo.
#[derive(Clone, Copy)]
struct Conditioning<'a> {
    text: &'a (Tensor, Tensor),
    negative: Option<(&'a (Tensor, Tensor), f64)>,
    reference: Option<&'a kontext::Reference>,
}

/// Cancellation and step reporting across batches.
struct Control<'a, 'b> {
    cancel: &'a AtomicBool,
    on_step: StepCallback<'b>,
    done: u32,
    total: u32,
    step_ms: Vec<u64>,
}

impl Control<'_, '_> {
    fn step_done(&mut self, ms: u64) {
        self.done += 1;
        self.step_ms.push(ms);
        (self.on_step)(self.done, self.total);
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
