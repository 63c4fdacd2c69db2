//! Checks of a template manifest: its text parsed (`parse`, the version first), then names, print
//! size, effect strengths, the print-area geometry (convex quad, clockwise from the top-left,
//! inside the canvas; or a sane cylinder) and colour hexes. Turns a [`ManifestSpec`] into a
//! [`ValidManifest`].

use super::manifest::{
    EffectsSpec, ManifestSpec, Mapping, PrintAreaSpec, TemplateError, ValidManifest,
    MANIFEST_VERSION,
};
use super::warp::Cylinder;

/// Parse and check manifest text; `manifest` names it in errors.
pub(super) fn parse(
    text: &str,
    manifest: &std::path::Path,
) -> Result<ValidManifest, TemplateError> {
    let json = |source| TemplateError::Json {
        manifest: manifest.to_owned(),
        source,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(json)?;
    match value.get("version") {
        Some(v) if v.as_u64() == Some(MANIFEST_VERSION) => {}
        other => {
            return Err(TemplateError::Version {
                manifest: manifest.to_owned(),
                found: other.map_or("(missing)".to_owned(), |v| v.to_string()),
            })
        }
    }
    let spec: ManifestSpec = serde_json::from_value(value).map_err(json)?;
    validate(spec, manifest)
}

/// Check a manifest already in memory (built-ins go through here too).
pub(super) fn validate(
    spec: ManifestSpec,
    manifest: &std::path::Path,
) -> Result<ValidManifest, TemplateError> {
    let invalid = |field: &str, reason: String| TemplateError::Invalid {
        manifest: manifest.to_owned(),
        field: field.to_owned(),
        reason,
    };
    if spec.version != MANIFEST_VERSION {
        return Err(TemplateError::Version {
            manifest: manifest.to_owned(),
            found: spec.version.to_string(),
        });
    }
    check_name(&spec.product).map_err(|r| invalid("product", r))?;
    check_name(&spec.view).map_err(|r| invalid("view", r))?;
    let [w, h] = spec.canvas;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(invalid(
            "canvas",
            format!("{w}x{h} is not within 16..=8192 pixels a side"),
        ));
    }
    let p = spec.print;
    let inches_ok = |v: f64| v.is_finite() && v > 0.0 && v <= 200.0;
    if !inches_ok(p.width_in) || !inches_ok(p.height_in) {
        return Err(invalid(
            "print",
            "width_in and height_in must be within 0..=200".into(),
        ));
    }
    if !(1..=2400).contains(&p.dpi) {
        return Err(invalid(
            "print.dpi",
            format!("{} is not within 1..=2400", p.dpi),
        ));
    }
    check_effects(&spec.effects).map_err(|(f, r)| invalid(f, r))?;
    let mapping = check_print_area(&spec.print_area, (w, h), manifest)?;
    if spec.colors.is_empty() {
        return Err(invalid(
            "colors",
            "at least one colour variant is required".into(),
        ));
    }
    let mut colors = Vec::with_capacity(spec.colors.len());
    for (name, value) in &spec.colors {
        check_name(name).map_err(|r| invalid(&format!("colors.{name}"), r))?;
        let rgb = parse_hex(value).ok_or_else(|| TemplateError::Color {
            manifest: manifest.to_owned(),
            name: name.clone(),
            value: value.clone(),
        })?;
        colors.push((name.clone(), rgb));
    }
    Ok(ValidManifest {
        product: spec.product,
        view: spec.view,
        canvas: (w, h),
        layers: spec.layers,
        mapping,
        print: p,
        effects: spec.effects,
        colors,
    })
}

/// Names become parts of output keys: `[a-z0-9_-]`, 1..=64 characters.
fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} must be 1 to 64 of a-z, 0-9, '_' and '-'"))
    }
}

fn check_effects(e: &EffectsSpec) -> Result<(), (&'static str, String)> {
    let unit = |v: f32| (0.0..=1.0).contains(&v);
    if !unit(e.shading) {
        return Err((
            "effects.shading",
            format!("{} is not within 0..=1", e.shading),
        ));
    }
    if !unit(e.highlight) {
        return Err((
            "effects.highlight",
            format!("{} is not within 0..=1", e.highlight),
        ));
    }
    if !(0.0..=256.0).contains(&e.displacement_px) {
        let v = e.displacement_px;
        return Err((
            "effects.displacement_px",
            format!("{v} is not within 0..=256"),
        ));
    }
    if !(e.tint_reference > 0.05 && e.tint_reference <= 1.0) {
        let v = e.tint_reference;
        return Err((
            "effects.tint_reference",
            format!("{v} is not within 0.05..=1"),
        ));
    }
    Ok(())
}

