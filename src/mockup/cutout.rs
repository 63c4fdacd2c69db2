//! Model-free background removal (`"background": "remove_flat"`): for designs made on a plain
//! background (the sticker, logo and line-art styles ask for one), flood fill from the border
//! over pixels close to the background colour, then feather the edge and take the background's
//! colour out of the edge pixels, so a cut-out has no halo on a dark shirt. Pure CPU, no model:
//! mockup-only and CPU-only deployments get a cut-out too.

use image::RgbaImage;
use std::collections::VecDeque;

/// How the flat background is found and how soft its edge is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FlatCutout {
    /// Largest per-channel difference from the background colour still counted as background.
    pub tolerance: u8,
    /// Half-width in pixels of the soft edge.
    pub(crate) feather_px: f32,
}

impl Default for FlatCutout {
    fn default() -> Self {
        FlatCutout {
            tolerance: 40,
            feather_px: 1.5,
        }
    }
}

/// Cut the plain background out of `img`: the new alpha is the old one times the soft
/// foreground mask. An image whose border is not one plain colour keeps its border pixels only
/// where they differ from the estimated colour (so nothing is removed from a busy photo).
pub(crate) fn remove_flat_background(img: &RgbaImage, opts: &FlatCutout) -> RgbaImage {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return img.clone();
    }
    let bg = border_colour(img);
    let background = flood_from_border(img, bg, opts.tolerance);
    let soft = feather(&background, w as usize, h as usize, opts.feather_px);
    let mut out = img.clone();
    for (i, px) in out.pixels_mut().enumerate() {
        // Background stays fully clear; the foreground fades out over the feather width.
        let keep = if background[i] == 1.0 {
            0.0
        } else {
            1.0 - soft[i]
        };
        if keep >= 1.0 {
            continue;
        }
        decontaminate(px, bg, keep);
        px.0[3] = (f32::from(px.0[3]) * keep).round() as u8;
    }
    out
}

/// The background's colour: the per-channel median of the border's opaque pixels.
fn border_colour(img: &RgbaImage) -> [u8; 3] {
    let (w, h) = img.dimensions();
    let mut channels: [Vec<u8>; 3] = Default::default();
    let mut push = |x: u32, y: u32| {
        let p = img.get_pixel(x, y).0;
        if p[3] > 127 {
            for c in 0..3 {
                channels[c].push(p[c]);
            }
        }
    };
    for x in 0..w {
        push(x, 0);
        push(x, h - 1);
    }
    for y in 0..h {
        push(0, y);
        push(w - 1, y);
    }
    let mut out = [255u8; 3];
    for (c, values) in channels.iter_mut().enumerate() {
        if !values.is_empty() {
            values.sort_unstable();
            out[c] = values[values.len() / 2];
        }
    }
    out
}

fn close_to(p: [u8; 4], bg: [u8; 3], tolerance: u8) -> bool {
    // Already transparent pixels are background whatever their colour.
    p[3] == 0 || (0..3).all(|c| p[c].abs_diff(bg[c]) <= tolerance)
}

/// 1.0 for every pixel reached from the border through background-coloured pixels
/// (4-connected), else 0.0.
fn flood_from_border(img: &RgbaImage, bg: [u8; 3], tolerance: u8) -> Vec<f32> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let mut mask = vec![0f32; w * h];
    let mut queue = VecDeque::new();
    let seed = |x: usize, y: usize, mask: &mut Vec<f32>, queue: &mut VecDeque<usize>| {
        let i = y * w + x;
        if mask[i] == 0.0 && close_to(img.get_pixel(x as u32, y as u32).0, bg, tolerance) {
            mask[i] = 1.0;
            queue.push_back(i);
        }
    };
    for x in 0..w {
        seed(x, 0, &mut mask, &mut queue);
        seed(x, h - 1, &mut mask, &mut queue);
    }
    for y in 0..h {
        seed(0, y, &mut mask, &mut queue);
        seed(w - 1, y, &mut mask, &mut queue);
    }
    while let Some(i) = queue.pop_front() {
        let (x, y) = (i % w, i / w);
        if x > 0 {
            seed(x - 1, y, &mut mask, &mut queue);
        }
        if x + 1 < w {
            seed(x + 1, y, &mut mask, &mut queue);
        }
        if y > 0 {
            seed(x, y - 1, &mut mask, &mut queue);
        }
        if y + 1 < h {
            seed(x, y + 1, &mut mask, &mut queue);
        }
    }
    mask
}

