//! Template manifests: the JSON wire format (`"version": 1`), the checked [`ValidManifest`]
//! (`validate.rs` parses and checks the text), and [`TemplateError`]. Reads no files:
//! `library.rs` feeds the text and loads the layer images it names.
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
//! "ellipse"}` (see [`Cylinder`]). Layers other than `base` are optional: `tint` (grey, 255 =
//! product) is the region the colour variants recolour, so without it a variant only names the
//! photo as it is; `mask` (255 = print shows), `shading` (multiply, 255 = neutral), `highlight`
//! (hard light, 128 = neutral), `displacement` (red = x, green = y shift, 128 = none) and
//! `overlay` (RGBA on top of everything) all have the canvas's size.

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
    #[error("{manifest}: {source}")]
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
pub(super) struct ManifestSpec {
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
pub(crate) struct LayersSpec {
    pub base: String,
    pub tint: Option<String>,
    pub mask: Option<String>,
    pub shading: Option<String>,
    pub highlight: Option<String>,
    pub displacement: Option<String>,
    pub(crate) overlay: Option<String>,
}

/// How the flat print area maps onto the canvas.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum PrintAreaSpec {
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
pub(crate) struct PrintSpec {
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
pub(crate) struct EffectsSpec {
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
    pub(crate) fn scaled(&self, k: f64) -> Mapping {
        match self {
            Mapping::Quad(q) => Mapping::Quad(q.map(|[x, y]| [x * k, y * k])),
            Mapping::Cylinder(c) => Mapping::Cylinder(c.scaled(k)),
        }
    }
}

/// A checked manifest; layer names are still file names.
#[derive(Debug, Clone)]
pub(crate) struct ValidManifest {
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
