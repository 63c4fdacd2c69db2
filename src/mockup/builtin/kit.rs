//! A small drawing kit for the built-in products: float planes, Gaussian blur (three box
//! passes, on a reduced copy for wide radii) and smooth value noise. Shapes are in `path.rs`.
//! Everything is deterministic and works in pixels of the plane it draws on.

use rayon::prelude::*;

/// A single-channel float image.
#[derive(Debug, Clone)]
pub(super) struct Plane {
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl Plane {
    /// A plane filled with `v`.
    pub(super) fn new(w: usize, h: usize, v: f32) -> Plane {
        Plane {
            w,
            h,
            data: vec![v; w * h],
        }
    }

    /// A plane whose pixel `(x, y)` (centre coordinates) is `f(x, y)`; rows in parallel.
    pub(super) fn from_fn(w: usize, h: usize, f: impl Fn(f32, f32) -> f32 + Sync) -> Plane {
        let mut p = Plane::new(w, h, 0.0);
        p.data.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
            for (x, v) in row.iter_mut().enumerate() {
                *v = f(x as f32 + 0.5, y as f32 + 0.5);
            }
        });
        p
    }

    /// Combine with another plane of the same size, in place.
    pub(super) fn zip_with(&mut self, other: &Plane, f: impl Fn(f32, f32) -> f32 + Sync) {
        self.data
            .par_iter_mut()
            .zip(other.data.par_iter())
            .for_each(|(a, &b)| *a = f(*a, b));
    }

    /// Shift by whole pixels, repeating the edges.
    pub(super) fn shifted(&self, dx: isize, dy: isize) -> Plane {
        let mut out = Plane::new(self.w, self.h, 0.0);
        let w = self.w as isize;
        out.data
            .par_chunks_mut(self.w)
            .enumerate()
            .for_each(|(y, row)| {
                let sy = (y as isize - dy).clamp(0, self.h as isize - 1) as usize;
                let src = &self.data[sy * self.w..(sy + 1) * self.w];
                for (x, v) in row.iter_mut().enumerate() {
                    *v = src[(x as isize - dx).clamp(0, w - 1) as usize];
                }
            });
        out
    }

    /// Bilinear enlargement of a reduced plane by `factor` to `w x h`, moved by `shift`
    /// pixels of the result.
    pub(super) fn enlarged(&self, factor: usize, w: usize, h: usize, shift: (f32, f32)) -> Plane {
        let k = 1.0 / factor as f32;
        let taps = |n: usize, limit: usize, d: f32| -> Vec<(usize, usize, f32)> {
            (0..n)
                .map(|i| {
                    let p = ((i as f32 + 0.5 - d) * k - 0.5).max(0.0);
                    let i0 = (p as usize).min(limit - 1);
                    (i0, (i0 + 1).min(limit - 1), p - i0 as f32)
                })
                .collect()
        };
        let (tx, ty) = (taps(w, self.w, shift.0), taps(h, self.h, shift.1));
        let mut out = Plane::new(w, h, 0.0);
        out.data
            .par_chunks_mut(w)
            .zip(ty.par_iter())
            .for_each(|(row, &(y0, y1, fy))| {
                // Between the two source rows once (the reduced width), then along the row.
                let (r0, r1) = (
                    &self.data[y0 * self.w..(y0 + 1) * self.w],
                    &self.data[y1 * self.w..(y1 + 1) * self.w],
                );
                let line: Vec<f32> = r0.iter().zip(r1).map(|(a, b)| a + (b - a) * fy).collect();
                for (v, &(x0, x1, fx)) in row.iter_mut().zip(&tx) {
                    *v = line[x0] + (line[x1] - line[x0]) * fx;
                }
            });
        out
    }

    /// 8-bit values of `f(v)` clamped to 0..=1.
    pub(super) fn to_u8(&self, f: impl Fn(f32) -> f32 + Sync) -> Vec<u8> {
        self.data
            .par_iter()
            .map(|&v| (f(v).clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
            .collect()
    }
}

/// Gaussian blur with standard deviation `sigma` pixels (edges repeated).
pub(super) fn blur(p: &Plane, sigma: f32) -> Plane {
    blur_shifted(p, sigma, (0.0, 0.0))
}

/// A blur moved by `shift` pixels (a drop shadow).
pub(super) fn blur_shifted(p: &Plane, sigma: f32, shift: (f32, f32)) -> Plane {
    // Wide blurs run on a reduced copy: the result is smooth, so nothing is lost.
    let factor = ((sigma / 3.0) as usize).clamp(1, 16);
    if factor > 1 {
        let small = reduce(p, factor);
        return box3(&small, sigma / factor as f32).enlarged(factor, p.w, p.h, shift);
    }
    let out = if sigma < 0.3 {
        p.clone()
    } else {
        box3(p, sigma)
    };
    if shift == (0.0, 0.0) {
        out
    } else {
        out.shifted(shift.0.round() as isize, shift.1.round() as isize)
    }
}

/// Average `f x f` blocks (the last block repeats the edge).
pub(super) fn reduce(p: &Plane, f: usize) -> Plane {
    let (w, h) = (p.w.div_ceil(f), p.h.div_ceil(f));
    let mut out = Plane::new(w, h, 0.0);
    out.data.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for yy in (y * f..(y + 1) * f).map(|v| v.min(p.h - 1)) {
            let line = &p.data[yy * p.w..(yy + 1) * p.w];
            for (x, v) in row.iter_mut().enumerate() {
                *v += (x * f..(x + 1) * f)
                    .map(|i| line[i.min(p.w - 1)])
                    .sum::<f32>();
            }
        }
        let norm = 1.0 / (f * f) as f32;
        row.iter_mut().for_each(|v| *v *= norm);
    });
    out
}

