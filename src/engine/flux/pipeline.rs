//! `FluxPipeline`: a loaded FLUX model (transformer, VAE, CLIP, T5, schedule, LoRA state) and
//! the steps around denoising: the prompt's embeddings, the job's LoRAs, the photo into latents
//! and latents back into images. `loader.rs` builds one; `generate.rs` runs a request on it.

use super::img2img;
use super::lora;
use super::text::{ClipEncoder, T5Encoder};
use super::weights::{Transformer, WeightsMode};
use crate::engine::files::manifest::Schedule;
use crate::engine::{EngineError, GenerateRequest, LoadReport, StageTimings};
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::autoencoder::{self, AutoEncoder};
use image::RgbaImage;

/// Load options.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub weights: WeightsMode,
    /// Most images denoised in one batch.
    pub max_batch: u32,
}

/// A loaded FLUX model.
pub struct FluxPipeline {
    pub(super) device: Device,
    pub(super) act_dtype: DType,
    pub(super) vae_dtype: DType,
    pub(super) transformer: Transformer,
    pub(super) vae: AutoEncoder,
    /// The VAE's encoder again, called directly so image-to-image draws its own posterior noise.
    pub(super) vae_encoder: autoencoder::Encoder,
    pub(super) vae_shift: f64,
    pub(super) vae_scale: f64,
    pub(super) clip: ClipEncoder,
    pub(super) t5: T5Encoder,
    pub(super) schedule: Schedule,
    pub(super) max_batch: usize,
    pub(super) report: LoadReport,
    /// The LoRA set on the transformer's weights.
    pub(super) loras: lora::LoraState,
}

impl FluxPipeline {
    pub(super) fn encode_text(&mut self, req: &GenerateRequest) -> Result<(Tensor, Tensor)> {
        self.encode_prompt(&req.prompt, req.max_sequence_length)
    }

    /// Make the request's LoRAs the transformer's (nothing to do when they already are).
    pub(super) fn apply_loras(
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
    pub(super) fn encode_prompt(
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
    pub(super) fn encode_image(
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
    pub(super) fn decode_latents(&self, latents: &Tensor) -> Result<Vec<RgbaImage>> {
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
