//! Denoising: the sigma schedule of a request, its initial noise (drawn from the seed on the
//! CPU, or given), and the Euler steps of FLUX's flow matching in f32 as diffusers' scheduler
//! runs them, with true classifier-free guidance (two passes per step) and a Kontext reference
//! photo's tokens when the conditioning has them.

use super::pipeline::FluxPipeline;
use super::{kontext, noise, schedule};
use crate::engine::{EngineError, GenerateRequest, StepCallback};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::{self as cflux, sampling};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

impl FluxPipeline {
    pub(super) fn timesteps(&self, req: &GenerateRequest) -> Vec<f64> {
        let seq = (req.height as usize / 16) * (req.width as usize / 16);
        schedule::sigmas(&self.schedule, req.steps as usize, seq)
    }

    /// Denoise one batch of initial latents `(b, 16, h/8, w/8)`; returns packed latents. With a
    /// negative prompt (true CFG) each step runs the transformer twice, as diffusers does: on the
    /// prompt and on the negative prompt, and steps along `neg + scale * (pos - neg)`; with a
    /// reference (a Kontext edit) its tokens join the image's at every step.
    pub(super) fn denoise(
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
    pub(super) fn batch_noise(
        &self,
        req: &GenerateRequest,
        first: usize,
        count: usize,
    ) -> Result<Tensor> {
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
pub(crate) fn euler_step(
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
pub(crate) fn true_cfg_step(
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
pub(super) fn save_latents(path: &std::path::Path, batches: &[Tensor]) -> Result<()> {
    let all = Tensor::cat(batches, 0)?
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?;
    all.save_safetensors("latents", path)
        .with_context(|| format!("writing {}", path.display()))
}

/// What a denoising run is conditioned on: the prompt's T5 and CLIP embeddings, the negative
/// prompt's with the true-CFG scale, and a Kontext reference photo.
#[derive(Clone, Copy)]
pub(super) struct Conditioning<'a> {
    pub text: &'a (Tensor, Tensor),
    pub negative: Option<(&'a (Tensor, Tensor), f64)>,
    pub reference: Option<&'a kontext::Reference>,
}

/// Cancellation and step reporting across batches.
pub(super) struct Control<'a, 'b> {
    pub cancel: &'a AtomicBool,
    pub on_step: StepCallback<'b>,
    pub done: u32,
    pub total: u32,
    pub step_ms: Vec<u64>,
}

impl Control<'_, '_> {
    pub(super) fn step_done(&mut self, ms: u64) {
        self.done += 1;
        self.step_ms.push(ms);
        (self.on_step)(self.done, self.total);
    }
}
