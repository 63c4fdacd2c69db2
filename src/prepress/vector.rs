//! Vector SVG of a design in at most N colours: the design quantised to N inks (Oklab k-means,
//! `palette.rs`), then each ink's layer traced by visioncortex (vtracer's boundary tracing and
//! spline fitting), layers stacked so neighbouring shapes leave no gaps. The SVG covers the
//! print area at its physical size; clear pixels stay transparent.

use super::palette::{Palette, Rgb, CLEAR};
use image::RgbaImage;
use rayon::prelude::*;
use std::fmt::Write as _;
use visioncortex::{BinaryImage, PathSimplifyMode, PointF64};

/// How finely shapes are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Detail {
    Low,
    #[default]
    Medium,
    High,
}

impl Detail {
    /// The longest side the design is traced at (larger designs are scaled down first).
    pub(crate) fn trace_side(self) -> u32 {
        match self {
            Detail::Low => 512,
            Detail::Medium => 1024,
            Detail::High => 2048,
        }
    }

    /// Shapes smaller than this many traced pixels merge into their neighbours (vtracer's
    /// `filter_speckle`, squared).
    fn speckle_area(self) -> usize {
        match self {
            Detail::Low => 64,
            Detail::Medium => 16,
            Detail::High => 4,
        }
    }
}

/// Where the traced image lies on the print area, in print pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The SVG's frame: the print area in pixels at `dpi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    pub width_px: u32,
    pub height_px: u32,
    pub dpi: u32,
}

/// A traced design.
#[derive(Debug, Clone)]
pub(crate) struct VectorDesign {
    pub svg: String,
    /// The distinct fills used (at most the colours asked for).
    pub fills: Vec<Rgb>,
}

/// Trace `design` (already cropped and scaled to its trace size) into at most `colors` fills.
/// None when the design has no opaque pixel.
///
/// Each ink is traced as one binary layer: the layer of the k-th ink (by area, largest first)
/// covers that ink and every ink after it, and layers are drawn in that order, so each pixel
/// shows its own ink and neighbouring shapes never leave a gap between them.
pub(crate) fn trace(
    design: &RgbaImage,
    colors: usize,
    detail: Detail,
    placement: Placement,
    page: Page,
) -> Option<VectorDesign> {
    let palette = Palette::quantise(design, colors)?;
    let (w, h) = (design.width() as usize, design.height() as usize);
    let index = palette.indices(design);
    let mut area = vec![0usize; palette.inks.len()];
    for i in index.iter().filter(|i| **i != CLEAR) {
        area[usize::from(*i)] += 1;
    }
    let mut order: Vec<usize> = (0..palette.inks.len()).filter(|i| area[*i] > 0).collect();
    order.sort_by_key(|i| std::cmp::Reverse(area[*i]));
    let mut rank = vec![usize::MAX; palette.inks.len()];
    for (r, ink) in order.iter().enumerate() {
        rank[*ink] = r;
    }
    let layers: Vec<(Rgb, String)> = order
        .par_iter()
        .enumerate()
        .map(|(r, ink)| {
            let mut layer = BinaryImage::new_w_h(w, h);
            for (i, v) in index.iter().enumerate() {
                if *v != CLEAR && rank[usize::from(*v)] >= r {
                    layer.set_pixel_index(i, true);
                }
            }
            (
                palette.inks[*ink],
                trace_layer(&layer, palette.inks[*ink], detail),
            )
        })
        .collect();
    let mut body = String::new();
    let mut fills: Vec<Rgb> = Vec::new();
    for (ink, paths) in layers {
        if paths.is_empty() {
            continue;
        }
        fills.push(ink);
        body.push_str(&paths);
    }
    if fills.is_empty() {
        return None;
    }
    let svg = document(&body, design.dimensions(), placement, page);
    Some(VectorDesign { svg, fills })
}

/// The design as the tracer sees it: each opaque pixel in its ink, clear pixels clear (for
/// running a reference tracer on the same input). None when no pixel is opaque.
pub(crate) fn in_inks(design: &RgbaImage, colors: usize) -> Option<RgbaImage> {
    let palette = Palette::quantise(design, colors)?;
    let mut out = RgbaImage::new(design.width(), design.height());
    for (p, ink) in out.pixels_mut().zip(palette.indices(design)) {
        if let Some([r, g, b]) = palette.inks.get(usize::from(ink)) {
            p.0 = [*r, *g, *b, 255];
        }
    }
    Some(out)
}

/// Every part of one binary layer as SVG paths filled with `ink` (vtracer's spline settings:
/// corners at 60°, segments of 4 px, 10 iterations, splice at 45°).
fn trace_layer(layer: &BinaryImage, ink: Rgb, detail: Detail) -> String {
    let mut out = String::new();
    for cluster in layer.to_clusters(false).iter() {
        if cluster.size() < detail.speckle_area() {
            continue;
        }
        let path = cluster.to_compound_path(
            PathSimplifyMode::Spline,
            60f64.to_radians(),
            4.0,
            10,
            45f64.to_radians(),
        );
        let (d, offset) = path.to_svg_string(true, PointF64::default(), Some(2));
        if d.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            r#"<path d="{d}" fill="{}" transform="translate({},{})"/>"#,
            hex(ink),
            offset.x,
            offset.y
        );
    }
    out
}

fn document(body: &str, traced: (u32, u32), at: Placement, page: Page) -> String {
    let inches = |px: u32| f64::from(px) / f64::from(page.dpi);
    let sx = at.width / f64::from(traced.0.max(1));
    let sy = at.height / f64::from(traced.1.max(1));
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w:.4}in" height="{h:.4}in" viewBox="0 0 {pw} {ph}">"#,
            "\n",
            r#"<g transform="translate({x:.3} {y:.3}) scale({sx:.6} {sy:.6})">"#,
            "\n{body}</g>\n</svg>\n"
        ),
        w = inches(page.width_px),
        h = inches(page.height_px),
        pw = page.width_px,
        ph = page.height_px,
        x = at.x,
        y = at.y,
        sx = sx,
        sy = sy,
        body = body
    )
}

/// `#rrggbb`.
pub(crate) fn hex([r, g, b]: Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn trace_keeps_at_most_the_colours_asked_for() {
        let design = RgbaImage::from_fn(96, 96, |x, y| {
            let (dx, dy) = (x as i32 - 48, y as i32 - 48);
            if dx * dx + dy * dy > 40 * 40 {
                Rgba([0, 0, 0, 0])
            } else {
                Rgba([(x * 2) as u8, (y * 2) as u8, 120, 255])
            }
        });
        let page = Page {
            width_px: 300,
            height_px: 300,
            dpi: 100,
        };
        let at = Placement {
            x: 10.0,
            y: 10.0,
            width: 280.0,
            height: 280.0,
        };
        let v = trace(&design, 3, Detail::Medium, at, page).unwrap();
        assert!(v.fills.len() <= 3 && !v.fills.is_empty(), "{:?}", v.fills);
        assert!(v.svg.contains(r#"width="3.0000in""#), "{}", &v.svg[..300]);
        assert!(v.svg.matches("<path").count() >= v.fills.len());
        assert!(trace(&RgbaImage::new(8, 8), 3, Detail::Low, at, page).is_none());
    }
}
