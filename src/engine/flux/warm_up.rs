//! One pass at a tiny size right after loading, so every kernel a job uses has run once before
//! the first job (on a GPU: PTX compiled or loaded from the driver's cache, cuBLAS handles and
//! workspaces created, the allocator's pools grown) and the first job is as fast as the second.
//! It generates one 64x64 image in one step at the model's default T5 length (T5, CLIP, the
//! transformer, the VAE decoder), then the same as image-to-image (the VAE encoder). Its output
//! is thrown away; it changes no state a job can see.

use super::pipeline::FluxPipeline;
use crate::engine::{EngineError, GenerateRequest, Generator, InitImage};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

impl FluxPipeline {
    /// Run the warm-up pass; its milliseconds are also kept in the load report.
    pub fn warm_up(&mut self) -> Result<u64, EngineError> {
        let started = Instant::now();
        let defaults = self.report.defaults.clone();
        let mut req = GenerateRequest {
            prompt: "warm-up".into(),
            width: 64,
            height: 64,
            steps: 1,
            guidance: defaults.guidance,
            seed: 0,
            num_images: 1,
            max_sequence_length: defaults.max_sequence_length,
            init: None,
            noise: None,
            dump_latents: None,
            max_batch: None,
            true_cfg: None,
            loras: Vec::new(),
        };
        let never = AtomicBool::new(false);
        let out = self.generate(&req, &never, &mut |_, _| {})?;
        let image = out
            .images
            .into_iter()
            .next()
            .ok_or_else(|| EngineError::Failed("the warm-up pass gave no image".into()))?
            .image;
        req.init = Some(InitImage {
            image,
            strength: 1.0,
            fit: Default::default(),
            edit: false,
        });
        self.generate(&req, &never, &mut |_, _| {})?;
        let ms = started.elapsed().as_millis() as u64;
        self.report.warm_up_ms = Some(ms);
        Ok(ms)
    }
}
