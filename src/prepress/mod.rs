//! Prepress: what a print shop needs besides a transparent PNG, made from a design already
//! placed on its print area at the print DPI. Vector SVG in a few colours (`vector.rs`),
//! die-cut stickers with a `CutContour` cut line (`sticker.rs` geometry, `cut_files.rs` PDF
//! and SVG), screen-print separations with an underbase (`separate.rs`), and hard alpha for
//! direct-to-film (`alpha.rs`), over binary masks (`mask.rs`) and an Oklab ink palette
//! (`palette.rs`). Pure CPU functions over in-memory images: no I/O, no async, no job types
//! (the worker maps a job's `print` section onto these).

mod alpha;
mod cut_files;
mod distance;
mod mask;
mod palette;
mod separate;
mod sticker;
mod vector;

pub(crate) use alpha::{harden, HardAlpha};
pub(crate) use cut_files::{pdf as sticker_pdf, svg as sticker_svg, CutFileOptions};
pub(crate) use mask::Mask;
pub(crate) use palette::Rgb;
pub(crate) use separate::{film_rows, separate, Inks, SeparationError, SeparationOptions};
pub(crate) use sticker::{sticker, StickerError, StickerOptions};
pub(crate) use vector::{hex, in_inks, trace, Detail, Page, Placement};

/// Pixels in `mm` millimetres at `dpi`.
pub(crate) fn mm_to_px(mm: f64, dpi: u32) -> f32 {
    (mm / 25.4 * f64::from(dpi)) as f32
}
