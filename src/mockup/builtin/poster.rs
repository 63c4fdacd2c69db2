//! The built-in poster: an 18 x 24 in print behind glass in a moulded frame with a white mat,
//! hanging on a wall and seen slightly from the left (a true perspective quad). The colour
//! variants recolour the frame; the glass reflection is an overlay on top of everything.

use super::kit::{blur, noise, Plane};
use super::path::Path;
use super::scene::{drop_shadow, light_maps, manifest, quad, Canvas, Parts};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec};
use crate::mockup::template::Layers;
use crate::mockup::warp::Homography;
use image::RgbaImage;

/// Frame space, in inches: outer frame, mat opening edge, print.
const OUTER: (f64, f64) = (27.0, 33.0);
const FRAME: f64 = 1.5;
const PRINT: (f64, f64, f64, f64) = (4.5, 4.5, 22.5, 28.5);
/// The outer frame on the canvas (unit coordinates), narrower on the right: seen from the left.
const OUTER_QUAD: [[f64; 2]; 4] = [[0.2, 0.125], [0.795, 0.142], [0.795, 0.848], [0.2, 0.865]];
const REFERENCE: f32 = 0.9;

/// Frame space (inches) to canvas pixels for a canvas `scale` pixels wide.
fn frame_to_canvas(scale: f64) -> Homography {
    let q = OUTER_QUAD.map(|[x, y]| [x * scale, y * scale]);
    Homography::rect_to_quad(OUTER.0, OUTER.1, &q).expect("the outer quad is convex")
}

/// The manifest of the built-in poster.
pub(super) fn spec() -> ManifestSpec {
    let h = frame_to_canvas(1.0);
    let (x0, y0, x1, y1) = PRINT;
    let corner = |x, y| {
        let (u, v) = h.apply(x, y);
        [u, v]
    };
    manifest(
        "poster",
        quad([
            corner(x0, y0),
            corner(x1, y0),
            corner(x1, y1),
            corner(x0, y1),
        ]),
        (18.0, 24.0),
        EffectsSpec {
            shading: 0.9,
            highlight: 0.0,
            displacement_px: 0.0,
            tint_reference: REFERENCE,
        },
        &[
            ("white", "#f2f1ee"),
            ("black", "#222224"),
            ("oak", "#b98a5a"),
        ],
    )
}

/// Bounding box on the canvas of the frame-space rectangle `[0, w] x [0, h]`, plus a pixel.
fn bounds(h: &Homography, (w, ht): (f64, f64)) -> (f32, f32, f32, f32) {
    let pts = [(0.0, 0.0), (w, 0.0), (w, ht), (0.0, ht)].map(|(x, y)| h.apply(x, y));
    let xs = pts.map(|p| p.0 as f32);
    let ys = pts.map(|p| p.1 as f32);
    let min = |v: [f32; 4]| v.iter().fold(f32::MAX, |a, &b| a.min(b)) - 1.0;
    let max = |v: [f32; 4]| v.iter().fold(f32::MIN, |a, &b| a.max(b)) + 1.0;
    (min(xs), min(ys), max(xs), max(ys))
}

fn rect_path(h: &Homography, x0: f64, y0: f64, x1: f64, y1: f64) -> Path {
    let p = |x, y| {
        let (u, v) = h.apply(x, y);
        (u as f32, v as f32)
    };
    Path::polygon(&[p(x0, y0), p(x1, y0), p(x1, y1), p(x0, y1)])
}

/// Light on the frame moulding at frame point `(x, y)` (inches): faces turned to the upper
/// left are lit, a rounded profile across the moulding, wood grain along it.
fn moulding(x: f64, y: f64) -> f32 {
    let (w, h) = OUTER;
    let d = [x, y, w - x, h - y];
    let (side, across) =
        d.iter().enumerate().fold(
            (0, f64::MAX),
            |best, (i, &v)| if v < best.1 { (i, v) } else { best },
        );
    let t = (across / FRAME).clamp(0.0, 1.0) as f32;
    let face = [0.98, 1.02, 0.74, 0.66][side];
    let profile = 0.82 + 0.3 * (std::f32::consts::PI * (0.15 + 0.7 * t)).sin();
    let lip = if t > 0.9 { 0.85 } else { 1.0 };
    let along = if side % 2 == 0 { y } else { x } as f32;
    let grain = 0.94 + 0.12 * noise(along * 2.0, t * 60.0 + side as f32 * 40.0, 3.0, 11);
    face * profile * lip * grain
}

