//! Shared pieces of the built-in product scenes: an 8-bit canvas with a studio backdrop, drop
//! shadows and painted regions; the print's shading and highlight maps from a lighting plane;
//! the built-in manifests; and the conversion of the drawn parts into [`Layers`].

use super::kit::{blur_shifted, Plane};
use super::path::Path;
use crate::mockup::manifest::{EffectsSpec, LayersSpec, ManifestSpec, PrintAreaSpec, PrintSpec};
use crate::mockup::template::Layers;
use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

/// Canvas side of every built-in template's manifest (they are drawn at any size).
pub(super) const CANVAS: u32 = 2000;

/// The product photo being drawn: opaque 8-bit RGBA, painted with float maths per operation.
pub(super) struct Canvas {
    pub size: usize,
    pub img: RgbaImage,
}

fn q(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

impl Canvas {
    /// A studio backdrop: `top` colour fading to `bottom`, with a soft vignette.
    pub(super) fn backdrop(size: usize, top: [f32; 3], bottom: [f32; 3]) -> Canvas {
        let s = size as f32;
        // The vignette's horizontal term, once per column.
        let across: Vec<f32> = (0..size)
            .map(|x| {
                let u = (x as f32 + 0.5) / s - 0.5;
                u * u * 2.0
            })
            .collect();
        let mut img = RgbaImage::new(size as u32, size as u32);
        img.par_chunks_mut(size * 4)
            .enumerate()
            .for_each(|(y, row)| {
                let v = (y as f32 + 0.5) / s;
                let down = (v - 0.45) * (v - 0.45) * 1.5;
                let colour: [f32; 3] = std::array::from_fn(|c| top[c] + (bottom[c] - top[c]) * v);
                for (p, &a) in row.chunks_exact_mut(4).zip(&across) {
                    let vignette = 1.0 - 0.10 * (a + down);
                    for c in 0..3 {
                        p[c] = q(colour[c] * vignette);
                    }
                    p[3] = 255;
                }
            });
        Canvas { size, img }
    }

    fn each(&mut self, cov: &Plane, f: impl Fn(&mut [u8], usize) + Sync) {
        let n = self.size;
        self.img
            .par_chunks_mut(n * 4)
            .enumerate()
            .for_each(|(y, row)| {
                for (x, p) in row.chunks_exact_mut(4).enumerate() {
                    let i = y * n + x;
                    if cov.data[i] > 0.0 {
                        f(p, i);
                    }
                }
            });
    }

    /// Darken everything by `opacity * shadow`.
    pub(super) fn shadow(&mut self, shadow: &Plane, opacity: f32) {
        self.each(shadow, |p, i| {
            let k = 1.0 - opacity * shadow.data[i];
            for v in &mut p[..3] {
                *v = q(f32::from(*v) / 255.0 * k);
            }
        });
    }

    /// Paint `colour * lum` where `cov` covers.
    pub(super) fn paint(&mut self, cov: &Plane, lum: &Plane, colour: [f32; 3]) {
        self.each(cov, |p, i| {
            let (a, l) = (cov.data[i].min(1.0), lum.data[i]);
            for (v, k) in p[..3].iter_mut().zip(colour) {
                let old = f32::from(*v) / 255.0;
                *v = q(old + (l * k - old) * a);
            }
        });
    }

    /// Paint a flat colour where `shape` covers (only its bounding box is touched).
    pub(super) fn paint_flat(&mut self, shape: &Path, colour: [f32; 3]) {
        let cov = shape.coverage(self.size, self.size);
        let n = self.size;
        let rows = &mut (*self.img)[cov.y0 * n * 4..(cov.y0 + cov.h) * n * 4];
        rows.par_chunks_mut(n * 4)
            .zip(cov.data.par_chunks(cov.w.max(1)))
            .for_each(|(row, c)| {
                for (p, &a) in row[cov.x0 * 4..].chunks_exact_mut(4).zip(c) {
                    for (v, k) in p[..3].iter_mut().zip(colour) {
                        let old = f32::from(*v) / 255.0;
                        *v = q(old + (k - old) * a);
                    }
                }
            });
    }

    /// The finished image.
    pub(super) fn into_rgba(self) -> RgbaImage {
        self.img
    }
}

/// A grey image of a plane (0..=1).
pub(super) fn gray(p: &Plane) -> GrayImage {
    GrayImage::from_raw(p.w as u32, p.h as u32, p.to_u8(|v| v)).expect("1 byte per pixel")
}

/// A soft drop shadow of `cov`: blurred by `sigma` and moved by `(dx, dy)` pixels.
pub(super) fn drop_shadow(cov: &Plane, sigma: f32, dx: f32, dy: f32) -> Plane {
    blur_shifted(cov, sigma, (dx, dy))
}

/// The shading and highlight maps for the print from a lighting plane (1 = neutral): light
/// below 1 darkens (multiply), above 1 brightens (hard light), `gain` exaggerates the latter.
pub(super) fn light_maps(light: &Plane, region: &Plane, gain: f32) -> (GrayImage, GrayImage) {
    let (w, h) = (light.w as u32, light.h as u32);
    let pairs: Vec<(u8, u8)> = light
        .data
        .par_iter()
        .zip(region.data.par_iter())
        .map(|(&l, &r)| {
            let r = r.min(1.0);
            let shade = 1.0 - (1.0 - l.min(1.0)) * r;
            let high = 0.5 + ((l - 1.0).max(0.0) * gain * r).min(0.5);
            (q(shade), q(high))
        })
        .collect();
    let (shade, high): (Vec<u8>, Vec<u8>) = pairs.into_iter().unzip();
    let img = |v| GrayImage::from_raw(w, h, v).expect("1 byte per pixel");
    (img(shade), img(high))
}

/// Layer set from planes; `mask` and `overlay` are optional.
pub(super) struct Parts {
    pub canvas: Canvas,
    pub tint: Plane,
    pub mask: Option<Plane>,
    pub shading: Option<GrayImage>,
    pub highlight: Option<GrayImage>,
    pub displacement: Option<Vec<u8>>,
    pub(crate) overlay: Option<RgbaImage>,
}

impl Parts {
    pub(super) fn into_layers(self) -> Layers {
        Layers {
            base: self.canvas.into_rgba(),
            tint: Some(gray(&self.tint)),
            mask: self.mask.as_ref().map(gray),
            shading: self.shading,
            highlight: self.highlight,
            displacement: self.displacement,
            overlay: self.overlay,
        }
    }
}

/// A built-in manifest: canvas `CANVAS` square, layers named after what the code draws.
pub(super) fn manifest(
    product: &str,
    print_area: PrintAreaSpec,
    inches: (f64, f64),
    effects: EffectsSpec,
    colors: &[(&str, &str)],
) -> ManifestSpec {
    ManifestSpec {
        version: 1,
        product: product.to_owned(),
        view: "front".to_owned(),
        canvas: [CANVAS, CANVAS],
        layers: LayersSpec {
            base: format!("{product} (drawn by code)"),
            ..LayersSpec::default()
        },
        print_area,
        print: PrintSpec {
            width_in: inches.0,
            height_in: inches.1,
            dpi: 300,
        },
        effects,
        colors: colors
            .iter()
            .map(|(n, hex)| ((*n).to_owned(), (*hex).to_owned()))
            .collect(),
    }
}

/// A quad print area from corners in unit canvas coordinates.
pub(super) fn quad(corners: [[f64; 2]; 4]) -> PrintAreaSpec {
    let k = f64::from(CANVAS);
    PrintAreaSpec::Quad {
        corners: corners.map(|[x, y]| [x * k, y * k]),
    }
}

/// An axis-aligned print rectangle in unit canvas coordinates.
pub(super) fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> PrintAreaSpec {
    quad([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
}
