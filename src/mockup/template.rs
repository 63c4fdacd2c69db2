//! A loaded template: its checked manifest plus its layers, and the per-output-size copies of
//! those layers (rendered again for built-ins, resampled for custom templates), made once per
//! size on first use and cached (a few sizes at most).

use super::manifest::{Mapping, ValidManifest};
use super::resample::{resize_gray, resize_planar, resize_rgba};
use image::{GrayImage, RgbaImage};
use std::sync::{Arc, Mutex, OnceLock};

/// How many output sizes per template keep their layers cached.
const CACHED_SIZES: usize = 4;

/// The images of a template, all the same size. Grey maps use 255 = neutral for `shading`,
/// 128 = neutral for `highlight`; `displacement` holds 2 channels (x, y shift; 128 = none).
#[derive(Debug, Clone)]
pub(crate) struct Layers {
    pub base: RgbaImage,
    pub tint: Option<GrayImage>,
    pub mask: Option<GrayImage>,
    pub shading: Option<GrayImage>,
    pub highlight: Option<GrayImage>,
    pub displacement: Option<Vec<u8>>,
    pub(crate) overlay: Option<RgbaImage>,
}

impl Layers {
    /// Size of every layer.
    pub(crate) fn size(&self) -> (u32, u32) {
        self.base.dimensions()
    }
}

/// A template's layers at one output size, with its geometry scaled to match.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub layers: Layers,
    pub mapping: Mapping,
    pub displacement_px: f32,
    /// Rows `[y0, y1)` where the tint region has any coverage.
    pub(crate) tint_rows: (u32, u32),
}

impl Prepared {
    /// Wrap layers drawn or loaded for `mapping`'s canvas.
    pub(crate) fn new(layers: Layers, mapping: Mapping, displacement_px: f32) -> Prepared {
        let tint_rows = layers.tint.as_ref().map_or((0, 0), covered_rows);
        Prepared {
            layers,
            mapping,
            displacement_px,
            tint_rows,
        }
    }
}

fn covered_rows(mask: &GrayImage) -> (u32, u32) {
    let w = mask.width() as usize;
    let rows: Vec<bool> = mask
        .as_raw()
        .chunks(w)
        .map(|r| r.iter().any(|&v| v > 0))
        .collect();
    let first = rows.iter().position(|&r| r).unwrap_or(0);
    let last = rows.iter().rposition(|&r| r).map_or(0, |i| i + 1);
    (first as u32, last.max(first) as u32)
}

/// One cached output size: filled once, by whichever caller gets there first.
type SizeSlot = Arc<OnceLock<Arc<Prepared>>>;

/// Where a template's layers come from.
pub(crate) enum Source {
    /// Drawn by code at any longest side.
    Builtin(fn(u32) -> Layers),
    /// Loaded from files at the canvas size.
    Loaded(Arc<Prepared>),
}

/// A product template: one view of one product with its print area and colour variants.
pub struct Template {
    pub(crate) manifest: ValidManifest,
    source: Source,
    cache: Mutex<Vec<(u32, SizeSlot)>>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("product", &self.manifest.product)
            .field("view", &self.manifest.view)
            .field("canvas", &self.manifest.canvas)
            .finish_non_exhaustive()
    }
}

impl Template {
    pub(crate) fn new(manifest: ValidManifest, source: Source) -> Template {
        Template {
            manifest,
            source,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// Product name, e.g. `tshirt`.
    pub fn product(&self) -> &str {
        &self.manifest.product
    }

    /// View name, e.g. `front`.
    pub fn view(&self) -> &str {
        &self.manifest.view
    }

    /// Colour variant names, sorted.
    pub fn colors(&self) -> Vec<&str> {
        self.manifest
            .colors
            .iter()
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// The hex colour of a variant, as `[r, g, b]`.
    pub(crate) fn color_rgb(&self, name: &str) -> Option<[u8; 3]> {
        self.manifest
            .colors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, rgb)| *rgb)
    }

    /// Canvas width and height in pixels (the default mockup size).
    pub fn canvas_size(&self) -> (u32, u32) {
        self.manifest.canvas
    }

    /// The print area on the canvas.
    pub fn mapping(&self) -> Mapping {
        self.manifest.mapping
    }

    /// Print size in inches (width, height).
    pub(crate) fn print_inches(&self) -> (f64, f64) {
        (self.manifest.print.width_in, self.manifest.print.height_in)
    }

    /// The manifest's print resolution.
    pub fn print_dpi(&self) -> u32 {
        self.manifest.print.dpi
    }

    /// Print file size in pixels at `dpi`: inches times DPI, rounded, at least 1.
    pub fn print_size_px(&self, dpi: u32) -> (u32, u32) {
        let px = |inches: f64| ((inches * f64::from(dpi)).round() as u32).max(1);
        (
            px(self.manifest.print.width_in),
            px(self.manifest.print.height_in),
        )
    }

    /// Mockup size for a longest side (`None`: the canvas).
    pub(crate) fn output_size(&self, longest: Option<u32>) -> (u32, u32) {
        let (w, h) = self.manifest.canvas;
        let Some(longest) = longest else {
            return (w, h);
        };
        let k = f64::from(longest) / f64::from(w.max(h));
        let side = |v: u32| ((f64::from(v) * k).round() as u32).max(1);
        (side(w), side(h))
    }

    /// The layers for a mockup whose longest side is `longest` (made on first use).
    pub(crate) fn prepared(&self, longest: Option<u32>) -> Arc<Prepared> {
        let size = self.output_size(longest);
        if let Source::Loaded(p) = &self.source {
            if p.layers.size() == size {
                return p.clone();
            }
        }
        let key = size.0.max(size.1);
        let slot = {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            match cache.iter().find(|(k, _)| *k == key) {
                Some((_, slot)) => slot.clone(),
                None => {
                    if cache.len() >= CACHED_SIZES {
                        cache.remove(0);
                    }
                    let slot = Arc::new(OnceLock::new());
                    cache.push((key, slot.clone()));
                    slot
                }
            }
        };
        slot.get_or_init(|| Arc::new(self.make(size))).clone()
    }

    fn make(&self, size: (u32, u32)) -> Prepared {
        let k = f64::from(size.0) / f64::from(self.manifest.canvas.0);
        let mapping = self.manifest.mapping.scaled(k);
        let disp = self.manifest.effects.displacement_px * k as f32;
        match &self.source {
            Source::Builtin(draw) => Prepared::new(draw(size.0.max(size.1)), mapping, disp),
            Source::Loaded(p) => Prepared::new(resize_layers(&p.layers, size), mapping, disp),
        }
    }
}

fn resize_layers(l: &Layers, (w, h): (u32, u32)) -> Layers {
    let (sw, sh) = l.size();
    let gray = |g: &Option<GrayImage>| g.as_ref().map(|g| resize_gray(g, w, h));
    Layers {
        base: resize_rgba(&l.base, w, h),
        tint: gray(&l.tint),
        mask: gray(&l.mask),
        shading: gray(&l.shading),
        highlight: gray(&l.highlight),
        displacement: l
            .displacement
            .as_ref()
            .map(|d| resize_planar::<2>(d, (sw, sh), (w, h))),
        overlay: l.overlay.as_ref().map(|o| resize_rgba(o, w, h)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_rows_finds_first_and_last_inked_row() {
        let mut m = GrayImage::new(4, 10);
        m.put_pixel(1, 3, image::Luma([9]));
        m.put_pixel(2, 6, image::Luma([9]));
        assert_eq!(covered_rows(&m), (3, 7));
        assert_eq!(covered_rows(&GrayImage::new(4, 4)), (0, 0));
    }
}
