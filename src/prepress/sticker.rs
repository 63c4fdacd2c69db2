//! Die-cut sticker geometry: the design's silhouette (specks dropped), a border of `border_px`
//! around it (gaps narrower than twice the border and small holes closed), the cut line along
//! the border's outer edge, and `bleed_px` of border colour past it. The result is cropped to
//! the bleed: the sticker's own size. Files are written by `cut_files.rs`.

use super::mask::{Bounds, Mask};
use super::palette::Rgb;
use image::{Rgba, RgbaImage};
use visioncortex::{BinaryImage, PathSimplifyMode};

/// A sticker request, in pixels at the print file's DPI.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct StickerOptions {
    pub border_px: f32,
    pub bleed_px: f32,
    pub border_color: Rgb,
    /// Islands of the design smaller than this are dropped before the border is drawn.
    pub min_area_px: u64,
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
    let r = opts.border_px.max(0.0);
    let b = opts.bleed_px.max(0.0);
    let pad = (2.0 * r + b).ceil() as u32 + 2;
    let padded = pad_image(art, pad);
    let silhouette = Mask::opaque(&padded).without_specks(opts.min_area_px);
    if silhouette.is_empty() {
        return Err(StickerError::Transparent);
    }
    // Closing the border: grow by twice the border, shrink back by one border. Gaps narrower
    // than 2r between parts and holes narrower than 2r fill; the outline sits r outside.
    let cut = silhouette
        .dilate(2.0 * r)
        .choke(r)
        .fill_holes_below((4.0 * r * r).ceil() as u64 + 1);
    let bleed = if b > 0.0 { cut.dilate(b) } else { cut.clone() };
    let bounds = bleed.bounds().ok_or(StickerError::Transparent)?;
    let image = paint(&padded, &bleed, opts.border_color, bounds);
    let parts = outline(&cut.crop(bounds));
    Ok(Sticker { image, parts })
}

fn pad_image(img: &RgbaImage, pad: u32) -> RgbaImage {
    let mut out = RgbaImage::new(img.width() + 2 * pad, img.height() + 2 * pad);
    image::imageops::replace(&mut out, img, i64::from(pad), i64::from(pad));
    out
}

/// Artwork over the border colour inside `bleed`, clear outside; cropped to `b`.
fn paint(art: &RgbaImage, bleed: &Mask, border: Rgb, b: Bounds) -> RgbaImage {
    RgbaImage::from_fn(b.x1 - b.x0, b.y1 - b.y0, |x, y| {
        let (sx, sy) = (x + b.x0, y + b.y0);
        if !bleed.get(sx, sy) {
            return Rgba([0, 0, 0, 0]);
        }
        let p = art.get_pixel(sx, sy).0;
        let a = u32::from(p[3]);
        let over =
            |c: u8, under: u8| ((u32::from(c) * a + u32::from(under) * (255 - a)) / 255) as u8;
        Rgba([
            over(p[0], border[0]),
            over(p[1], border[1]),
            over(p[2], border[2]),
            255,
        ])
    })
}

/// The cut line: the outline of each part of `cut` as polygons (visioncortex's boundary tracing
/// and polygon simplification).
fn outline(cut: &Mask) -> Vec<Vec<Ring>> {
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
                        .map(|pt| (f64::from(pt.x), f64::from(pt.y)))
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
}
