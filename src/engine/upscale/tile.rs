//! Tiled inference: the image is cut into `tile`-sized cores, each run through the network with
//! `overlap` pixels of real image context on every side, and only the upscaled core is kept.
//!
//! Why crop rather than blend: an output pixel depends only on input pixels within the
//! network's receptive radius. When `overlap` covers that radius, the core of every tile is
//! computed from exactly the pixels the whole image would give it, so the tiled image equals the
//! untiled one (up to float rounding: within 1 LSB), and any blend would only average two equal
//! values. With a smaller overlap (the default, for speed on the deep RRDBNet) cropping still
//! gives every pixel at least `overlap` pixels of context, which a feathered blend would reduce.
//!
//! At the image border the window simply stops at the border: the network's own zero padding
//! then sees what it sees on the whole image, so edges match the untiled output. Nets that
//! pixel-unshuffle (x2, x1) need sizes that are multiples of 2 (4): the image is first extended
//! by replicating its last row and column, and the extra output is cropped.
//! This file does pixel bookkeeping only; the network comes in as a closure.

use super::super::EngineError;
use candle_core::{Device, Tensor};
use image::RgbaImage;
use std::sync::atomic::{AtomicBool, Ordering};

/// Tile geometry of [`super::Upscaler::upscale`], in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TileOptions {
    /// Side of the square part of the image each tile computes; bounds memory at any image
    /// size. At least 1; rounded up to the net's unshuffle factor.
    pub tile: u32,
    /// Context on each side of a tile. The result equals the untiled one when this is at least
    /// the net's receptive radius (the input pixels an output pixel depends on, on each side).
    pub overlap: u32,
}

impl Default for TileOptions {
    /// 256-pixel tiles with 16 pixels of context: about 1.3× the untiled work, and a
    /// 288-pixel window keeps RRDBNet x4plus within a few GB.
    fn default() -> Self {
        TileOptions {
            tile: 256,
            overlap: 16,
        }
    }
}

/// A rectangle `[x, x + w) × [y, y + h)` in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

/// One tile: the part it computes and the window the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) core: Rect,
    pub input: Rect,
}

/// Cover a `w × h` image (both multiples of `align`) with tiles.
pub(crate) fn windows(w: usize, h: usize, opts: &TileOptions, align: usize) -> Vec<Window> {
    let up = |v: usize| v.div_ceil(align) * align;
    let tile = up((opts.tile as usize).max(1));
    let ov = up(opts.overlap as usize);
    let spans = |len: usize| -> Vec<(usize, usize, usize, usize)> {
        (0..len)
            .step_by(tile)
            .map(|start| {
                let end = (start + tile).min(len);
                let lo = start.saturating_sub(ov);
                (start, end - start, lo, (end + ov).min(len) - lo)
            })
            .collect()
    };
    let (xs, ys) = (spans(w), spans(h));
    let mut out = Vec::with_capacity(xs.len() * ys.len());
    for &(y, h, iy, ih) in &ys {
        for &(x, w, ix, iw) in &xs {
            out.push(Window {
                core: Rect { x, y, w, h },
                input: Rect {
                    x: ix,
                    y: iy,
                    w: iw,
                    h: ih,
                },
            });
        }
    }
    out
}

/// An RGB image as planar f32 in [0, 1], extended to multiples of `align`.
pub(crate) struct Planes {
    pub w: usize,
    pub h: usize,
    data: Vec<f32>,
}

impl Planes {
    /// The colour channels of `img`, last row and column replicated up to `align`.
    pub(super) fn colour(img: &RgbaImage, align: usize) -> Self {
        let (iw, ih) = (img.width() as usize, img.height() as usize);
        let (w, h) = (iw.div_ceil(align) * align, ih.div_ceil(align) * align);
        let mut data = vec![0f32; 3 * w * h];
        for y in 0..h {
            for x in 0..w {
                let p = img.get_pixel(x.min(iw - 1) as u32, y.min(ih - 1) as u32);
                for c in 0..3 {
                    data[(c * h + y) * w + x] = f32::from(p[c]) / 255.0;
                }
            }
        }
        Planes { w, h, data }
    }