/// The hard background mask blurred by a separable tent filter of half-width `radius`: how
/// much background each pixel sees within the feather width (0 deep inside the foreground).
fn feather(mask: &[f32], w: usize, h: usize, radius: f32) -> Vec<f32> {
    if radius <= 0.0 {
        return mask.to_vec();
    }
    let r = radius.ceil() as isize;
    let weights: Vec<f32> = (-r..=r)
        .map(|d| (1.0 - d.abs() as f32 / (radius + 1.0)).max(0.0))
        .collect();
    let total: f32 = weights.iter().sum();
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for (k, wt) in weights.iter().enumerate() {
                    let d = k as isize - r;
                    let (sx, sy) = if horizontal {
                        ((x as isize + d).clamp(0, w as isize - 1) as usize, y)
                    } else {
                        (x, (y as isize + d).clamp(0, h as isize - 1) as usize)
                    };
                    acc += wt * src[sy * w + sx];
                }
                out[y * w + x] = acc / total;
            }
        }
        out
    };
    pass(&pass(mask, true), false)
}

/// Take the background colour out of a partly kept edge pixel: solve
/// `observed = keep * fg + (1 - keep) * bg` for `fg`.
fn decontaminate(px: &mut image::Rgba<u8>, bg: [u8; 3], keep: f32) {
    if keep <= 0.05 {
        return;
    }
    for (channel, bg) in px.0.iter_mut().zip(bg) {
        let observed = f32::from(*channel);
        let fg = (observed - (1.0 - keep) * f32::from(bg)) / keep;
        *channel = fg.round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    /// A red disc on white.
    fn disc(size: u32) -> RgbaImage {
        let c = size as f32 / 2.0;
        RgbaImage::from_fn(size, size, |x, y| {
            let d = ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - c).powi(2)).sqrt();
            if d < size as f32 / 3.0 {
                Rgba([200, 20, 20, 255])
            } else {
                Rgba([250, 250, 248, 255])
            }
        })
    }

    #[test]
    fn remove_flat_disc_corners_clear_centre_opaque_edge_soft() {
        let out = remove_flat_background(&disc(64), &FlatCutout::default());
        assert_eq!(out.get_pixel(0, 0).0[3], 0);
        assert_eq!(out.get_pixel(63, 63).0[3], 0);
        assert_eq!(out.get_pixel(32, 32).0, [200, 20, 20, 255]);
        let partial = out.pixels().filter(|p| p.0[3] > 0 && p.0[3] < 255).count();
        assert!(partial > 20, "{partial} edge pixels are partly transparent");
    }

    #[test]
    fn remove_flat_enclosed_background_colour_is_kept() {
        // A white hole inside the disc is not connected to the border: it stays.
        let mut img = disc(64);
        for y in 30..34 {
            for x in 30..34 {
                img.put_pixel(x, y, Rgba([250, 250, 248, 255]));
            }
        }
        let out = remove_flat_background(&img, &FlatCutout::default());
        assert_eq!(out.get_pixel(31, 31).0[3], 255);
    }

    #[test]
    fn remove_flat_edge_pixels_lose_the_background_tint() {
        let out = remove_flat_background(&disc(64), &FlatCutout::default());
        let edge: Vec<_> = out
            .pixels()
            .filter(|p| p.0[3] > 60 && p.0[3] < 200)
            .collect();
        assert!(!edge.is_empty());
        // Decontaminated edge pixels are red, not pink.
        assert!(
            edge.iter().all(|p| p.0[1] < 120),
            "{:?}",
            &edge[..edge.len().min(4)]
        );
    }

    #[test]
    fn remove_flat_busy_border_removes_little() {
        let img = RgbaImage::from_fn(32, 32, |x, y| Rgba([(x * 8) as u8, (y * 8) as u8, 90, 255]));
        let out = remove_flat_background(&img, &FlatCutout::default());
        let cleared = out.pixels().filter(|p| p.0[3] == 0).count();
        assert!(cleared < 32 * 32 / 4, "{cleared} cleared");
    }
}
