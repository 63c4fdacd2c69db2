//! The sigma schedule of a denoising run, as diffusers' FluxPipeline builds it with its
//! `FlowMatchEulerDiscreteScheduler`: `linspace(1, 1/N, N)`, then either no shift (FLUX.1-schnell),
//! a fixed shift `s*t / (1 + (s-1)*t)`, or the resolution-dependent exponential shift
//! `e^mu / (e^mu + (1/t - 1))` with `mu` on the line through (base_seq_len, base_shift) and
//! (max_seq_len, max_shift); a final 0 appended. Pure arithmetic in f64.

use crate::engine::files::manifest::Schedule;

/// `steps + 1` sigmas from 1 down to 0 for an image of `image_seq_len` packed tokens.
pub fn sigmas(schedule: &Schedule, steps: usize, image_seq_len: usize) -> Vec<f64> {
    let linear = (0..steps).map(|i| 1.0 - i as f64 / steps as f64);
    let shifted: Vec<f64> = match *schedule {
        Schedule::Schnell => linear.collect(),
        Schedule::Shifted { shift } => linear
            .map(|t| shift * t / (1.0 + (shift - 1.0) * t))
            .collect(),
        Schedule::Dev => {
            let mu = shift_mu(image_seq_len, 256, 4096, 0.5, 1.15);
            linear.map(|t| time_shift(mu, t)).collect()
        }
        Schedule::Dynamic {
            base_shift,
            max_shift,
            base_seq_len,
            max_seq_len,
        } => {
            let mu = shift_mu(
                image_seq_len,
                base_seq_len,
                max_seq_len,
                base_shift,
                max_shift,
            );
            linear.map(|t| time_shift(mu, t)).collect()
        }
    };
    shifted.into_iter().chain(std::iter::once(0.0)).collect()
}

/// diffusers' `calculate_shift`.
fn shift_mu(seq: usize, base_seq: usize, max_seq: usize, base_shift: f64, max_shift: f64) -> f64 {
    let m = (max_shift - base_shift) / (max_seq as f64 - base_seq as f64);
    let b = base_shift - m * base_seq as f64;
    seq as f64 * m + b
}

/// diffusers' exponential `time_shift` with sigma 1.
fn time_shift(mu: f64, t: f64) -> f64 {
    mu.exp() / (mu.exp() + (1.0 / t - 1.0))
}
