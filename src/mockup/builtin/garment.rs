//! Cloth for the garment-like built-ins (t-shirt, hoodie, tote bag): folds as a height field of
//! soft ridges plus low-frequency noise, lighting from that field with rolled, darker edges and a
//! fine grain, seams as thin darker lines, and the standard finish (backdrop, drop shadows,
//! print maps) shared by those products.

use super::kit::{blur, hash, noise, Plane};
use super::path::Path;
use super::scene::{drop_shadow, light_maps, Canvas, Parts};
use rayon::prelude::*;

/// A soft fold from `a` to `b` (unit canvas coordinates), `width` across (unit), raised by
/// `height` times its width (negative for a crease).
#[derive(Debug, Clone, Copy)]
pub(super) struct Ridge {
    pub a: (f32, f32),
    pub b: (f32, f32),
    pub width: f32,
    pub height: f32,
}

impl Ridge {
    pub(super) const fn new(a: (f32, f32), b: (f32, f32), width: f32, height: f32) -> Ridge {
        Ridge {
            a,
            b,
            width,
            height,
        }
    }

    /// The same fold mirrored about the canvas's vertical centre line.
    pub(super) fn mirrored(&self) -> Ridge {
        Ridge {
            a: (1.0 - self.a.0, self.a.1),
            b: (1.0 - self.b.0, self.b.1),
            ..*self
        }
    }
}

/// The cloth's height field, kept at a reduced resolution (folds are smooth) and enlarged only
/// as lighting and displacement.
pub(super) struct Folds {
    /// Heights in full-size pixels, one sample per `factor` x `factor` block.
    h: Plane,
    factor: usize,
    size: usize,
}

/// The ridges, tapered at their ends, plus smooth noise of `noise_amp` (unit) at `noise_cell`
/// (unit) spacing, on a `size`-pixel canvas.
pub(super) fn height_field(
    size: usize,
    ridges: &[Ridge],
    noise_amp: f32,
    noise_cell: f32,
) -> Folds {
    let factor = (size / 400).max(1);
    let n = size.div_ceil(factor);
    // Work in reduced pixels, store heights in full-size pixels.
    let (s, f) = (size as f32, factor as f32);
    let mut h = Plane::from_fn(n, n, |x, y| {
        (noise(x * f, y * f, noise_cell * s, 7) - 0.5) * noise_amp * s
    });
    for r in ridges {
        add_ridge(&mut h, r, s, f);
    }
    Folds { h, factor, size }
}

fn add_ridge(h: &mut Plane, r: &Ridge, s: f32, f: f32) {
    let n = h.w;
    let (ax, ay, bx, by) = (r.a.0 * s / f, r.a.1 * s / f, r.b.0 * s / f, r.b.1 * s / f);
    let (w, peak) = (r.width * s / f, r.height * r.width * s);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = (dx * dx + dy * dy).max(1e-6);
    let y0 = (ay.min(by) - 3.0 * w).max(0.0) as usize;
    let y1 = ((ay.max(by) + 3.0 * w).max(0.0) as usize).min(n);
    let x0 = (ax.min(bx) - 3.0 * w).max(0.0) as usize;
    let x1 = ((ax.max(bx) + 3.0 * w).max(0.0) as usize).min(n);
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    h.data[y0 * n..y1 * n]
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, row)| {
            let py = (y0 + i) as f32 + 0.5;
            for (x, v) in row.iter_mut().enumerate().take(x1).skip(x0) {
                let px = x as f32 + 0.5;
                let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
                let (qx, qy) = (ax + t * dx - px, ay + t * dy - py);
                let d2 = (qx * qx + qy * qy) / (w * w);
                let taper = (std::f32::consts::PI * t).sin();
                *v += peak * taper * (-2.0 * d2).exp();
            }
        });
}

impl Folds {
    /// Slopes (full-size pixels of height per pixel) of the reduced field.
    fn slopes(&self) -> (Plane, Plane) {
        let (n, k) = (self.h.w, 0.5 / self.factor as f32);
        let at = |x: usize, y: usize| self.h.data[y.min(n - 1) * n + x.min(n - 1)];
        let gx = Plane::from_fn(n, n, |x, y| {
            let (x, y) = (x as usize, y as usize);
            (at(x + 1, y) - at(x.saturating_sub(1), y)) * k
        });
        let gy = Plane::from_fn(n, n, |x, y| {
            let (x, y) = (x as usize, y as usize);
            (at(x, y + 1) - at(x, y.saturating_sub(1))) * k
        });
        (gx, gy)
    }

    /// Lambert light from the upper left: 1 on flat cloth, less on slopes facing away.
    pub(super) fn light(&self) -> Plane {
        let l = [-0.45f32, -0.55, 0.70];
        let norm = (l[0] * l[0] + l[1] * l[1] + l[2] * l[2]).sqrt();
        let l = l.map(|v| v / norm);
        let (mut gx, gy) = self.slopes();
        gx.zip_with(&gy, |gx, gy| {
            let n = (gx * gx + gy * gy + 1.0).sqrt();
            (-gx * l[0] - gy * l[1] + l[2]) / n / l[2]
        });
        gx.enlarged(self.factor, self.size, self.size, (0.0, 0.0))
    }

