//! Die-cut sticker geometry: the design's silhouette (specks dropped), a border of `border_px`
//! around it (gaps narrower than twice the border and small holes closed), the cut line along
//! the border's outer edge, and `bleed_px` of border colour past it. The result is cropped to
//! the bleed: the sticker's own size. Files are written by `cut_files.rs`.

use super::mask::{Bounds, Mask};
use super::palette::Rgb;
use image::RgbaImage;
use visioncortex::{BinaryImage, PathSimplifyMode};

/// A sticker request, in pixels at the print file's DPI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StickerOptions {
    pub border_px: f32,
    pub bleed_px: f32,
    pub border_color: Rgb,
    /// Islands of the design smaller than this are dropped before the border is drawn.
    pub min_area_px: u64,
    /// The border's shape is worked out on cells of `geometry_step` × `geometry_step` pixels
    /// (1: every pixel). At 300 DPI a step of 2 (0.17 mm) is finer than a cutter follows, and a
    /// quarter of the work.
    pub geometry_step: u32,
}

/// A closed polygon of the cut line, in pixels of the sticker image (corners of pixels).
pub(crate) type Ring = Vec<(f64, f64)>;

/// A die-cut sticker: its image (artwork on the border colour, transparent outside the
/// bleed) and its cut line, one entry per separate part (outer ring first, then its holes).
#[derive(Debug, Clone)]
pub(crate) struct Sticker {
    pub image: RgbaImage,
    pub parts: Vec<Vec<Ring>>,
}

/// Why a sticker cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StickerError {
    #[error("the design is fully transparent: there is no silhouette to cut around")]
    Transparent,
}

/// Make the sticker of `art` (the design at print resolution, with room around it for the
/// border and bleed; the grid is padded here so nothing is clipped).
pub(crate) fn sticker(art: &RgbaImage, opts: &StickerOptions) -> Result<Sticker, StickerError> {
    let k = opts.geometry_step.max(1);
    let r = opts.border_px.max(0.0);
    let b = opts.bleed_px.max(0.0);
    let pad = (2.0 * r + b).ceil() as u32 + 2 * k;
    // The art sits `pad` pixels in from the grid's top left; the grid's sides are multiples of
    // k. The art is never copied onto the grid: masks and paint read it at that offset.
    let frame = Frame {
        pad,
        width: (art.width() + 2 * pad).next_multiple_of(k),
        height: (art.height() + 2 * pad).next_multiple_of(k),
    };
    // In cells of k × k pixels: a cell is opaque when any of its pixels is. That puts the edge
    // cells' centres up to half a cell outside the silhouette, as thresholding distances between
    // centres puts a grown edge up to half a cell inside the true one: the two cancel.
    let kf = k as f32;
    let (rc, bc) = (r / kf, b / kf);
    let min_area = (opts.min_area_px / u64::from(k * k)).max(1);
    let silhouette = opaque_cells(art, &frame, k).without_specks(min_area);
    if silhouette.is_empty() {
        return Err(StickerError::Transparent);
    }
    // Closing the border: grow by twice the border, shrink back by one border. Gaps narrower
    // than 2r between parts and holes narrower than 2r fill; the outline sits r outside.
    let cut = silhouette
        .dilate(2.0 * rc)
        .choke(rc)
        .fill_holes_below((4.0 * rc * rc).ceil() as u64 + 1);
    let bleed = if bc > 0.0 {
        cut.dilate(bc)
    } else {
        cut.clone()
    };
    let cells = bleed.bounds().ok_or(StickerError::Transparent)?;
    let image = paint(art, &frame, &bleed, k, opts.border_color, cells);
    let parts = outline(&cut.crop(cells), f64::from(k));
    Ok(Sticker { image, parts })
}

/// The grid the sticker is worked out on: the art `pad` pixels in from the top left.
struct Frame {
    pad: u32,
    width: u32,
    height: u32,
}

/// The cells of `frame` (k × k pixels each) holding an opaque pixel of `art`.
fn opaque_cells(art: &RgbaImage, frame: &Frame, k: u32) -> Mask {
    let (cw, ch) = (frame.width / k, frame.height / k);
    let mut cells = Mask {
        width: cw,
        height: ch,
        bits: vec![false; (cw * ch) as usize],
    };
    for (x, y, p) in art.enumerate_pixels() {
        if p.0[3] >= super::mask::OPAQUE_FROM {
            let (cx, cy) = ((x + frame.pad) / k, (y + frame.pad) / k);
            cells.bits[(cy * cw + cx) as usize] = true;
        }
    }
    cells
}

/// Artwork over the border colour inside `bleed` (in cells of `k` pixels), clear outside;
/// cropped to the cells `b`.
fn paint(
    art: &RgbaImage,
    frame: &Frame,
    bleed: &Mask,
    k: u32,
    border: Rgb,
    b: Bounds,
) -> RgbaImage {
    use rayon::prelude::*;
    let (x0, y0) = (b.x0 * k, b.y0 * k);
    let w = (b.x1 - b.x0) * k;
    let mut out = RgbaImage::new(w, (b.y1 - b.y0) * k);
    out.par_chunks_mut(4 * w as usize)
        .enumerate()
        .for_each(|(y, row)| {
            let fy = y as u32 + y0;
            for (x, px) in row.chunks_exact_mut(4).enumerate() {
                let fx = x as u32 + x0;
                if !bleed.get(fx / k, fy / k) {
                    continue;
                }
                let (ax, ay) = (fx.wrapping_sub(frame.pad), fy.wrapping_sub(frame.pad));
                let p = if ax < art.width() && ay < art.height() {
                    art.get_pixel(ax, ay).0
                } else {
                    [0, 0, 0, 0]
                };
                let a = u32::from(p[3]);
                let over = |c: u8, under: u8| {
                    ((u32::from(c) * a + u32::from(under) * (255 - a)) / 255) as u8
                };
                px.copy_from_slice(&[
                    over(p[0], border[0]),
                    over(p[1], border[1]),
                    over(p[2], border[2]),
                    255,
                ]);
            }
        });
    out
}

