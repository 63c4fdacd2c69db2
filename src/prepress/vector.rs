//! Vector SVG of a design in at most N colours: the design quantised to N inks (Oklab k-means,
//! `palette.rs`), then traced by visioncortex (vtracer's clustering and spline fitting, stacked
//! layers so neighbouring shapes leave no gaps), each shape's fill snapped to its ink. The SVG
//! covers the print area at its physical size; clear pixels stay transparent.

use super::palette::{Palette, Rgb};
use image::RgbaImage;
use std::fmt::Write as _;
use visioncortex::color_clusters::{KeyingAction, Runner, RunnerConfig, HIERARCHICAL_MAX};
use visioncortex::{Color, ColorImage, PathSimplifyMode};

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
    pub shapes: usize,
}

/// Trace `design` (already cropped and scaled to its trace size) into at most `colors` fills.
/// None when the design has no opaque pixel.
pub(crate) fn trace(
    design: &RgbaImage,
    colors: usize,
    detail: Detail,
    placement: Placement,
    page: Page,
) -> Option<VectorDesign> {
    let palette = Palette::quantise(design, colors)?;
    let key = key_color(&palette.inks);
    let (w, h) = (design.width() as usize, design.height() as usize);
    let mut img = ColorImage::new_w_h(w, h);
    for (i, p) in design.pixels().enumerate() {
        let c = if p.0[3] >= super::mask::OPAQUE_FROM {
            let ink = palette.inks[usize::from(palette.nearest([p.0[0], p.0[1], p.0[2]]))];
            Color::new(ink[0], ink[1], ink[2])
        } else {
            key
        };
        img.set_pixel(i % w, i / w, &c);
    }
    let runner = Runner::new(
        RunnerConfig {
            diagonal: false,
            hierarchical: HIERARCHICAL_MAX,
            batch_size: 25600,
            good_min_area: detail.speckle_area(),
            good_max_area: w * h,
            is_same_color_a: 0,
            is_same_color_b: 1,
            deepen_diff: 16,
            hollow_neighbours: 1,
            key_color: key,
            keying_action: KeyingAction::Discard,
        },
        img,
    );
    let clusters = runner.run();
    let view = clusters.view();
    let mut body = String::new();
    let mut fills: Vec<Rgb> = Vec::new();
    let mut shapes = 0;
    for &index in view.clusters_output.iter().rev() {
        let cluster = view.get_cluster(index);
        let c = cluster.residue_color();
        let ink = palette.inks[usize::from(palette.nearest([c.r, c.g, c.b]))];
        let path = cluster.to_compound_path(
            &view,
            false,
            PathSimplifyMode::Spline,
            60f64.to_radians(),
            4.0,
            10,
            45f64.to_radians(),
        );
        let (d, offset) = path.to_svg_string(true, visioncortex::PointF64::default(), Some(2));
        if d.is_empty() {
            continue;
        }
        if !fills.contains(&ink) {
            fills.push(ink);
        }
        shapes += 1;
        let _ = writeln!(
            body,
            r#"<path d="{d}" fill="{}" transform="translate({},{})"/>"#,
            hex(ink),
            offset.x,
            offset.y
        );
    }
    let svg = document(&body, design.dimensions(), placement, page);
    Some(VectorDesign { svg, fills, shapes })
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

/// A colour none of the inks has, for the clear pixels (visioncortex drops clusters of it).
fn key_color(inks: &[Rgb]) -> Color {
    let candidates = (0u8..=255).map(|v| [255, v, 255]);
    let free = candidates
        .into_iter()
        .find(|c| !inks.contains(c))
        .expect("at most 16 inks cannot take 256 colours");
    Color::new(free[0], free[1], free[2])
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
        assert!(v.shapes >= v.fills.len());
        assert!(trace(&RgbaImage::new(8, 8), 3, Detail::Low, at, page).is_none());
    }
}
