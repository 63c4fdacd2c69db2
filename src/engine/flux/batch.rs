//! Several jobs in one forward pass. Jobs with the same [`BatchKey`](crate::engine::BatchKey)
//! (size, steps, guidance, text length) are denoised together: each job's rows carry its own text
//! embeddings and its own seed's noise, and the transformer treats rows independently, so each
//! job gets the images it would get alone. Decoding is per job (as alone). A job cancelled
//! mid-way leaves the batch at the next step; if the shared pass fails, the jobs still running
//! are generated one by one, so a job that cannot be generated fails alone.

use super::denoise::euler_step;
use super::pipeline::FluxPipeline;
use crate::engine::{
    BatchMember, EngineError, GenerateOutput, GeneratedImage, Generator, StageTimings,
};
use anyhow::Result;
use candle_core::{DType, Tensor};
use candle_transformers::models::flux::sampling::{self, State};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One job's rows in the joint batch.
struct Part {
    member: usize,
    rows: usize,
}

impl FluxPipeline {
    /// See the module documentation; `members` all have the same batch key.
    pub(super) fn generate_together(
        &mut self,
        members: &mut [BatchMember<'_>],
    ) -> Vec<Result<GenerateOutput, EngineError>> {
        let mut results: Vec<Option<Result<GenerateOutput, EngineError>>> =
            members.iter().map(|_| None).collect();
        let mut timings = vec![StageTimings::default(); members.len()];
        // The members share their LoRA set (it is part of the batch key).
        if let Some(first) = members.first() {
            let mut t = StageTimings::default();
            if let Err(e) = self.apply_loras(first.req, &mut t) {
                return members.iter().map(|_| Err(e.clone())).collect();
            }
            for timing in &mut timings {
                timing.lora_load_ms = t.lora_load_ms;
                timing.lora_apply_ms = t.lora_apply_ms;
            }
        }
        let mut parts = Vec::new();
        let mut states = Vec::new();
        for (i, m) in members.iter().enumerate() {
            if m.cancel.load(Ordering::Relaxed) {
                results[i] = Some(Err(EngineError::Cancelled));
                continue;
            }
            let t = Instant::now();
            match self.member_state(m) {
                Ok(state) => {
                    timings[i].encode_text_ms = t.elapsed().as_millis() as u64;
                    parts.push(Part {
                        member: i,
                        rows: m.req.num_images as usize,
                    });
                    states.push(state);
                }
                Err(e) => results[i] = Some(Err(EngineError::from_candle(e))),
            }
        }
        if !parts.is_empty() {
            let req = members[parts[0].member].req;
            let timesteps = self.timesteps(req);
            let outcome =
                self.denoise_together(members, &mut parts, &states, &timesteps, &mut timings);
            match outcome {
                Ok(img) => {
                    let mut first = 0;
                    for p in &parts {
                        let t = Instant::now();
                        let rows = img.narrow(0, first, p.rows);
                        first += p.rows;
                        let m = &members[p.member];
                        let decoded = rows
                            .and_then(|r| {
                                sampling::unpack(&r, m.req.height as usize, m.req.width as usize)
                            })
                            .map_err(anyhow::Error::from)
                            .and_then(|latents| self.decode_latents(&latents))
                            .map_err(EngineError::from_candle);
                        timings[p.member].decode_ms = t.elapsed().as_millis() as u64;
                        results[p.member] = Some(decoded.map(|images| {
                            GenerateOutput {
                                images: images
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, image)| GeneratedImage {
                                        image,
                                        seed: m.req.seed + i as u64,
                                    })
                                    .collect(),
                                timings: std::mem::take(&mut timings[p.member]),
                            }
                        }));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, jobs = parts.len(), "the batched pass failed; generating its jobs one by one");
                    for p in &parts {
                        let m = &mut members[p.member];
                        let alone = Generator::generate(self, m.req, m.cancel, &mut *m.on_step);
                        results[p.member] = Some(alone);
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(EngineError::Cancelled)))
            .collect()
    }

    /// A job's packed noise, ids and text, each with one row per image (as alone).
    fn member_state(&mut self, m: &BatchMember<'_>) -> Result<State> {
        let (t5, clip) = self.encode_text(m.req)?;
        let n = m.req.num_images as usize;
        let latents = self.batch_noise(m.req, 0, n)?.to_dtype(self.act_dtype)?;
        Ok(State::new(&t5, &clip, &latents)?)
    }

    /// Denoise every part's rows together; drops the rows of a job cancelled between steps
    /// (its result is set to `Cancelled` and its part removed). Returns the packed latents of
    /// the parts left, in order.
    fn denoise_together(
        &self,
        members: &mut [BatchMember<'_>],
        parts: &mut Vec<Part>,
        states: &[State],
        timesteps: &[f64],
        timings: &mut [StageTimings],
    ) -> Result<Tensor, EngineError> {
        let candle = EngineError::from_candle;
        let field = |f: fn(&State) -> &Tensor| {
            Tensor::cat(&states.iter().map(f).collect::<Vec<_>>(), 0).map_err(candle)
        };
        let mut joint = State {
            img: field(|s| &s.img)?,
            img_ids: field(|s| &s.img_ids)?,
            txt: field(|s| &s.txt)?,
            txt_ids: field(|s| &s.txt_ids)?,
            vec: field(|s| &s.vec)?,
        };
        let mut img = joint.img.to_dtype(DType::F32).map_err(candle)?;
        let guidance_value = members[parts[0].member].req.guidance as f32;
        let total = timesteps.len() as u32 - 1;
        let model = self.transformer.as_forward();
        let started = Instant::now();
        for (step, window) in timesteps.windows(2).enumerate() {
            if parts
                .iter()
                .any(|p| members[p.member].cancel.load(Ordering::Relaxed))
            {
                (joint, img) = self.drop_cancelled(members, parts, &joint, &img)?;
                if parts.is_empty() {
                    return Err(EngineError::Cancelled);
                }
            }
            let rows: usize = parts.iter().map(|p| p.rows).sum();
            let guidance = Tensor::full(guidance_value, rows, &self.device).map_err(candle)?;
            let t = Instant::now();
            img = euler_step(
                model,
                &joint,
                &img,
                (window[0], window[1]),
                Some(&guidance),
                self.act_dtype,
            )
            .map_err(candle)?;
            let ms = t.elapsed().as_millis() as u64;
            for p in parts.iter() {
                timings[p.member].step_ms.push(ms);
                (members[p.member].on_step)(step as u32 + 1, total);
            }
        }
        let denoise_ms = started.elapsed().as_millis() as u64;
        for p in parts.iter() {
            timings[p.member].denoise_ms = denoise_ms;
        }
        Ok(img)
    }

    /// The joint state and latents without the rows of cancelled jobs.
    fn drop_cancelled(
        &self,
        members: &[BatchMember<'_>],
        parts: &mut Vec<Part>,
        joint: &State,
        img: &Tensor,
    ) -> Result<(State, Tensor), EngineError> {
        let candle = EngineError::from_candle;
        let mut keep = Vec::new();
        let mut first = 0u32;
        parts.retain(|p| {
            let rows = first..first + p.rows as u32;
            first += p.rows as u32;
            let cancelled = members[p.member].cancel.load(Ordering::Relaxed);
            if !cancelled {
                keep.extend(rows);
            }
            !cancelled
        });
        if keep.is_empty() {
            return Ok((joint.clone(), img.clone()));
        }
        let index = Tensor::new(keep.as_slice(), &self.device).map_err(candle)?;
        let pick = |t: &Tensor| t.index_select(&index, 0).map_err(candle);
        Ok((
            State {
                img: pick(&joint.img)?,
                img_ids: pick(&joint.img_ids)?,
                txt: pick(&joint.txt)?,
                txt_ids: pick(&joint.txt_ids)?,
                vec: pick(&joint.vec)?,
            },
            pick(img)?,
        ))
    }
}