/// Three box blurs approximate a Gaussian; each box has radius `r` with variance-matched sizes.
fn box3(p: &Plane, sigma: f32) -> Plane {
    let r = (((12.0 * sigma * sigma / 3.0 + 1.0).sqrt() - 1.0) / 2.0)
        .round()
        .max(1.0) as usize;
    let mut out = p.clone();
    for _ in 0..3 {
        out = box_h(&out, r);
        out = box_v(&out, r);
    }
    out
}

/// Vertical box blur: running sums over whole rows, column bands in parallel.
fn box_v(p: &Plane, r: usize) -> Plane {
    let (w, h) = (p.w, p.h);
    let norm = 1.0 / (2 * r + 1) as f32;
    let band = 64;
    let bands: Vec<Vec<f32>> = (0..w.div_ceil(band))
        .into_par_iter()
        .map(|b| {
            let (x0, x1) = (b * band, ((b + 1) * band).min(w));
            let bw = x1 - x0;
            let row = |y: isize| {
                let y = y.clamp(0, h as isize - 1) as usize;
                &p.data[y * w + x0..y * w + x1]
            };
            let mut sum = vec![0f32; bw];
            for y in -(r as isize)..=r as isize {
                sum.iter_mut().zip(row(y)).for_each(|(s, v)| *s += v);
            }
            let mut out = vec![0f32; bw * h];
            for y in 0..h {
                let o = &mut out[y * bw..(y + 1) * bw];
                o.iter_mut().zip(&sum).for_each(|(o, s)| *o = s * norm);
                let (add, sub) = (
                    row(y as isize + r as isize + 1),
                    row(y as isize - r as isize),
                );
                for ((s, a), d) in sum.iter_mut().zip(add).zip(sub) {
                    *s += a - d;
                }
            }
            out
        })
        .collect();
    let mut out = Plane::new(w, h, 0.0);
    out.data.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (b, data) in bands.iter().enumerate() {
            let (x0, x1) = (b * band, ((b + 1) * band).min(w));
            row[x0..x1].copy_from_slice(&data[y * (x1 - x0)..(y + 1) * (x1 - x0)]);
        }
    });
    out
}

fn box_h(p: &Plane, r: usize) -> Plane {
    let mut out = Plane::new(p.w, p.h, 0.0);
    let norm = 1.0 / (2 * r + 1) as f32;
    let w = p.w as isize;
    out.data
        .par_chunks_mut(p.w)
        .zip(p.data.par_chunks(p.w))
        .for_each(|(o, row)| {
            let at = |i: isize| row[i.clamp(0, w - 1) as usize];
            let mut sum: f32 = (-(r as isize)..=r as isize).map(at).sum();
            for (x, v) in o.iter_mut().enumerate() {
                *v = sum * norm;
                let x = x as isize;
                sum += at(x + r as isize + 1) - at(x - r as isize);
            }
        });
    out
}

/// A repeatable pseudo-random value in 0..1 for integer coordinates.
pub(super) fn hash(x: i32, y: i32, seed: u32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343) ^ (y as u32).wrapping_mul(0xd816_3841);
    h ^= seed.wrapping_mul(0xcb1a_b31f);
    h = (h ^ (h >> 13)).wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0xffff) as f32 / 65535.0
}

/// Smooth value noise in 0..1 with features about `cell` pixels apart.
pub(super) fn noise(x: f32, y: f32, cell: f32, seed: u32) -> f32 {
    let (gx, gy) = (x / cell, y / cell);
    let (x0, y0) = (gx.floor(), gy.floor());
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    let (fx, fy) = (smooth(gx - x0), smooth(gy - y0));
    let (ix, iy) = (x0 as i32, y0 as i32);
    let top = hash(ix, iy, seed) * (1.0 - fx) + hash(ix + 1, iy, seed) * fx;
    let bottom = hash(ix, iy + 1, seed) * (1.0 - fx) + hash(ix + 1, iy + 1, seed) * fx;
    top * (1.0 - fy) + bottom * fy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_the_total_and_spreads() {
        let mut p = Plane::new(64, 64, 0.0);
        p.data[32 * 64 + 32] = 1.0;
        let b = blur(&p, 3.0);
        let total: f32 = b.data.iter().sum();
        assert!((total - 1.0).abs() < 1e-3 && b.data[32 * 64 + 32] < 0.05);
    }
}