/// The cut line: the outline of each part of `cut` as polygons (visioncortex's boundary tracing
/// and polygon simplification), scaled from cells to pixels by `k`.
fn outline(cut: &Mask, k: f64) -> Vec<Vec<Ring>> {
    let mut img = BinaryImage::new_w_h(cut.width as usize, cut.height as usize);
    for (i, on) in cut.bits.iter().enumerate() {
        if *on {
            img.set_pixel_index(i, true);
        }
    }
    let clusters = img.to_clusters(false);
    let mut parts = Vec::new();
    for cluster in clusters.iter() {
        let path = cluster.to_compound_path(PathSimplifyMode::Polygon, 0.0, 0.0, 0, 0.0);
        let rings: Vec<Ring> = path
            .iter()
            .filter_map(|el| match el {
                visioncortex::CompoundPathElement::PathI32(p) => Some(
                    p.path
                        .iter()
                        .map(|pt| (f64::from(pt.x) * k, f64::from(pt.y) * k))
                        .collect::<Ring>(),
                ),
                _ => None,
            })
            .filter(|ring| ring.len() >= 3)
            .collect();
        if !rings.is_empty() {
            parts.push(rings);
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn disc(size: u32, radius: f32, centre: (f32, f32)) -> RgbaImage {
        RgbaImage::from_fn(size, size, |x, y| {
            let (dx, dy) = (x as f32 + 0.5 - centre.0, y as f32 + 0.5 - centre.1);
            if dx * dx + dy * dy <= radius * radius {
                Rgba([200, 20, 20, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        })
    }

    const OPTS: StickerOptions = StickerOptions {
        border_px: 6.0,
        bleed_px: 2.0,
        border_color: [255, 255, 255],
        min_area_px: 4,
        geometry_step: 1,
    };

    #[test]
    fn sticker_of_a_disc_is_a_bigger_disc_with_one_cut_ring() {
        let s = sticker(&disc(60, 15.0, (30.0, 30.0)), &OPTS).unwrap();
        // Diameter 30 + 2 × (6 + 2) = 46 (± a pixel of rounding).
        let (w, h) = s.image.dimensions();
        assert!((45..=47).contains(&w) && (45..=47).contains(&h), "{w}x{h}");
        assert_eq!(s.parts.len(), 1);
        assert_eq!(s.parts[0].len(), 1, "no holes");
        let c = (w / 2, h / 2);
        assert_eq!(s.image.get_pixel(c.0, c.1).0, [200, 20, 20, 255]);
        assert_eq!(s.image.get_pixel(c.0, 3).0, [255, 255, 255, 255], "border");
        assert_eq!(s.image.get_pixel(0, 0).0[3], 0);
        // The cut ring lies about 15 + 6 from the centre.
        for (x, y) in &s.parts[0][0] {
            let d = ((x - f64::from(w) / 2.0).powi(2) + (y - f64::from(h) / 2.0).powi(2)).sqrt();
            assert!((d - 21.0).abs() < 1.6, "{d}");
        }
    }

    #[test]
    fn sticker_joins_close_parts_and_keeps_far_ones_apart() {
        let mut art = disc(120, 10.0, (20.0, 60.0));
        for (x, y, p) in disc(120, 10.0, (44.0, 60.0)).enumerate_pixels() {
            if p.0[3] > 0 {
                art.put_pixel(x, y, *p);
            }
        }
        assert_eq!(
            sticker(&art, &OPTS).unwrap().parts.len(),
            1,
            "a 4 px gap joins"
        );
        let mut apart = disc(160, 10.0, (20.0, 80.0));
        for (x, y, p) in disc(160, 10.0, (130.0, 80.0)).enumerate_pixels() {
            if p.0[3] > 0 {
                apart.put_pixel(x, y, *p);
            }
        }
        assert_eq!(sticker(&apart, &OPTS).unwrap().parts.len(), 2);
        assert_eq!(
            sticker(&RgbaImage::new(10, 10), &OPTS).unwrap_err(),
            StickerError::Transparent
        );
    }

    #[test]
    fn sticker_in_cells_keeps_the_cut_line_within_a_cell() {
        let art = disc(120, 30.0, (60.0, 60.0));
        let coarse = StickerOptions {
            border_px: 12.0,
            geometry_step: 2,
            ..OPTS
        };
        let s = sticker(&art, &coarse).unwrap();
        let (w, h) = s.image.dimensions();
        assert_eq!((w % 2, h % 2), (0, 0));
        assert_eq!(s.parts.len(), 1);
        let c = (f64::from(w) / 2.0, f64::from(h) / 2.0);
        for (x, y) in &s.parts[0][0] {
            let d = ((x - c.0).powi(2) + (y - c.1).powi(2)).sqrt();
            assert!((d - 42.0).abs() < 2.5, "{d}");
        }
        assert_eq!(s.image.get_pixel(w / 2, h / 2).0, [200, 20, 20, 255]);
    }
}
