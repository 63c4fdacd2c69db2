//! Product mockups: put a design on a t-shirt, hoodie, mug, poster, phone case or tote bag (or
//! any custom template) in a fraction of a second. Pure CPU compositing over in-memory images:
//! no async, and no I/O except `MockupLibrary::load`, which reads custom templates once.
//!
//! Pipeline per mockup: tint the product region to the colour variant; place the
//! design in the print area (`fit` or `cover`); warp it (homography for a quad, cylinder map for
//! mugs) with bilinear sampling in premultiplied alpha over the print area's bounding box only,
//! shifted by the displacement map; multiply the shading map and hard-light the highlight map;
//! apply the mask; composite over the product; lay the overlay on top.
//!
//! Files: `manifest.rs` (template JSON), `validate.rs` (its checks), `library.rs` (built-ins + custom
//! folder), `template.rs` (layers per output size), `builtin/` (the six products, drawn by code),
//! `warp.rs` (geometry), `design.rs` (placement, pre-filtered premultiplied design),
//! `kernel/` (the per-pixel pass, its source maps and AVX2 twin), `blend.rs` (pixel
//! arithmetic), `resample.rs`,
//! `render.rs` (the pipeline), `print.rs` (print files), `bench.rs` (timings).

pub(crate) mod bench;
mod blend;
mod builtin;
pub(crate) mod cutout;
mod design;
mod kernel;
mod library;
mod manifest;
mod print;
mod render;
mod resample;
mod template;
mod validate;
mod warp;

pub use design::Fit;
pub use library::MockupLibrary;
pub use manifest::Mapping;
pub use manifest::{TemplateError, MANIFEST_VERSION};
pub use print::{area_placement, place_on_area, print_file, AreaPlacement};
pub use render::{render, render_blank, RenderOptions};
pub use render::{MockupError, MAX_SIZE};
pub(crate) use resample::resize_rgba;
pub use template::Template;
pub use warp::{Cylinder, Homography};
