//! The built-in hoodie: a flat-lay pullover hoodie, front view, with the hood lying behind the
//! neck, drawstrings (which the print passes under), kangaroo pocket and ribbed cuffs and
//! waistband; 12 x 10 in chest print above the pocket.

use super::garment::{cloth_light, curve, finish, height_field, press, press_plane, Cloth, Ridge};
use super::kit::{blur, blur_shifted, Plane};
use super::path::{stroke, Path};
use super::scene::{manifest, rect};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec};
use crate::mockup::template::Layers;

/// Print area (unit canvas coordinates): 0.27 x 0.225 = 12 x 10 in.
const PRINT: (f64, f64, f64, f64) = (0.365, 0.3, 0.635, 0.525);
const REFERENCE: f32 = 0.9;

/// The manifest of the built-in hoodie.
pub(super) fn spec() -> ManifestSpec {
    let (x0, y0, x1, y1) = PRINT;
    manifest(
        "hoodie",
        rect(x0, y0, x1, y1),
        (12.0, 10.0),
        EffectsSpec {
            shading: 0.85,
            highlight: 0.45,
            displacement_px: 6.0,
            tint_reference: REFERENCE,
        },
        &[
            ("white", "#f3f3f1"),
            ("black", "#1c1c1f"),
            ("heather_grey", "#9fa2a6"),
            ("forest", "#2f4a3a"),
        ],
    )
}

/// Right half of the outline (hood, shoulder, long sleeve, body), x from the centre line.
fn half_outline(p: &mut Path, s: f32) {
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let top = at(0.0, 0.07);
    p.move_to(top.0, top.1);
    p.cubic_to(at(0.1, 0.07), at(0.16, 0.11), at(0.165, 0.175));
    let c = at(0.21, 0.178);
    let sh = at(0.262, 0.205);
    p.quad_to(c.0, c.1, sh.0, sh.1);
    p.cubic_to(at(0.33, 0.3), at(0.38, 0.55), at(0.405, 0.79));
    let cuff = at(0.335, 0.805);
    p.line_to(cuff.0, cuff.1);
    p.cubic_to(at(0.31, 0.6), at(0.285, 0.47), at(0.25, 0.37));
    p.cubic_to(at(0.25, 0.55), at(0.26, 0.7), at(0.255, 0.89));
    let c = at(0.13, 0.9);
    let hm = at(0.0, 0.897);
    p.quad_to(c.0, c.1, hm.0, hm.1);
}

/// The hood's opening around the neck (right half): rim from the hood's side to the V.
fn opening(p: &mut Path, s: f32) {
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let a = at(0.0, 0.118);
    p.move_to(a.0, a.1);
    p.cubic_to(at(0.07, 0.118), at(0.11, 0.16), at(0.1, 0.205));
    p.cubic_to(at(0.09, 0.24), at(0.04, 0.262), at(0.0, 0.272));
}

/// The kangaroo pocket (right half).
fn pocket(p: &mut Path, s: f32) {
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let a = at(0.0, 0.585);
    p.move_to(a.0, a.1);
    let b = at(0.14, 0.585);
    p.line_to(b.0, b.1);
    p.cubic_to(at(0.16, 0.64), at(0.19, 0.68), at(0.195, 0.73));
    let c = at(0.19, 0.8);
    p.line_to(c.0, c.1);
    let d = at(0.0, 0.8);
    p.line_to(d.0, d.1);
}

const RIDGES: [Ridge; 8] = [
    Ridge::new((0.27, 0.4), (0.37, 0.5), 0.018, 0.35),
    Ridge::new((0.27, 0.47), (0.36, 0.6), 0.02, 0.3),
    Ridge::new((0.2, 0.45), (0.15, 0.7), 0.02, 0.35),
    Ridge::new((0.22, 0.33), (0.17, 0.42), 0.015, 0.3),
    Ridge::new((0.44, 0.36), (0.56, 0.42), 0.03, 0.18),
    Ridge::new((0.52, 0.46), (0.6, 0.5), 0.025, -0.15),
    Ridge::new((0.36, 0.81), (0.45, 0.79), 0.02, 0.2),
    Ridge::new((0.6, 0.7), (0.66, 0.78), 0.02, -0.25),
];

fn mirror_pts(pts: &[(f32, f32)], s: f32) -> Vec<(f32, f32)> {
    pts.iter().rev().map(|&(x, y)| (s - x, y)).collect()
}