/// Light on the mat and print at frame point `(x, y)`: the frame's shadow falls on the
/// mat along the top and left, the mat's cut edge catches light.
fn mat(x: f64, y: f64) -> f32 {
    let (w, h) = OUTER;
    let (dl, dt) = ((x - FRAME) as f32, (y - FRAME) as f32);
    let shadow = 0.16 * (-dt / 0.35).exp() + 0.1 * (-dl / 0.3).exp();
    let falloff = 1.0 - 0.04 * ((x / w + y / h) as f32);
    let (x0, y0, x1, y1) = PRINT;
    let cut = 0.12;
    let in_print = x > x0 && x < x1 && y > y0 && y < y1;
    let on_cut = !in_print && x > x0 - cut && x < x1 + cut && y > y0 - cut && y < y1 + cut;
    let edge = if on_cut { 1.06 } else { 1.0 };
    (1.0 - shadow) * falloff * edge
}

/// Draw the poster's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = f64::from(size);
    let h = frame_to_canvas(s);
    let inv = h
        .inverse()
        .expect("a convex quad's homography is invertible");
    let mut canvas = Canvas::backdrop(n, [0.92, 0.9, 0.87], [0.87, 0.85, 0.82]);
    let (w_in, h_in) = OUTER;
    let outer = rect_path(&h, 0.0, 0.0, w_in, h_in).fill(n, n);
    let glass = rect_path(&h, FRAME, FRAME, w_in - FRAME, h_in - FRAME).fill(n, n);
    let sf = s as f32;
    canvas.shadow(
        &drop_shadow(&outer, 0.018 * sf, 0.014 * sf, 0.022 * sf),
        0.32,
    );
    canvas.shadow(
        &drop_shadow(&outer, 0.003 * sf, 0.003 * sf, 0.004 * sf),
        0.3,
    );

    let frame_space = |x: f32, y: f32| inv.apply(f64::from(x), f64::from(y));
    let (bx0, by0, bx1, by1) = bounds(&h, OUTER);
    let light = Plane::from_fn(n, n, |x, y| {
        if x < bx0 || x > bx1 || y < by0 || y > by1 {
            return 1.0;
        }
        let (fx, fy) = frame_space(x, y);
        let on_glass = fx > FRAME && fy > FRAME && fx < w_in - FRAME && fy < h_in - FRAME;
        if on_glass {
            mat(fx, fy)
        } else {
            moulding(fx, fy)
        }
    });
    canvas.paint(&outer, &light, [REFERENCE; 3]);
    let mut frame = outer.clone();
    frame.zip_with(&glass, |a, g| (a - g).max(0.0));

    let (x0, y0, x1, y1) = PRINT;
    let print = rect_path(&h, x0, y0, x1, y1).fill(n, n);
    let (shading, highlight) = light_maps(&light, &print, 0.0);
    Parts {
        canvas,
        tint: frame,
        mask: None,
        shading: Some(shading),
        highlight: Some(highlight),
        displacement: None,
        overlay: Some(reflection(&glass, &inv, n)),
    }
    .into_layers()
}

/// A faint sheen and one soft diagonal reflection on the glass.
fn reflection(glass: &Plane, inv: &Homography, n: usize) -> RgbaImage {
    let soft = blur(glass, 0.5);
    let alpha = Plane::from_fn(n, n, |x, y| {
        if soft.data[y as usize * n + x as usize] <= 0.0 {
            return 0.0;
        }
        let (fx, fy) = inv.apply(f64::from(x), f64::from(y));
        let d = (fx + 0.55 * fy) as f32;
        let band =
            (-((d - 14.0) / 2.2).powi(2)).exp() * 0.09 + (-((d - 19.0) / 0.6).powi(2)).exp() * 0.04;
        (0.025 + band) * soft.data[y as usize * n + x as usize]
    });
    let a = alpha.to_u8(|v| v);
    let data: Vec<u8> = a.iter().flat_map(|&v| [255, 255, 255, v]).collect();
    RgbaImage::from_raw(n as u32, n as u32, data).expect("4 bytes per pixel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moulding_top_face_is_lit_more_than_bottom() {
        assert!(moulding(13.0, 0.7) > moulding(13.0, 32.3));
    }

    #[test]
    fn print_quad_is_narrower_on_the_right() {
        let h = frame_to_canvas(1.0);
        let (_, ty) = h.apply(22.5, 4.5);
        let (_, by) = h.apply(22.5, 28.5);
        let (_, ly) = h.apply(4.5, 4.5);
        let (_, lb) = h.apply(4.5, 28.5);
        assert!(by - ty < lb - ly);
    }
}
