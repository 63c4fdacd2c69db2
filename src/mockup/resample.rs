//! Separable image resampling (Catmull-Rom, widened when shrinking so it also low-passes) in
//! fixed point, rows in parallel. RGBA is resampled premultiplied, so transparent pixels do not
//! bleed their colour into edges. Used for print files and for custom templates at other sizes.

use super::blend::premultiply;
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

const WEIGHT_BITS: u32 = 14;
/// The intermediate rows keep this many fractional bits.
const MID_BITS: u32 = 7;

/// Resize straight-alpha RGBA to `w x h` (premultiplied internally).
pub(crate) fn resize_rgba(src: &RgbaImage, w: u32, h: u32) -> RgbaImage {
    let opaque = src.pixels().all(|p| p.0[3] == 255);
    let mut data = src.as_raw().clone();
    if !opaque {
        data.par_chunks_mut(4).for_each(|p| {
            let q = premultiply([p[0], p[1], p[2], p[3]]);
            for (d, v) in p.iter_mut().zip(q) {
                *d = v as u8;
            }
        });
    }
    let mut out = resize_planar::<4>(&data, src.dimensions(), (w, h));
    if !opaque {
        out.par_chunks_mut(4).for_each(unpremultiply);
    }
    RgbaImage::from_raw(w, h, out).expect("resize_planar returns w*h*4 bytes")
}

/// Resize a grey image to `w x h`.
pub(crate) fn resize_gray(src: &GrayImage, w: u32, h: u32) -> GrayImage {
    let out = resize_planar::<1>(src.as_raw(), src.dimensions(), (w, h));
    GrayImage::from_raw(w, h, out).expect("resize_planar returns w*h bytes")
}

/// Back to straight alpha. Resampling overshoot can leave a colour above its alpha, which
/// premultiplied colour never is, so clamp first.
fn unpremultiply(p: &mut [u8]) {
    let a = u32::from(p[3]);
    if a == 0 {
        p[..3].fill(0);
    } else if a < 255 {
        for v in &mut p[..3] {
            *v = ((u32::from(*v).min(a) * 255 + a / 2) / a) as u8;
        }
    }
}

/// Taps of one output sample: first source index and fixed-point weights (sum 2^14).
struct Tap {
    start: usize,
    weights: Vec<i32>,
}

fn catmull_rom(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.5 * x * x * x - 2.5 * x * x + 1.0
    } else if x < 2.0 {
        -0.5 * x * x * x + 2.5 * x * x - 4.0 * x + 2.0
    } else {
        0.0
    }
}

fn taps(src: usize, dst: usize) -> Vec<Tap> {
    let scale = dst as f64 / src as f64;
    let widen = (1.0 / scale).max(1.0);
    let support = 2.0 * widen;
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) / scale - 0.5;
            let first = ((centre - support).floor() as i64 + 1).max(0) as usize;
            let last = ((centre + support).floor() as i64).clamp(0, src as i64 - 1) as usize;
            let first = first.min(last);
            let raw: Vec<f64> = (first..=last)
                .map(|j| catmull_rom((j as f64 - centre) / widen))
                .collect();
            let sum: f64 = raw.iter().sum();
            let one = f64::from(1 << WEIGHT_BITS);
            let mut weights: Vec<i32> =
                raw.iter().map(|w| (w / sum * one).round() as i32).collect();
            let err = (1 << WEIGHT_BITS) - weights.iter().sum::<i32>();
            if let Some(max) = weights.iter_mut().max() {
                *max += err;
            }
            Tap {
                start: first,
                weights,
            }
        })
        .collect()
}

/// Resize an interleaved `N`-channel 8-bit image.
pub(super) fn resize_planar<const N: usize>(
    src: &[u8],
    from: (u32, u32),
    to: (u32, u32),
) -> Vec<u8> {
    let (sw, sh) = (from.0 as usize, from.1 as usize);
    let (dw, dh) = (to.0 as usize, to.1 as usize);
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let (tx, ty) = (taps(sw, dw), taps(sh, dh));
    let mut mid = vec![0u16; sh * dw * N];
    mid.par_chunks_mut(dw * N)
        .zip(src.par_chunks(sw * N))
        .for_each(|(out, row)| {
            for (x, tap) in tx.iter().enumerate() {
                let mut acc = [0i32; N];
                for (j, &w) in tap.weights.iter().enumerate() {
                    let s = (tap.start + j) * N;
                    for c in 0..N {
                        acc[c] += w * i32::from(row[s + c]);
                    }
                }
                for c in 0..N {
                    let v =
                        (acc[c] + (1 << (WEIGHT_BITS - MID_BITS - 1))) >> (WEIGHT_BITS - MID_BITS);
                    out[x * N + c] = v.clamp(0, 255 << MID_BITS) as u16;
                }
            }
        });
    let mut out = vec![0u8; dh * dw * N];
    out.par_chunks_mut(dw * N)
        .zip(ty.par_iter())
        .for_each(|(row, tap)| {
            let mut acc = vec![0i32; dw * N];
            for (j, &w) in tap.weights.iter().enumerate() {
                let line = &mid[(tap.start + j) * dw * N..(tap.start + j + 1) * dw * N];
                for (a, &v) in acc.iter_mut().zip(line) {
                    *a += w * i32::from(v);
                }
            }
            let shift = WEIGHT_BITS + MID_BITS;
            for (o, a) in row.iter_mut().zip(acc) {
                *o = ((a + (1 << (shift - 1))) >> shift).clamp(0, 255) as u8;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_weights_sum_to_one() {
        for (s, d) in [(100, 37), (37, 100), (2000, 128), (5, 5)] {
            for t in taps(s, d) {
                assert_eq!(t.weights.iter().sum::<i32>(), 1 << WEIGHT_BITS);
            }
        }
    }

    #[test]
    fn resize_flat_colour_stays_flat() {
        let img = RgbaImage::from_pixel(64, 48, image::Rgba([200, 100, 50, 255]));
        let out = resize_rgba(&img, 23, 97);
        assert!(out.pixels().all(|p| p.0 == [200, 100, 50, 255]));
    }

    #[test]
    fn resize_transparent_surround_keeps_colour_at_edges() {
        let mut img = RgbaImage::new(40, 40);
        for y in 10..30 {
            for x in 10..30 {
                img.put_pixel(x, y, image::Rgba([255, 0, 0, 255]));
            }
        }
        let out = resize_rgba(&img, 17, 17);
        for p in out.pixels().filter(|p| p.0[3] > 20) {
            assert!(p.0[0] > 230 && p.0[1] < 10, "{p:?}");
        }
    }
}
