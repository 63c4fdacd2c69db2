//! Image-to-image with the semantics of diffusers' `FluxImg2ImgPipeline`: the photo resized and
//! centre-cropped (or padded) to the target size, VAE-encoded with posterior noise drawn from the
//! seed, shifted and scaled, mixed with noise at the first kept sigma
//! (`t_start = int(N - N*strength)`, `sigma*noise + (1-sigma)*x0`), then denoised for the rest.

use crate::engine::ImageFit;
use candle_core::{DType, Device, Module, Result, Tensor};
use candle_transformers::models::flux::autoencoder::Encoder;
use image::imageops::{self, FilterType};
use image::{Rgba, RgbaImage};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// The photo at exactly `width` x `height`, alpha composited over white.
pub(crate) fn prepare(img: &RgbaImage, width: u32, height: u32, fit: ImageFit) -> RgbaImage {
    let (w, h) = (img.width().max(1) as f64, img.height().max(1) as f64);
    let scale = match fit {
        ImageFit::Cover => (width as f64 / w).max(height as f64 / h),
        ImageFit::Contain => (width as f64 / w).min(height as f64 / h),
    };
    let sw = ((w * scale).round() as u32).max(1);
    let sh = ((h * scale).round() as u32).max(1);
    let resized = imageops::resize(img, sw, sh, FilterType::CatmullRom);
    let mut canvas = RgbaImage::from_pixel(width, height, Rgba([255, 255, 255, 255]));
    let x = (i64::from(width) - i64::from(sw)) / 2;
    let y = (i64::from(height) - i64::from(sh)) / 2;
    imageops::overlay(&mut canvas, &resized, x, y);
    canvas
}

/// `(1, 3, h, w)` in [-1, 1].
pub(crate) fn to_tensor(img: &RgbaImage, device: &Device) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let rgb: Vec<f32> = img
        .pixels()
        .flat_map(|p| [p.0[0], p.0[1], p.0[2]])
        .map(|c| f32::from(c) / 127.5 - 1.0)
        .collect();
    Tensor::from_vec(rgb, (h as usize, w as usize, 3), device)?
        .permute((2, 0, 1))?
        .unsqueeze(0)
}

/// Index of the first kept timestep, or None when the strength keeps no step (diffusers raises).
pub(crate) fn start_index(steps: usize, strength: f64) -> Option<usize> {
    let init = (steps as f64 * strength).min(steps as f64);
    let t_start = (steps as f64 - init).max(0.0) as usize;
    (t_start < steps).then_some(t_start)
}

/// Posterior noise for the VAE sample, drawn from its own stream so it never equals the
/// denoising noise of the same seed.
pub(crate) fn posterior_eps(
    seed: u64,
    shape: (usize, usize, usize, usize),
    device: &Device,
) -> Result<Tensor> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x0005_eed0_f7ae_u64);
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu)?.to_device(device)
}

/// Encode `(1,3,h,w)` pixels to scaled latents `(1,16,h/8,w/8)` in f32: sample the posterior
/// with `eps` (`mean + exp(0.5*logvar)*eps`, logvar clamped as diffusers does), then
/// `(z - shift) * scale`.
pub(crate) fn encode(
    encoder: &Encoder,
    pixels: &Tensor,
    eps: Option<&Tensor>,
    seed: u64,
    shift: f64,
    scale: f64,
) -> Result<Tensor> {
    let moments = encoder.forward(pixels)?.to_dtype(DType::F32)?;
    let chunks = moments.chunk(2, 1)?;
    let (mean, logvar) = (&chunks[0], chunks[1].clamp(-30f32, 20f32)?);
    let eps = match eps {
        Some(e) => e.to_dtype(DType::F32)?.to_device(mean.device())?,
        None => posterior_eps(seed, mean.dims4()?, mean.device())?,
    };
    let z = (mean + ((logvar * 0.5)?.exp()? * eps)?)?;
    (z - shift)? * scale
}

/// Start latents at `sigma`: `sigma * noise + (1 - sigma) * x0`, x0 broadcast over the batch.
pub(crate) fn mix(noise: &Tensor, x0: &Tensor, sigma: f64) -> Result<Tensor> {
    (noise * sigma)?.broadcast_add(&(x0 * (1.0 - sigma))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_index_follows_diffusers_for_schnell() {
        assert_eq!(start_index(4, 1.0), Some(0));
        assert_eq!(start_index(4, 0.75), Some(1));
        assert_eq!(
            start_index(4, 0.6),
            Some(1),
            "int truncation: 0.6 behaves like 0.75"
        );
        assert_eq!(start_index(4, 0.5), Some(2));
        assert_eq!(start_index(4, 0.1), Some(3));
        assert_eq!(start_index(4, 0.0), None);
        assert_eq!(start_index(50, 0.02), Some(49));
    }

    #[test]
    fn prepare_cover_and_contain_give_target_size() {
        let img = RgbaImage::from_pixel(300, 100, Rgba([10, 20, 30, 255]));
        let cover = prepare(&img, 64, 64, ImageFit::Cover);
        assert_eq!(cover.dimensions(), (64, 64));
        assert_eq!(cover.get_pixel(0, 0).0, [10, 20, 30, 255]);
        let contain = prepare(&img, 64, 64, ImageFit::Contain);
        assert_eq!(
            contain.get_pixel(0, 0).0,
            [255, 255, 255, 255],
            "padding is white"
        );
        assert_eq!(contain.get_pixel(32, 32).0, [10, 20, 30, 255]);
    }

    #[test]
    fn mix_at_sigma_one_is_noise() {
        let noise = Tensor::ones((2, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let x0 = Tensor::full(3f32, (1, 1, 2, 2), &Device::Cpu).unwrap();
        let m: Vec<f32> = mix(&noise, &x0, 1.0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(m.iter().all(|v| *v == 1.0));
        let m: Vec<f32> = mix(&noise, &x0, 0.25)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(m.iter().all(|v| (*v - 2.5).abs() < 1e-6));
    }
}
