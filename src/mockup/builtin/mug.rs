//! The built-in mug: an 11 oz ceramic mug seen from slightly above, handle to the right; the
//! print wraps the front 150 degrees of the cylinder (4.25 x 3.5 in). Glossy: a specular stripe
//! and diffuse falloff light the print as well as the glaze.

use super::kit::{blur, Plane};
use super::path::{stroke, Path};
use super::scene::{drop_shadow, light_maps, manifest, Canvas, Parts, CANVAS};
use crate::mockup::manifest::{EffectsSpec, ManifestSpec, PrintAreaSpec};
use crate::mockup::template::Layers;

const CX: f32 = 0.45;
const R: f32 = 0.19;
const TOP: f32 = 0.285;
const BOTTOM: f32 = 0.73;
const ELLIPSE: f32 = 0.04;
const PRINT_TOP: f32 = 0.343;
const PRINT_BOTTOM: f32 = 0.753;
const ARC_DEGREES: f64 = 150.0;
const REFERENCE: f32 = 0.93;

/// The manifest of the built-in mug.
pub(super) fn spec() -> ManifestSpec {
    let k = f64::from(CANVAS);
    let unit = |v: f32| f64::from(v) * k;
    manifest(
        "mug",
        PrintAreaSpec::Cylinder {
            center_x: unit(CX),
            radius: unit(R),
            top: unit(PRINT_TOP),
            bottom: unit(PRINT_BOTTOM),
            arc_degrees: ARC_DEGREES,
            ellipse: unit(ELLIPSE),
        },
        (4.25, 3.5),
        EffectsSpec {
            shading: 0.9,
            highlight: 0.85,
            displacement_px: 0.0,
            tint_reference: REFERENCE,
        },
        &[
            ("white", "#f7f7f5"),
            ("black", "#1d1d1f"),
            ("red", "#b3262e"),
        ],
    )
}

/// Light on the glaze at angle `t` (radians from the front), as (diffuse, specular): diffuse
/// from the front-left plus a reflected rim on the right, and a specular stripe; 1 = lit front.
fn glaze(t: f32) -> (f32, f32) {
    let diffuse = (t + 0.5).cos().max(0.0).powf(0.8);
    let rim = 0.1 * ((t - 1.0) / 0.5).clamp(0.0, 1.0);
    let soft = 0.05 * (-((t - 0.55) / 0.12).powi(2)).exp();
    let spec =
        0.5 * (-((t + 0.62) / 0.06).powi(2)).exp() + 0.12 * (-((t + 0.6) / 0.25).powi(2)).exp();
    (0.42 + 0.6 * diffuse + rim + soft, spec)
}

/// Draw the mug's layers with a longest side of `size` pixels.
pub(super) fn draw(size: u32) -> Layers {
    let n = size as usize;
    let s = size as f32;
    let (cx, r, top, bottom, e) = (CX * s, R * s, TOP * s, BOTTOM * s, ELLIPSE * s);
    let mut canvas = Canvas::backdrop(n, [0.93, 0.93, 0.92], [0.84, 0.84, 0.83]);

    let mut body = Path::polygon(&[
        (cx - r, top),
        (cx + r, top),
        (cx + r, bottom),
        (cx - r, bottom),
    ]);
    body.extend(&Path::ellipse(cx, bottom, r, e));
    body.extend(&Path::ellipse(cx, top, r, e));
    let body = body.fill(n, n);
    let handle_line = {
        let mut p = Path::new();
        p.move_to(cx + r - 0.01 * s, top + 0.1 * s).cubic_to(
            (cx + r + 0.14 * s, top + 0.07 * s),
            (cx + r + 0.17 * s, bottom - 0.12 * s),
            (cx + r - 0.01 * s, bottom - 0.09 * s),
        );
        p.points().to_vec()
    };
    let handle = stroke(&handle_line, 0.05 * s).fill(n, n);
    let mut all = body.clone();
    all.zip_with(&handle, |a, b| (a + b).min(1.0));

    let contact = Path::ellipse(cx + 0.02 * s, bottom + 0.6 * e, 1.12 * r, 1.25 * e).fill(n, n);
    canvas.shadow(&blur(&contact, 0.025 * s), 0.35);
    canvas.shadow(&drop_shadow(&all, 0.006 * s, 0.004 * s, 0.004 * s), 0.25);

    // Handle: a tube, lighter along its middle.
    let tube = blur(&handle, 0.01 * s);
    let handle_lum = Plane::from_fn(n, n, |x, y| {
        let t = tube.data[y as usize * n + x as usize];
        REFERENCE * (0.5 + 0.55 * t.clamp(0.0, 1.0).powf(1.5))
    });
    canvas.paint(&handle, &handle_lum, [1.0, 1.0, 1.0]);

    // Body: glaze lighting per column; the mouth shows the inside wall in shadow and the rim.
    let columns: Vec<(f32, f32)> = (0..n)
        .map(|x| glaze(((x as f32 + 0.5 - cx) / r).clamp(-1.0, 1.0).asin()))
        .collect();
    let light = Plane::from_fn(n, n, |x, y| {
        let (diffuse, spec) = columns[x as usize];
        diffuse * (1.0 - 0.08 * ((y - top) / (bottom - top)).clamp(0.0, 1.0)) + spec
    });
    let (ri, ei) = (r - 0.012 * s, e - 0.012 * s * e / r);
    let mouth = Path::ellipse(cx, top, ri, ei).fill(n, n);
    let lum = Plane::from_fn(n, n, |x, y| {
        let i = y as usize * n + x as usize;
        let depth = ((y - (top - ei)) / (2.0 * ei)).clamp(0.0, 1.0);
        let inside = 0.8 - 0.35 * depth + 0.06 * ((x - cx) / ri).clamp(-1.0, 1.0);
        let outer = light.data[i];
        let rim = 0.98;
        let on_top = y < top + e && ((x - cx) / r).powi(2) + ((y - top) / e).powi(2) <= 1.0;
        let v = if on_top {
            rim + (inside - rim) * mouth.data[i]
        } else {
            outer
        };
        REFERENCE * v
    });
    canvas.paint(&body, &lum, [1.0, 1.0, 1.0]);
    let (shading, highlight) = light_maps(&light, &body, 1.6);
    Parts {
        canvas,
        tint: all,
        mask: None,
        shading: Some(shading),
        highlight: Some(highlight),
        displacement: None,
        overlay: None,
    }
    .into_layers()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glaze_front_is_brighter_than_the_edges() {
        let total = |t| {
            let (d, s) = glaze(t);
            d + s
        };
        assert!(total(-0.3) > total(1.4));
        assert!(total(-0.62) > total(-0.3));
    }
}
