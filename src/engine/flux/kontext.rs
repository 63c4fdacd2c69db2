//! FLUX.1 Kontext photo edits, as diffusers' `FluxKontextPipeline` runs them: the reference photo
//! is encoded by the VAE (the posterior's mean, no noise), packed into tokens like the latents,
//! and appended to the image tokens at every step with position ids whose first axis is 1 (the
//! latents' is 0); the transformer's output for the reference tokens is dropped. The photo is
//! brought to the Kontext training resolution nearest its aspect ratio (never enlarged: a smaller
//! photo keeps its size, cut to multiples of 16); an edit job without a size gets that resolution.

use crate::engine::flux::img2img;
use crate::engine::ImageFit;
use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::flux::{autoencoder, sampling, WithForward};
use image::RgbaImage;

/// The resolutions (width, height) Kontext was trained at (diffusers'
/// `PREFERRED_KONTEXT_RESOLUTIONS`).
pub(crate) const PREFERRED: [(u32, u32); 17] = [
    (672, 1568),
    (688, 1504),
    (720, 1456),
    (752, 1392),
    (800, 1328),
    (832, 1248),
    (880, 1184),
    (944, 1104),
    (1024, 1024),
    (1104, 944),
    (1184, 880),
    (1248, 832),
    (1328, 800),
    (1392, 752),
    (1456, 720),
    (1504, 688),
    (1568, 672),
];

/// The preferred resolution nearest the aspect ratio of a `width` x `height` image (the first of
/// equals, as diffusers' `min` picks).
pub(crate) fn preferred_size(width: u32, height: u32) -> (u32, u32) {
    let aspect = f64::from(width.max(1)) / f64::from(height.max(1));
    PREFERRED
        .iter()
        .copied()
        .min_by(|a, b| {
            let da = (aspect - f64::from(a.0) / f64::from(a.1)).abs();
            let db = (aspect - f64::from(b.0) / f64::from(b.1)).abs();
            da.total_cmp(&db)
        })
        .unwrap_or((1024, 1024))
}

/// The size the reference photo is encoded at: the preferred resolution, or the photo's own size
/// (multiples of 16, at least 16) when it has fewer pixels.
pub(crate) fn reference_size(width: u32, height: u32) -> (u32, u32) {
    let (pw, ph) = preferred_size(width, height);
    if u64::from(width) * u64::from(height) < u64::from(pw) * u64::from(ph) {
        ((width / 16 * 16).max(16), (height / 16 * 16).max(16))
    } else {
        (pw, ph)
    }
}

/// Position ids of reference tokens from the latents' ids of the same grid: the first axis 1
/// instead of 0, row and column kept.
pub(crate) fn reference_ids(img_ids: &Tensor) -> candle_core::Result<Tensor> {
    let first = Tensor::new(&[[[1f32, 0., 0.]]], img_ids.device())?.to_dtype(img_ids.dtype())?;
    img_ids.broadcast_add(&first)
}

/// The reference photo's tokens and their position ids, for one image.
pub(crate) struct Reference {
    /// Packed latents `(1, tokens, 64)` in f32.
    pub img: Tensor,
    /// `(1, tokens, 3)`: (1, row, column).
    pub ids: Tensor,
}

impl Reference {
    /// Encode `photo` with the VAE's encoder (mean of the posterior), scaled and shifted as the
    /// pipeline's latents are.
    pub(crate) fn encode(
        encoder: &autoencoder::Encoder,
        photo: &RgbaImage,
        vae: (DType, f64, f64),
        device: &Device,
    ) -> Result<Self> {
        let (dtype, shift, scale) = vae;
        let (w, h) = reference_size(photo.width(), photo.height());
        let prepared = img2img::prepare(photo, w, h, ImageFit::Cover);
        let pixels = img2img::to_tensor(&prepared, device)?.to_dtype(dtype)?;
        let shape = (1, 16, h as usize / 8, w as usize / 8);
        // A zero posterior noise gives the mean, as diffusers' `sample_mode="argmax"`.
        let zeros = Tensor::zeros(shape, DType::F32, device)?;
        let latents = img2img::encode(encoder, &pixels, Some(&zeros), 0, shift, scale)?;
        // Packing and ids as for the latents, then the first id axis set to 1.
        let empty = Tensor::zeros((1, 1, 1), DType::F32, device)?;
        let state = sampling::State::new(&empty, &empty.squeeze(1)?, &latents)?;
        Ok(Reference {
            img: state.img.to_dtype(DType::F32)?,
            ids: reference_ids(&state.img_ids)?,
        })
    }

    /// The tokens and ids repeated for `batch` rows, in `dtype`.
    pub(crate) fn rows(&self, batch: usize, dtype: DType) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.img.repeat((batch, 1, 1))?.to_dtype(dtype)?,
            self.ids.repeat((batch, 1, 1))?.to_dtype(dtype)?,
        ))
    }
}

/// A transformer that sees the reference tokens after the latents' at every call and returns
/// the velocity of the latents' tokens only: what the denoising loop steps with for an edit.
pub(crate) struct WithReference<'a> {
    pub model: &'a dyn WithForward,
    /// `(b, tokens, 64)` and `(b, tokens, 3)`, in the activation dtype.
    pub img: Tensor,
    pub ids: Tensor,
}

impl WithForward for WithReference<'_> {
    fn forward(
        &self,
        img: &Tensor,
        img_ids: &Tensor,
        txt: &Tensor,
        txt_ids: &Tensor,
        timesteps: &Tensor,
        y: &Tensor,
        guidance: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let tokens = img.dim(1)?;
        let joint = Tensor::cat(&[img, &self.img], 1)?;
        let ids = Tensor::cat(&[img_ids, &self.ids], 1)?;
        self.model
            .forward(&joint, &ids, txt, txt_ids, timesteps, y, guidance)?
            .narrow(1, 0, tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_preferred_resolutions_and_never_enlarge() {
        assert_eq!(preferred_size(1000, 1000), (1024, 1024));
        assert_eq!(preferred_size(3000, 4000), (880, 1184));
        assert_eq!(preferred_size(4000, 1000), (1568, 672));
        assert_eq!(reference_size(3000, 4000), (880, 1184));
        assert_eq!(reference_size(96, 128), (96, 128));
        assert_eq!(reference_size(100, 130), (96, 128));
    }
}
