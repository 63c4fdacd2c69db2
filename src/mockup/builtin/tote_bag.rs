//! The built-in tote bag: a canvas tote lying flat, handles up, with a hemmed top, box-stitched
//! handle ends, soft sag folds and a woven texture; 10 x 10 in print in the middle.

use super::garment::{cloth_light, finish, height_field, press, press_plane, Cloth, Ridge};
use super::kit::{blur_shifted, hash, Plane};
use super::path::{stroke, Path};
use super::scene::{manifest, rect};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec};
use crate::mockup::template::Layers;

/// Print area (unit canvas coordinates): 0.4 x 0.4 = 10 x 10 in.
const PRINT: (f64, f64, f64, f64) = (0.3, 0.45, 0.7, 0.85);
const TOP: f32 = 0.36;
const REFERENCE: f32 = 0.9;

/// The manifest of the built-in tote bag.
pub(super) fn spec() -> ManifestSpec {
    let (x0, y0, x1, y1) = PRINT;
    manifest(
        "tote_bag",
        rect(x0, y0, x1, y1),
        (10.0, 10.0),
        EffectsSpec {
            shading: 0.85,
            highlight: 0.35,
            displacement_px: 4.0,
            tint_reference: REFERENCE,
        },
        &[
            ("natural", "#e8dcc2"),
            ("white", "#f4f3ef"),
            ("black", "#1f1f1f"),
        ],
    )
}

fn body(s: f32) -> Path {
    let at = |x: f32, y: f32| (x * s, y * s);
    let mut p = Path::new();
    let a = at(0.2, TOP);
    p.move_to(a.0, a.1);
    let b = at(0.8, TOP);
    p.line_to(b.0, b.1);
    p.cubic_to(at(0.81, 0.55), at(0.815, 0.75), at(0.815, 0.935));
    let c = at(0.5, 0.945);
    let d = at(0.185, 0.935);
    p.quad_to(c.0, c.1 + 0.005 * s, d.0, d.1);
    p.cubic_to(at(0.185, 0.75), at(0.19, 0.55), at(0.2, TOP));
    p
}

/// A handle: from `x0` up over the apex at `top` and down to `x1`, ending `end` below TOP.
fn handle(x0: f32, x1: f32, top: f32, end: f32, s: f32) -> Vec<(f32, f32)> {
    let mut p = Path::new();
    p.move_to(x0 * s, (TOP + end) * s)
        .line_to(x0 * s, (TOP - 0.01) * s)
        .cubic_to(
            (x0 * s, top * s),
            (x1 * s, top * s),
            (x1 * s, (TOP - 0.01) * s),
        )
        .line_to(x1 * s, (TOP + end) * s);
    p.points().to_vec()
}

const RIDGES: [Ridge; 7] = [
    Ridge::new((0.36, 0.42), (0.33, 0.62), 0.025, 0.3),
    Ridge::new((0.64, 0.42), (0.68, 0.6), 0.025, 0.3),
    Ridge::new((0.5, 0.4), (0.52, 0.55), 0.03, -0.15),
    Ridge::new((0.2, 0.82), (0.3, 0.92), 0.02, 0.3),
    Ridge::new((0.8, 0.82), (0.7, 0.92), 0.02, 0.3),
    Ridge::new((0.35, 0.7), (0.62, 0.74), 0.035, 0.12),
    Ridge::new((0.25, 0.5), (0.22, 0.75), 0.03, -0.2),
];

/// Draw the tote bag's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = size as f32;
    let bag = body(s).fill(n, n);
    let width = 0.042 * s;
    let back = stroke(&handle(0.38, 0.62, 0.07, 0.0, s), width).fill(n, n);
    let front = stroke(&handle(0.35, 0.65, 0.04, 0.07, s), width).fill(n, n);
    let mut cov = bag.clone();
    cov.zip_with(&back, |a, b| (a + b).min(1.0));
    cov.zip_with(&front, |a, b| (a + b).min(1.0));

    let folds = height_field(n, &RIDGES, 0.01, 0.1);
    let mut light = cloth_light(&cov, &folds, 0.01, 0.05);
    // Woven canvas: threads across and along, a few pixels apart at full size.
    let period = (0.0028 * s).max(2.0);
    let t = std::f32::consts::TAU / period;
    let waves: Vec<f32> = (0..n).map(|i| ((i as f32 + 0.5) * t).sin()).collect();
    let weave = Plane::from_fn(n, n, |x, y| {
        let cross = waves[x as usize] * waves[y as usize];
        let slub = hash((x / 3.0) as i32, (y / 9.0) as i32, 5) - 0.5;
        1.0 + 0.025 * cross + 0.03 * slub
    });
    light.zip_with(&weave, |v, w| v * w);
    // The back handle lies behind the bag in shadow; the front one casts a soft shadow.
    let mut behind = back.clone();
    behind.zip_with(&bag, |b, g| b * (1.0 - g));
    behind.zip_with(&front, |b, f| b * (1.0 - f));
    light.zip_with(&behind, |v, b| v * (1.0 - 0.28 * b));
    let handle_shadow = blur_shifted(&front, 0.006 * s, (0.004 * s, 0.008 * s));
    let mut on_bag = handle_shadow.clone();
    on_bag.zip_with(&front, |h, f| h * (1.0 - f));
    press_plane(&mut light, &on_bag, 0.25);
    light.zip_with(&front, |v, f| v * (1.0 + 0.04 * f));

    // Hem at the top, box stitches where the handles are sewn on, side seams.
    let at = |x: f32, y: f32| (x * s, y * s);
    let thin = 0.0017 * s;
    let mut lines = Path::new();
    lines.extend(&stroke(
        &[at(0.2, TOP + 0.035), at(0.8, TOP + 0.035)],
        0.003 * s,
    ));
    lines.extend(&stroke(&[at(0.2, TOP + 0.028), at(0.8, TOP + 0.028)], thin));
    for x in [0.35f32, 0.65] {
        let (x0, x1, y0, y1) = (x - 0.017, x + 0.017, TOP + 0.045, TOP + 0.065);
        for seg in [
            [at(x0, y0), at(x1, y0)],
            [at(x1, y0), at(x1, y1)],
            [at(x1, y1), at(x0, y1)],
            [at(x0, y1), at(x0, y0)],
            [at(x0, y0), at(x1, y1)],
            [at(x1, y0), at(x0, y1)],
        ] {
            lines.extend(&stroke(&seg, thin));
        }
    }
    for x in [0.335f32, 0.365, 0.635, 0.665] {
        lines.extend(&stroke(&[at(x, 0.3), at(x, TOP + 0.07)], thin * 0.8));
    }
    press(&mut light, &lines, 0.2);
    let mask = bag;
    finish(Cloth {
        cov,
        light,
        folds,
        mask,
        reference: REFERENCE,
    })
    .into_layers()
}
