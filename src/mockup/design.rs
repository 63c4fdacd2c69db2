//! Design preparation: where a design sits in the print area (`fit` or `cover`), and the
//! premultiplied copy with a one-pixel transparent border that the warp samples, halved
//! (box-filtered, like a mip level) while it is more than twice the size it will show at, so
//! bilinear sampling does not alias.

use super::blend::{lerp, premultiply_spread, LANES};
use image::RgbaImage;
use rayon::prelude::*;

/// How a design fills the print area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fit {
    /// The whole design shows, centred; the print area may have empty bands.
    #[default]
    Fit,
    /// The design fills the print area, centred; what overhangs is cropped.
    Cover,
}

/// Where a design lands in the print area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Placement {
    /// The part of the design that shows, in design pixels: x, y, width, height.
    pub(crate) crop: [u32; 4],
    /// Where that part lands, as fractions of the print area: u0, v0, u1, v1.
    pub area: [f64; 4],
}

/// Place a `design` (pixels) in a print area of physical size `print` (any unit).
pub(super) fn place(design: (u32, u32), print: (f64, f64), fit: Fit) -> Placement {
    let (w, h) = (f64::from(design.0), f64::from(design.1));
    let (pw, ph) = print;
    let s = match fit {
        Fit::Fit => (pw / w).min(ph / h),
        Fit::Cover => (pw / w).max(ph / h),
    };
    let crop_w = (pw / s).round().clamp(1.0, w) as u32;
    let crop_h = (ph / s).round().clamp(1.0, h) as u32;
    let crop = [
        (design.0 - crop_w) / 2,
        (design.1 - crop_h) / 2,
        crop_w,
        crop_h,
    ];
    let (fw, fh) = (f64::from(crop_w) * s / pw, f64::from(crop_h) * s / ph);
    let (u0, v0) = ((1.0 - fw) / 2.0, (1.0 - fh) / 2.0);
    Placement {
        crop,
        area: [u0, v0, u0 + fw, v0 + fh],
    }
}

/// A premultiplied RGBA raster with a one-pixel transparent border all round, each pixel
/// spread into 16-bit lanes (see [`spread`]) so bilinear weights apply to all channels at once.
pub(super) struct Raster {
    pub data: Vec<u64>,
    /// Width including the border.
    pub width: usize,
    /// Height including the border.
    pub height: usize,
}

/// Raster coordinate `v` (pixel centres at `i + 0.5`) in 1/256 pixel, offset so that `>> 8`
/// gives the left (upper) tap of the bilinear pair.
#[inline(always)]
#[allow(clippy::manual_clamp)] // max/min map NaN to a bound; clamp would keep it
pub(super) fn fixed(v: f32) -> i32 {
    // Round to nearest by adding 1.5 * 2^23 and reading the mantissa: unlike a saturating
    // `as` cast this vectorises. The clamp (NaN included) keeps |t| < 2^22, far outside any
    // raster, so such points fail the range check.
    let t = ((v - 0.5) * 256.0).max(-4.0e6).min(4.0e6);
    (t + 12_582_912.0).to_bits() as i32 - 0x4b40_0000
}

impl Raster {
    /// Size of the picture inside the border.
    pub(super) fn inner(&self) -> (usize, usize) {
        (self.width - 2, self.height - 2)
    }

    /// Bilinear sample at fixed-point coordinates from [`fixed`]; `None` outside.
    #[inline(always)]
    pub(super) fn sample_fixed(&self, xi: i32, yi: i32) -> Option<u64> {
        let (x0, y0) = (xi >> 8, yi >> 8);
        if x0 < 0 || y0 < 0 || x0 as usize + 1 >= self.width || y0 as usize + 1 >= self.height {
            return None;
        }
        let (fx, fy) = ((xi & 255) as u32, (yi & 255) as u32);
        let i = y0 as usize * self.width + x0 as usize;
        let q = &self.data[i..i + self.width + 2];
        let (a, b, c, d) = (q[0], q[1], q[self.width], q[self.width + 1]);
        // Designs are mostly flat colour and transparency: skip the arithmetic there.
        if a == b && a == c && a == d {
            return (a != 0).then_some(a);
        }
        let top = lerp(a, b, fx);
        let bottom = lerp(c, d, fx);
        Some(lerp(top, bottom, fy))
    }