/// Draw the hoodie's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = size as f32;
    let at = |dx: f32, y: f32| ((0.5 + dx) * s, y * s);
    let mut outline = Path::new();
    half_outline(&mut outline, s);
    let mirrored = outline.mirrored(s / 2.0);
    let cov = outline.extend(&mirrored).fill(n, n);

    let mut ridges = RIDGES.to_vec();
    ridges.extend(RIDGES[..4].iter().map(Ridge::mirrored));
    let folds = height_field(n, &ridges, 0.007, 0.09);
    let mut light = cloth_light(&cov, &folds, 0.012, 0.035);

    // Hood opening: the lining in shadow, and a rolled rim around it.
    let rim = curve(|p| opening(p, s));
    let mut ring = mirror_pts(&rim, s);
    ring.extend(rim.iter().skip(1));
    let inner = Path::polygon(&ring).fill(n, n);
    let depth = Plane::from_fn(n, n, |x, y| {
        let d = ((y / s - 0.118) / 0.15).clamp(0.0, 1.0);
        inner.data[y as usize * n + x as usize] * (0.55 - 0.25 * d)
    });
    light.zip_with(&depth, |v, d| v * (1.0 - d));
    let rim_band = stroke(&ring, 0.018 * s).fill(n, n);
    light.zip_with(&rim_band, |v, a| v * (1.0 + 0.05 * a));
    let mut lines = Path::new();
    let thin = 0.0016 * s;
    lines.extend(&stroke(&ring, thin));
    let inner_ring: Vec<(f32, f32)> = ring.iter().map(|&(x, y)| (x, y + 0.009 * s)).collect();
    lines.extend(&stroke(&inner_ring, thin));

    // Pocket outline and stitching, rib bands at the cuffs and waist, shoulder seams.
    let pk = curve(|p| pocket(p, s));
    let mut pk_all = mirror_pts(&pk, s);
    pk_all.extend(pk.iter().skip(1));
    lines.extend(&stroke(&pk_all, 0.0025 * s));
    let pk_in: Vec<(f32, f32)> = pk_all.iter().map(|&(x, y)| (x, y + 0.01 * s)).collect();
    lines.extend(&stroke(&pk_in[..pk_in.len()], thin));
    let band_top = 0.85 * s;
    lines.extend(&stroke(&[at(-0.255, 0.85), at(0.255, 0.85)], 0.002 * s));
    for side in [1.0f32, -1.0] {
        let at = |dx: f32, y: f32| at(dx * side, y);
        lines.extend(&stroke(
            &[at(0.163, 0.178), at(0.21, 0.182), at(0.26, 0.207)],
            thin,
        ));
        lines.extend(&stroke(&[at(0.39, 0.745), at(0.325, 0.76)], 0.002 * s));
        lines.extend(&stroke(&[at(0.262, 0.205), at(0.25, 0.37)], thin));
    }
    press(&mut light, &lines, 0.22);
    let pocket_edge = stroke(&pk_all, 0.012 * s).fill(n, n);
    let shadow_edge = blur_shifted(&pocket_edge, 0.004 * s, (0.0, 0.004 * s));
    press_plane(&mut light, &shadow_edge, 0.12);

    // Ribs: fine vertical stripes on the waistband and cuffs.
    let ribs = Plane::from_fn(n, n, |x, y| {
        let stripe = 0.5 + 0.5 * (x / (0.0045 * s) * std::f32::consts::TAU).sin();
        let waist = y > band_top;
        let cuff = y > 0.75 * s && (x / s - 0.5).abs() > 0.31;
        if waist || cuff {
            stripe
        } else {
            0.0
        }
    });
    press_plane(&mut light, &ribs, 0.06);

    // Drawstrings hang over the chest; the print passes under them.
    let mut cords = Path::new();
    let mut tips = Path::new();
    for side in [1.0f32, -1.0] {
        let at = |dx: f32, y: f32| at(dx * side, y);
        let c = curve(|p| {
            let a = at(0.038, 0.25);
            p.move_to(a.0, a.1)
                .cubic_to(at(0.04, 0.31), at(0.05, 0.36), at(0.047, 0.43));
        });
        cords.extend(&stroke(&c, 0.011 * s));
        tips.extend(&stroke(&[at(0.047, 0.43), at(0.0472, 0.455)], 0.013 * s));
    }
    let cords = cords.fill(n, n);
    let tips = tips.fill(n, n);
    let cord_shadow = blur_shifted(&cords, 0.004 * s, (0.004 * s, 0.006 * s));
    press_plane(&mut light, &cord_shadow, 0.25);
    let tube = blur(&cords, 0.002 * s);
    light.zip_with(&cords, |v, c| v * (1.0 - c) + c * 1.02);
    light.zip_with(&tube, |v, t| v * (0.9 + 0.1 * t));
    light.zip_with(&tips, |v, t| v * (1.0 - t) + t * 0.7);
    let mut mask = cov.clone();
    mask.zip_with(&cords, |m, o| m * (1.0 - o));
    mask.zip_with(&tips, |m, o| m * (1.0 - o));
    finish(Cloth {
        cov,
        light,
        folds,
        mask,
        reference: REFERENCE,
    })
    .into_layers()
}