    /// The window `r` as a `(1, 3, r.h, r.w)` tensor on `device`.
    pub(super) fn crop(&self, r: &Rect, device: &Device) -> candle_core::Result<Tensor> {
        let mut out = Vec::with_capacity(3 * r.w * r.h);
        for c in 0..3 {
            for y in r.y..r.y + r.h {
                let row = (c * self.h + y) * self.w;
                out.extend_from_slice(&self.data[row + r.x..row + r.x + r.w]);
            }
        }
        Tensor::from_vec(out, (1, 3, r.h, r.w), device)
    }
}

/// Run `net` over every tile of `input` and write the upscaled colour into `out` (whose size
/// is `scale` times the unextended image); checks `cancel` before each tile.
pub(crate) fn run(
    net: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>,
    input: &Planes,
    geometry: (&TileOptions, usize, usize),
    cancel: &AtomicBool,
    out: &mut RgbaImage,
    device: &Device,
) -> Result<(), EngineError> {
    let (opts, align, scale) = geometry;
    for win in windows(input.w, input.h, opts, align) {
        if cancel.load(Ordering::Relaxed) {
            return Err(EngineError::Cancelled);
        }
        let x = input
            .crop(&win.input, device)
            .map_err(EngineError::from_candle)?;
        let y = net(&x)
            .and_then(|y| y.flatten_all()?.to_vec1::<f32>())
            .map_err(EngineError::from_candle)?;
        paste(&y, &win, scale, out);
    }
    Ok(())
}

/// Copy the core of one tile's output `(3, s·ih, s·iw)` into `out`, dropping the extension.
fn paste(y: &[f32], win: &Window, s: usize, out: &mut RgbaImage) {
    let (tw, th) = (s * win.input.w, s * win.input.h);
    let (ow, oh) = (out.width() as usize, out.height() as usize);
    let (x0, y0) = (s * win.core.x, s * win.core.y);
    let (x1, y1) = (
        (s * (win.core.x + win.core.w)).min(ow),
        (s * (win.core.y + win.core.h)).min(oh),
    );
    let (dx, dy) = (s * win.input.x, s * win.input.y);
    for oy in y0..y1 {
        for ox in x0..x1 {
            let at = (oy - dy) * tw + (ox - dx);
            let px = out.get_pixel_mut(ox as u32, oy as u32);
            for c in 0..3 {
                px[c] = to_u8(y[c * th * tw + at]);
            }
        }
    }
}

/// Clamp to [0, 1] and round to 8 bits, as Real-ESRGAN does.
fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0).round() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(tile: u32, overlap: u32) -> TileOptions {
        TileOptions { tile, overlap }
    }

    #[test]
    fn windows_cover_every_pixel_once_with_clamped_context() {
        let wins = windows(50, 30, &opts(16, 5), 1);
        assert_eq!(wins.len(), 4 * 2);
        let mut seen = vec![0u8; 50 * 30];
        for win in &wins {
            let (c, i) = (win.core, win.input);
            assert!(i.x <= c.x && i.x + i.w >= c.x + c.w && i.x + i.w <= 50);
            assert!(c.x - i.x == 5.min(c.x) && (i.y + i.h) - (c.y + c.h) <= 5);
            for y in c.y..c.y + c.h {
                for x in c.x..c.x + c.w {
                    seen[y * 50 + x] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn windows_align_rounds_tile_and_overlap_up() {
        let wins = windows(40, 8, &opts(7, 3), 4);
        assert_eq!(wins[0].core.w, 8);
        assert_eq!(wins[1].input.x, 4);
        assert!(wins
            .iter()
            .all(|w| w.input.x % 4 == 0 && w.input.w % 4 == 0));
    }

    #[test]
    fn planes_colour_replicates_last_column_to_alignment() {
        let img = RgbaImage::from_fn(3, 2, |x, _| image::Rgba([x as u8 * 100, 0, 0, 255]));
        let p = Planes::colour(&img, 4);
        assert_eq!((p.w, p.h), (4, 4));
        let t = p
            .crop(
                &Rect {
                    x: 0,
                    y: 3,
                    w: 4,
                    h: 1,
                },
                &Device::Cpu,
            )
            .unwrap();
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&v[..4], &[0.0, 100.0 / 255.0, 200.0 / 255.0, 200.0 / 255.0]);
    }

    #[test]
    fn to_u8_clamps_and_rounds() {
        assert_eq!((to_u8(-0.2), to_u8(0.5), to_u8(1.7)), (0, 128, 255));
    }
}