    /// Bilinear sample at `(sx, sy)` in raster pixels, as premultiplied RGBA.
    #[cfg(test)]
    pub(super) fn sample(&self, sx: f32, sy: f32) -> Option<[u32; 4]> {
        self.sample_fixed(fixed(sx), fixed(sy))
            .map(super::blend::unspread)
    }
}

/// Premultiply the `crop` of `design` and halve it while both sides stay at least twice
/// `target` (the on-screen size in pixels).
pub(super) fn rasterize(design: &RgbaImage, crop: [u32; 4], target: (f64, f64)) -> Raster {
    let [cx, cy, cw, ch] = crop.map(|v| v as usize);
    let mut raster = Raster {
        data: vec![0; (cw + 2) * (ch + 2)],
        width: cw + 2,
        height: ch + 2,
    };
    let src_w = design.width() as usize;
    let src = design.as_raw();
    let stride = raster.width;
    raster.data[stride..stride * (ch + 1)]
        .par_chunks_mut(stride)
        .enumerate()
        .for_each(|(y, row)| {
            let start = ((cy + y) * src_w + cx) * 4;
            let line = &src[start..start + cw * 4];
            for (d, s) in row[1..=cw].iter_mut().zip(line.chunks_exact(4)) {
                *d = premultiply_spread(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
            }
        });
    loop {
        let (w, h) = raster.inner();
        if (w as f64) < 2.0 * target.0 || (h as f64) < 2.0 * target.1 || w < 2 || h < 2 {
            return raster;
        }
        raster = halve(&raster);
    }
}

/// Box-filter a raster to half size (odd sides round up, repeating the last pixel).
fn halve(src: &Raster) -> Raster {
    let (w, h) = src.inner();
    let (hw, hh) = (w.div_ceil(2), h.div_ceil(2));
    let mut out = Raster {
        data: vec![0; (hw + 2) * (hh + 2)],
        width: hw + 2,
        height: hh + 2,
    };
    let (ss, ds) = (src.width, out.width);
    out.data[ds..ds * (hh + 1)]
        .par_chunks_mut(ds)
        .enumerate()
        .for_each(|(y, row)| {
            let (r0, r1) = ((1 + 2 * y) * ss, (1 + (2 * y + 1).min(h - 1)) * ss);
            for (x, d) in row[1..=hw].iter_mut().enumerate() {
                let (c0, c1) = (1 + 2 * x, 1 + (2 * x + 1).min(w - 1));
                let d_ = &src.data;
                let sum = d_[r0 + c0] + d_[r0 + c1] + d_[r1 + c0] + d_[r1 + c1];
                // Four 8-bit values per lane fit in its 16 bits; round and divide by four.
                *d = ((sum + 0x0002_0002_0002_0002) >> 2) & LANES;
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_fit_wide_design_centres_vertically() {
        let p = place((200, 100), (10.0, 10.0), Fit::Fit);
        assert_eq!(p.crop, [0, 0, 200, 100]);
        assert!((p.area[1] - 0.25).abs() < 1e-9 && (p.area[3] - 0.75).abs() < 1e-9);
    }

    #[test]
    fn place_cover_wide_design_crops_the_sides() {
        let p = place((200, 100), (10.0, 10.0), Fit::Cover);
        assert_eq!(p.crop, [50, 0, 100, 100]);
        assert_eq!(p.area, [0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn rasterize_large_design_is_halved_towards_target() {
        let img = RgbaImage::from_pixel(400, 400, image::Rgba([255, 0, 0, 128]));
        let r = rasterize(&img, [0, 0, 400, 400], (90.0, 90.0));
        assert_eq!(r.inner(), (100, 100));
        let mid = r.sample(50.0, 50.0).unwrap();
        assert_eq!(mid, [128, 0, 0, 128]);
    }

    #[test]
    fn sample_at_border_is_half_transparent() {
        let img = RgbaImage::from_pixel(4, 4, image::Rgba([255, 255, 255, 255]));
        let r = rasterize(&img, [0, 0, 4, 4], (4.0, 4.0));
        assert_eq!(r.sample(1.0, 3.0).unwrap()[3], 128);
        assert!(r.sample(-0.6, 3.0).is_none());
    }
}