fn check_print_area(
    area: &PrintAreaSpec,
    (w, h): (u32, u32),
    manifest: &std::path::Path,
) -> Result<Mapping, TemplateError> {
    let inside = |x: f64, y: f64| x >= 0.0 && y >= 0.0 && x <= f64::from(w) && y <= f64::from(h);
    let outside = |field| TemplateError::OutsideCanvas {
        manifest: manifest.to_owned(),
        field,
        width: w,
        height: h,
    };
    match *area {
        PrintAreaSpec::Quad { corners } => {
            check_quad(&corners).map_err(|reason| TemplateError::Quad {
                manifest: manifest.to_owned(),
                reason,
            })?;
            if !corners.iter().all(|&[x, y]| inside(x, y)) {
                return Err(outside("print_area.corners"));
            }
            Ok(Mapping::Quad(corners))
        }
        PrintAreaSpec::Cylinder {
            center_x,
            radius,
            top,
            bottom,
            arc_degrees,
            ellipse,
        } => {
            let bad = |field: &str, reason: &str| TemplateError::Invalid {
                manifest: manifest.to_owned(),
                field: format!("print_area.{field}"),
                reason: reason.to_owned(),
            };
            let all = [center_x, radius, top, bottom, arc_degrees, ellipse];
            if !all.iter().all(|v| v.is_finite()) {
                return Err(bad("cylinder", "every number must be finite"));
            }
            if radius < 1.0 {
                return Err(bad("radius", "must be at least 1 pixel"));
            }
            if bottom <= top {
                return Err(bad("bottom", "must be below top"));
            }
            if !(arc_degrees > 0.0 && arc_degrees <= 180.0) {
                return Err(bad(
                    "arc_degrees",
                    "must be within 0..=180 (the visible front)",
                ));
            }
            if ellipse < 0.0 {
                return Err(bad("ellipse", "must not be negative"));
            }
            let c = Cylinder {
                center_x,
                radius,
                top,
                bottom,
                arc: arc_degrees.to_radians(),
                ellipse,
            };
            let (x0, y0, x1, y1) = c.bounds();
            if !(inside(x0, y0) && inside(x1, y1)) {
                return Err(outside("print_area"));
            }
            Ok(Mapping::Cylinder(c))
        }
    }
}

/// A quad must be finite, convex, at least a few pixels big, and clockwise from its top-left.
pub(super) fn check_quad(q: &[[f64; 2]; 4]) -> Result<(), String> {
    if !q.iter().flatten().all(|v| v.is_finite()) {
        return Err("every coordinate must be a finite number".into());
    }
    let cross = |i: usize| {
        let (a, b, c) = (q[i], q[(i + 1) % 4], q[(i + 2) % 4]);
        (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
    };
    let turns = [cross(0), cross(1), cross(2), cross(3)];
    if turns.iter().all(|&t| t < 0.0) {
        return Err("corners run counter-clockwise; list them top-left, top-right, bottom-right, bottom-left".into());
    }
    if !turns.iter().all(|&t| t > 0.0) {
        return Err("the quad is not convex (or its corners are out of order)".into());
    }
    let area: f64 = (0..4)
        .map(|i| q[i][0] * q[(i + 1) % 4][1] - q[(i + 1) % 4][0] * q[i][1])
        .sum::<f64>()
        / 2.0;
    if area < 16.0 {
        return Err(format!("the quad covers only {area:.1} square pixels"));
    }
    let first = q[0][0] + q[0][1];
    if q[1..].iter().any(|c| c[0] + c[1] < first) {
        return Err("the first corner must be the top-left one (smallest x + y)".into());
    }
    Ok(())
}

/// `#rgb` or `#rrggbb` (the `#` optional).
pub(super) fn parse_hex(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#').unwrap_or(s);
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let nib = |i: usize| u8::from_str_radix(&hex[i..=i], 16).ok();
    match hex.len() {
        3 => Some([nib(0)? * 17, nib(1)? * 17, nib(2)? * 17]),
        6 => {
            let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
            Some([byte(0)?, byte(2)?, byte(4)?])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parse_hex_short_and_long_forms_decode() {
        assert_eq!(parse_hex("#fff"), Some([255, 255, 255]));
        assert_eq!(parse_hex("1a2B3c"), Some([0x1a, 0x2b, 0x3c]));
        assert_eq!(parse_hex("#12345"), None);
        assert_eq!(parse_hex("#gg0000"), None);
    }

    #[test]
    fn check_quad_rotated_rectangle_is_accepted() {
        let q = [[100.0, 50.0], [400.0, 80.0], [380.0, 480.0], [80.0, 450.0]];
        assert_eq!(check_quad(&q), Ok(()));
    }

    #[test]
    fn check_quad_starting_at_top_right_is_rejected() {
        let q = [[400.0, 80.0], [380.0, 480.0], [80.0, 450.0], [100.0, 50.0]];
        assert!(check_quad(&q).unwrap_err().contains("top-left"));
    }

    #[test]
    fn check_quad_bow_tie_is_not_convex() {
        let q = [[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]];
        assert!(check_quad(&q).unwrap_err().contains("not convex"));
    }

    #[test]
    fn parse_missing_version_names_the_field() {
        let err = parse("{}", Path::new("m.json")).unwrap_err();
        assert!(err.to_string().starts_with("m.json: version:"), "{err}");
    }
}
