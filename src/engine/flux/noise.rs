//! Initial noise drawn on the CPU from the seed, so the same seed gives the same image on any
//! device (up to floating-point rounding). Image `i` of a job uses `seed + i`.

use candle_core::{Device, Result, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Latent channels of the FLUX VAE.
pub(crate) const LATENT_CHANNELS: usize = 16;

/// Standard normal latents `(n, 16, height/8, width/8)` in f32, image `i` from `seed + i`.
pub(crate) fn initial_latents(
    seed: u64,
    n: usize,
    height: usize,
    width: usize,
    device: &Device,
) -> Result<Tensor> {
    let (h, w) = (height / 8, width / 8);
    let per_image = LATENT_CHANNELS * h * w;
    let mut values = Vec::with_capacity(n * per_image);
    for i in 0..n {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed.wrapping_add(i as u64));
        values.extend((0..per_image).map(|_| {
            let v: f32 = StandardNormal.sample(&mut rng);
            v
        }));
    }
    Tensor::from_vec(values, (n, LATENT_CHANNELS, h, w), &Device::Cpu)?.to_device(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_latents_same_seed_same_values_per_image() {
        let a = initial_latents(7, 2, 32, 32, &Device::Cpu).unwrap();
        let b = initial_latents(8, 1, 32, 32, &Device::Cpu).unwrap();
        let a1: Vec<f32> = a.get(1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let b0: Vec<f32> = b.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a1, b0, "image 1 of seed 7 is image 0 of seed 8");
        let a0: Vec<f32> = a.get(0).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_ne!(a0, a1);
        let mean = a0.iter().sum::<f32>() / a0.len() as f32;
        assert!(mean.abs() < 0.15, "mean {mean}");
    }
}
