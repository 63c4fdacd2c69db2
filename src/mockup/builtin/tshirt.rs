//! The built-in t-shirt: a flat-lay crew-neck tee, front view, 12 x 16 in chest print.

use super::garment::{cloth_light, curve, finish, height_field, press, Cloth, Ridge};
use super::kit::Plane;
use super::path::{stroke, Path};
use super::scene::{manifest, rect};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec};
use crate::mockup::template::Layers;

/// Print area (unit canvas coordinates): 0.282 x 0.376 = 12 x 16 in.
const PRINT: (f64, f64, f64, f64) = (0.359, 0.255, 0.641, 0.631);
const REFERENCE: f32 = 0.92;

/// The manifest of the built-in t-shirt.
pub(super) fn spec() -> ManifestSpec {
    let (x0, y0, x1, y1) = PRINT;
    manifest(
        "tshirt",
        rect(x0, y0, x1, y1),
        (12.0, 16.0),
        EffectsSpec {
            shading: 0.85,
            highlight: 0.45,
            displacement_px: 5.0,
            tint_reference: REFERENCE,
        },
        &[
            ("white", "#f5f5f3"),
            ("black", "#1f1f22"),
            ("heather_grey", "#a9abae"),
            ("navy", "#1f2a44"),
        ],
    )
}

/// Right half of the outline, unit coordinates, x measured from the centre line.
fn half_outline(p: &mut Path, s: f32) {
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let (mx, my) = at(0.0, 0.163);
    p.move_to(mx, my);
    let c = at(0.062, 0.163);
    let n = at(0.095, 0.143);
    p.quad_to(c.0, c.1, n.0, n.1);
    let c = at(0.17, 0.158);
    let sh = at(0.238, 0.18);
    p.quad_to(c.0, c.1, sh.0, sh.1);
    let c = at(0.33, 0.255);
    let so = at(0.393, 0.352);
    p.quad_to(c.0, c.1, so.0, so.1);
    let si = at(0.319, 0.418);
    p.line_to(si.0, si.1);
    let c = at(0.262, 0.372);
    let ap = at(0.228, 0.335);
    p.quad_to(c.0, c.1, ap.0, ap.1);
    p.cubic_to(at(0.222, 0.5), at(0.238, 0.7), at(0.24, 0.862));
    let c = at(0.12, 0.876);
    let hm = at(0.0, 0.872);
    p.quad_to(c.0, c.1, hm.0, hm.1);
}

/// The front neckline, right half (centre front to the neck side).
fn neckline(p: &mut Path, s: f32) {
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let (a, c, b) = (at(0.0, 0.218), at(0.082, 0.214), at(0.095, 0.145));
    p.move_to(a.0, a.1).quad_to(c.0, c.1, b.0, b.1);
}

/// Points mirrored about the vertical centre line, in reverse order (so they join up).
fn mirror_pts(pts: &[(f32, f32)], s: f32) -> Vec<(f32, f32)> {
    pts.iter().rev().map(|&(x, y)| (s - x, y)).collect()
}

const RIDGES: [Ridge; 7] = [
    Ridge::new((0.285, 0.36), (0.38, 0.47), 0.016, 0.35),
    Ridge::new((0.28, 0.41), (0.37, 0.56), 0.022, 0.3),
    Ridge::new((0.25, 0.22), (0.16, 0.35), 0.015, 0.3),
    Ridge::new((0.44, 0.78), (0.3, 0.74), 0.03, 0.25),
    Ridge::new((0.64, 0.7), (0.55, 0.8), 0.028, -0.2),
    Ridge::new((0.45, 0.28), (0.58, 0.33), 0.03, 0.15),
    Ridge::new((0.5, 0.6), (0.58, 0.66), 0.03, -0.15),
];

/// Draw the t-shirt's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = size as f32;
    let mut outline = Path::new();
    half_outline(&mut outline, s);
    let mirrored = outline.mirrored(s / 2.0);
    let cov = outline.extend(&mirrored).fill(n, n);

    let mut ridges = RIDGES.to_vec();
    ridges.extend(RIDGES[..3].iter().map(Ridge::mirrored));
    let folds = height_field(n, &ridges, 0.007, 0.09);
    let mut light = cloth_light(&cov, &folds, 0.011, 0.03);

    // Inside of the back, seen above the front neckline, and the ribbed collar.
    // The front neckline closed by a straight line between the neck sides; only the part
    // inside the outline (below the back neckline) ever shows.
    let collar_pts = curve(|p| neckline(p, s));
    let mut pts = mirror_pts(&collar_pts, s);
    pts.extend(collar_pts.iter().skip(1));
    let inside = Path::polygon(&pts).fill(n, n);
    let inside = Plane::from_fn(n, n, |x, y| {
        let i = y as usize * n + x as usize;
        inside.data[i] * (y / s - 0.14).clamp(0.0, 0.1) * 10.0
    });
    light.zip_with(&inside, |v, a| v * (1.0 - 0.32 * a));
    let band = |dy: f32, w: f32| {
        let right: Vec<(f32, f32)> = collar_pts.iter().map(|&(x, y)| (x, y + dy * s)).collect();
        let mut both = mirror_pts(&right, s);
        both.extend(right.iter().skip(1));
        stroke(&both, w * s)
    };
    press(&mut light, &band(0.011, 0.02), 0.07);
    press(&mut light, &band(0.0, 0.0025), 0.35);
    press(&mut light, &band(0.021, 0.0018), 0.22);

    // Seams: shoulders, sleeve joins, hem and cuff stitching.
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let w = 0.0016 * s;
    let mut seams = Path::new();
    for side in [1.0f32, -1.0] {
        let at = |dx: f32, y: f32| at(dx * side, y);
        let lines: [Vec<(f32, f32)>; 4] = [
            vec![at(0.097, 0.147), at(0.17, 0.16), at(0.236, 0.182)],
            curve(|p| {
                let (a, c, b) = (at(0.236, 0.182), at(0.218, 0.27), at(0.228, 0.335));
                p.move_to(a.0, a.1).quad_to(c.0, c.1, b.0, b.1);
            }),
            vec![at(0.378, 0.362), at(0.306, 0.425)],
            vec![at(0.0, 0.857), at(0.12, 0.861), at(0.238, 0.848)],
        ];
        for l in &lines {
            seams.extend(&stroke(l, w));
        }
    }
    press(&mut light, &seams, 0.2);
    let mask = cov.clone();
    finish(Cloth {
        cov,
        light,
        folds,
        mask,
        reference: REFERENCE,
    })
    .into_layers()
}