    /// Two-channel displacement pushing the print down the slopes, the steepest slope
    /// giving the full shift.
    pub(super) fn displacement(&self) -> Vec<u8> {
        let (gx, gy) = self.slopes();
        let max = gx
            .data
            .iter()
            .chain(&gy.data)
            .fold(1e-6f32, |m, v| m.max(v.abs()));
        let big = |p: &Plane| p.enlarged(self.factor, self.size, self.size, (0.0, 0.0));
        let (gx, gy) = (big(&gx), big(&gy));
        let q = |v: f32| (128.0 + 127.0 * (v / max).clamp(-1.0, 1.0) + 0.5) as u8;
        gx.data
            .par_iter()
            .zip(gy.data.par_iter())
            .flat_map_iter(|(&x, &y)| [q(x), q(y)])
            .collect()
    }
}

/// Light on the cloth (1 = flat, lit): folds from `h`, edges rolled over within `rim` (unit)
/// of the outline `cov`, brighter towards the top, and a fine grain.
pub(super) fn cloth_light(cov: &Plane, folds: &Folds, rim: f32, grain: f32) -> Plane {
    let s = cov.w as f32;
    let soft = blur(cov, rim * s);
    let mut light = folds.light();
    let (top, bottom) = (0.12 * s, 0.92 * s);
    light
        .data
        .par_chunks_mut(cov.w)
        .enumerate()
        .for_each(|(y, row)| {
            let yf = y as f32 + 0.5;
            let gradient = 1.03 - 0.07 * ((yf - top) / (bottom - top)).clamp(0.0, 1.0);
            for (x, v) in row.iter_mut().enumerate() {
                let i = y * cov.w + x;
                let edge = ((1.0 - soft.data[i]) * 2.0).clamp(0.0, 1.0);
                let g = 1.0 + grain * (hash(x as i32, y as i32, 3) - 0.5);
                *v *= gradient * (1.0 - 0.28 * edge * edge) * g;
            }
        });
    light
}

/// The points of a path built by `build` (for seams along curves).
pub(super) fn curve(build: impl FnOnce(&mut Path)) -> Vec<(f32, f32)> {
    let mut p = Path::new();
    build(&mut p);
    p.points().to_vec()
}

/// Darken `light` under `shape` by `depth` (0..1); only the shape's bounding box is touched.
pub(super) fn press(light: &mut Plane, shape: &Path, depth: f32) {
    shape
        .coverage(light.w, light.h)
        .apply(light, |v, c| v * (1.0 - depth * c));
}

/// Darken `light` by `depth` times a coverage plane.
pub(super) fn press_plane(light: &mut Plane, cov: &Plane, depth: f32) {
    light.zip_with(cov, |v, c| v * (1.0 - depth * c));
}

/// What a garment scene is made of; `light` already holds every detail.
pub(super) struct Cloth {
    pub cov: Plane,
    pub light: Plane,
    pub(crate) folds: Folds,
    /// Where the print may show (the cloth minus occluders), 0..=1.
    pub mask: Plane,
    /// Flat, lit luma of the neutral product (the manifest's `tint_reference`).
    pub reference: f32,
}

/// Backdrop, two drop shadows (tight and wide), the neutral cloth and the print maps.
pub(super) fn finish(c: Cloth) -> Parts {
    let s = c.cov.w as f32;
    let mut canvas = Canvas::backdrop(c.cov.w, [0.94, 0.94, 0.93], [0.86, 0.86, 0.85]);
    canvas.shadow(&drop_shadow(&c.cov, 0.03 * s, 0.006 * s, 0.014 * s), 0.16);
    canvas.shadow(&drop_shadow(&c.cov, 0.006 * s, 0.002 * s, 0.005 * s), 0.22);
    canvas.paint(&c.cov, &c.light, [c.reference; 3]);
    let (shading, highlight) = light_maps(&c.light, &c.mask, 2.5);
    Parts {
        canvas,
        tint: c.cov,
        mask: Some(c.mask),
        shading: Some(shading),
        highlight: Some(highlight),
        displacement: Some(c.folds.displacement()),
        overlay: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn height_field_ridge_peaks_on_its_middle() {
        let r = [Ridge::new((0.2, 0.5), (0.8, 0.5), 0.05, 0.4)];
        let f = height_field(100, &r, 0.0, 0.1);
        let mid = f.h.data[50 * 100 + 50];
        assert!((mid - 0.4 * 0.05 * 100.0).abs() < 0.1, "{mid}");
        assert!(f.h.data[10 * 100 + 50].abs() < 1e-3);
        let light = f.light();
        assert!(light.data[48 * 100 + 50] > light.data[52 * 100 + 50]);
    }
}
