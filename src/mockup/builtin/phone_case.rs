//! The built-in phone case: the back of a slim case, upright, with its raised rim, side button
//! covers and a cut-out that shows the phone's camera module; the print covers the back (2.9 x
//! 6.16 in) except the cut-out, and a glossy sheen lies over everything.

use super::kit::Plane;
use super::path::{stroke, Path};
use super::scene::{drop_shadow, light_maps, manifest, rect, Canvas, Parts};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec};
use crate::mockup::template::Layers;
use image::RgbaImage;

/// Outer case (unit canvas coordinates) and corner radius.
const CASE: (f32, f32, f32, f32, f32) = (0.32, 0.13, 0.68, 0.87, 0.07);
const RIM: f32 = 0.011;
/// Print area: the back inside the rim.
const PRINT: (f64, f64, f64, f64) = (0.331, 0.141, 0.669, 0.859);
/// Camera cut-out and its corner radius.
const CUTOUT: (f32, f32, f32, f32, f32) = (0.345, 0.155, 0.47, 0.285, 0.032);
const REFERENCE: f32 = 0.9;

/// The manifest of the built-in phone case.
pub(super) fn spec() -> ManifestSpec {
    let (x0, y0, x1, y1) = PRINT;
    manifest(
        "phone_case",
        rect(x0, y0, x1, y1),
        (2.9, 6.16),
        EffectsSpec {
            shading: 0.8,
            highlight: 0.5,
            displacement_px: 0.0,
            tint_reference: REFERENCE,
        },
        &[
            ("white", "#f4f4f4"),
            ("black", "#1e1e20"),
            ("navy", "#22314f"),
        ],
    )
}

fn rounded(r: (f32, f32, f32, f32, f32), inset: f32, s: f32) -> Path {
    let (x0, y0, x1, y1, rad) = r;
    Path::rounded_rect(
        (x0 + inset) * s,
        (y0 + inset) * s,
        (x1 - inset) * s,
        (y1 - inset) * s,
        (rad - inset).max(0.0) * s,
    )
}

fn circle(x: f32, y: f32, r: f32, s: f32) -> Path {
    Path::ellipse(x * s, y * s, r * s, r * s)
}

/// Draw the phone case's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = size as f32;
    let mut canvas = Canvas::backdrop(n, [0.93, 0.93, 0.94], [0.85, 0.85, 0.86]);
    let mut case = rounded(CASE, 0.0, s);
    for (y0, y1) in [(0.27, 0.33), (0.36, 0.42), (0.24, 0.255)] {
        case.extend(&Path::rounded_rect(
            0.676 * s,
            y0 * s,
            0.685 * s,
            y1 * s,
            0.004 * s,
        ));
    }
    let case = case.fill(n, n);
    canvas.shadow(&drop_shadow(&case, 0.02 * s, 0.01 * s, 0.018 * s), 0.28);
    canvas.shadow(&drop_shadow(&case, 0.004 * s, 0.003 * s, 0.004 * s), 0.3);

    let back = rounded(CASE, RIM, s).fill(n, n);
    let cut = rounded(CUTOUT, 0.0, s).fill(n, n);
    let mut ring = rounded(CUTOUT, -0.003, s).points().to_vec();
    ring.extend(ring.first().copied());
    let lip = stroke(&ring, 0.006 * s).fill(n, n);
    let (cx, cy) = ((CASE.0 + CASE.2) / 2.0 * s, (CASE.1 + CASE.3) / 2.0 * s);
    let light = Plane::from_fn(n, n, |x, y| {
        let i = y as usize * n + x as usize;
        let (u, v) = ((x - cx) / (0.18 * s), (y - cy) / (0.37 * s));
        // The rim faces outwards: lit on the upper left, darker on the lower right.
        let rim = 1.0 - 0.22 * (u * 0.8 + v * 0.6).clamp(-1.0, 1.0);
        let flat = 1.02 - 0.05 * v - 0.03 * u;
        let l = flat + (rim - flat) * (1.0 - back.data[i]);
        l * (1.0 + 0.06 * lip.data[i])
    });
    canvas.paint(&case, &light, [REFERENCE; 3]);

    // The camera module inside the cut-out: dark glass, three lenses, a flash.
    let module = Plane::from_fn(n, n, |_, y| {
        0.16 + 0.05 * (y / s - CUTOUT.1) / (CUTOUT.3 - CUTOUT.1)
    });
    canvas.paint(&cut, &module, [1.0, 1.0, 1.0]);
    for (lx, ly) in [(0.377, 0.189), (0.377, 0.251), (0.438, 0.22)] {
        canvas.paint_flat(&circle(lx, ly, 0.025, s), [0.55, 0.56, 0.58]);
        canvas.paint_flat(&circle(lx, ly, 0.02, s), [0.05, 0.05, 0.07]);
        canvas.paint_flat(&circle(lx, ly, 0.011, s), [0.1, 0.12, 0.2]);
        canvas.paint_flat(
            &circle(lx - 0.006, ly - 0.006, 0.004, s),
            [0.75, 0.78, 0.85],
        );
    }
    canvas.paint_flat(&circle(0.44, 0.172, 0.008, s), [0.93, 0.9, 0.8]);

    let mut tint = case.clone();
    tint.zip_with(&cut, |t, c| t * (1.0 - c));
    let mut mask = back.clone();
    rounded(CUTOUT, -0.006, s)
        .coverage(n, n)
        .apply(&mut mask, |m, h| m * (1.0 - h));
    let (shading, highlight) = light_maps(&light, &mask, 2.0);
    Parts {
        canvas,
        tint,
        mask: Some(mask),
        shading: Some(shading),
        highlight: Some(highlight),
        displacement: None,
        overlay: Some(gloss(&case, s, n)),
    }
    .into_layers()
}

/// A soft diagonal sheen across the case.
fn gloss(case: &Plane, s: f32, n: usize) -> RgbaImage {
    let alpha = Plane::from_fn(n, n, |x, y| {
        let d = (x + 0.45 * y) / s;
        let band = 0.13 * (-((d - 0.5) / 0.06).powi(2)).exp()
            + 0.05 * (-((d - 0.62) / 0.02).powi(2)).exp();
        band * case.data[y as usize * n + x as usize]
    });
    let a = alpha.to_u8(|v| v);
    let data: Vec<u8> = a.iter().flat_map(|&v| [255, 255, 255, v]).collect();
    RgbaImage::from_raw(n as u32, n as u32, data).expect("4 bytes per pixel")
}
