//! Template manifests: the JSON wire format (`"version": 1`), its validation into a
//! [`ValidManifest`], and [`TemplateError`]. Reads no files: `library.rs` feeds it text and loads
//! the layer images it names.
//!
//! ```json
//! {
//!   "version": 1, "product": "canvas_bag", "view": "front", "canvas": [1200, 1200],
//!   "layers": {"base": "base.png", "tint": "tint.png", "mask": "mask.png", "shading": "shading.png",
//!              "highlight": "highlight.png", "displacement": "displacement.png", "overlay": "overlay.png"},
//!   "print_area": {"type": "quad", "corners": [[380, 400], [820, 400], [820, 840], [380, 840]]},
//!   "print": {"width_in": 10, "height_in": 10, "dpi": 300},
//!   "effects": {"shading": 0.8, "highlight": 0.5, "displacement_px": 6, "tint_reference": 0.92},
//!   "colors": {"white": "#f4f4f2", "black": "#1d1d20"}
//! }
//! ```
//! Corners run clockwise from the top-left (top-left, top-right, bottom-right, bottom-left); a
//! cylinder is `{"type": "cylinder", "center_x", "radius", "top", "bottom", "arc_degrees",
//! "ellipse"}` (see [`Cylinder`]). Layers other than `base` are optional.

use super::warp::Cylinder;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The only manifest version this build understands.
pub const MANIFEST_VERSION: u64 = 1;

/// Why a template could not be loaded. Every message names the manifest and the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("{manifest}: cannot read: {source}")]
    Io {
        manifest: PathBuf,
        source: std::io::Error,
    },
    #[error("{manifest}: invalid JSON: {source}")]
    Json {
        manifest: PathBuf,
        source: serde_json::Error,
    },
    #[error("{manifest}: version: unsupported manifest version {found} (this build reads version {MANIFEST_VERSION})")]
    Version { manifest: PathBuf, found: String },
    #[error("{manifest}: layers.{layer}: cannot read {file}: {reason}")]
    Layer {
        manifest: PathBuf,
        layer: &'static str,
        file: PathBuf,
        reason: String,
    },
    #[error("{manifest}: print_area.corners: {reason}")]
    Quad { manifest: PathBuf, reason: String },
    #[error("{manifest}: {field}: the print area reaches outside the {width}x{height} canvas")]
    OutsideCanvas {
        manifest: PathBuf,
        field: &'static str,
        width: u32,
        height: u32,
    },
    #[error("{manifest}: colors.{name}: {value:?} is not a colour like \"#1a2b3c\"")]
    Color {
        manifest: PathBuf,
        name: String,
        value: String,
    },
    #[error("{manifest}: {field}: {reason}")]
    Invalid {
        manifest: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{manifest}: product: {product:?} is already defined by {other}")]
    Duplicate {
        manifest: PathBuf,
        product: String,
        other: PathBuf,
    },
}

/// The manifest as written (wire type).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    pub version: u64,
    pub product: String,
    #[serde(default = "default_view")]
    pub view: String,
    pub canvas: [u32; 2],
    pub layers: LayersSpec,
    pub print_area: PrintAreaSpec,
    pub print: PrintSpec,
    #[serde(default)]
    pub effects: EffectsSpec,
    pub colors: BTreeMap<String, String>,
}

fn default_view() -> String {
    "front".to_owned()
}

/// Layer file names, relative to the manifest's folder.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayersSpec {
    pub base: String,
    pub tint: Option<String>,
    pub mask: Option<String>,
    pub shading: Option<String>,
    pub highlight: Option<String>,
    pub displacement: Option<String>,
    pub overlay: Option<String>,
}

/// How the flat print area maps onto the canvas.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PrintAreaSpec {
    Quad {
        corners: [[f64; 2]; 4],
    },
    Cylinder {
        center_x: f64,
        radius: f64,
        top: f64,
        bottom: f64,
        arc_degrees: f64,
        #[serde(default)]
        ellipse: f64,
    },
}

/// Physical print size.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintSpec {
    pub width_in: f64,
    pub height_in: f64,
    #[serde(default = "default_dpi")]
    pub dpi: u32,
}

fn default_dpi() -> u32 {
    300
}

/// Strengths of the photometric layers.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EffectsSpec {
    /// Multiply strength of the shading layer, 0..=1.
    pub shading: f32,
    /// Hard-light strength of the highlight layer, 0..=1.
    pub highlight: f32,
    /// Largest shift of the displacement layer, in canvas pixels.
    pub displacement_px: f32,
    /// Luma (0..=1) of flat, well-lit product in the base; colour variants map it to their hex.
    pub tint_reference: f32,
}

impl Default for EffectsSpec {
    fn default() -> Self {
        EffectsSpec {
            shading: 0.8,
            highlight: 0.5,
            displacement_px: 0.0,
            tint_reference: 0.92,
        }
    }
}

/// Where the print goes, in canvas pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mapping {
    /// Corners top-left, top-right, bottom-right, bottom-left.
    Quad([[f64; 2]; 4]),
    Cylinder(Cylinder),
}

impl Mapping {
    /// The same mapping on a canvas scaled by `k`.
    pub fn scaled(&self, k: f64) -> Mapping {
        match self {
            Mapping::Quad(q) => Mapping::Quad(q.map(|[x, y]| [x * k, y * k])),
            Mapping::Cylinder(c) => Mapping::Cylinder(c.scaled(k)),
        }
    }
}

/// A checked manifest; layer names are still file names.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    pub product: String,
    pub view: String,
    pub canvas: (u32, u32),
    pub layers: LayersSpec,
    pub mapping: Mapping,
    pub print: PrintSpec,
    pub effects: EffectsSpec,
    /// Colour variants, sorted by name.
    pub colors: Vec<(String, [u8; 3])>,
}

/// Parse and check manifest text; `manifest` names it in errors.
pub fn parse(text: &str, manifest: &std::path::Path) -> Result<ValidManifest, TemplateError> {
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
pub fn validate(
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
pub fn check_quad(q: &[[f64; 2]; 4]) -> Result<(), String> {
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
pub fn parse_hex(s: &str) -> Option<[u8; 3]> {
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
