//! Per-pixel arithmetic on 8-bit channels: multiply shading, hard-light highlights, masking,
//! source-over compositing (premultiplied sources) and colour tinting of the product region.
//! Integer maths only, exact to rounding; no loops over images except [`tint_rows`].

use image::{GrayImage, RgbaImage};
use rayon::prelude::*;

/// `a * b / 255`, rounded.
#[inline(always)]
pub(super) fn mul255(a: u32, b: u32) -> u32 {
    let t = a * b + 128;
    (t + (t >> 8)) >> 8
}

/// Four 8-bit channels spread into the low bytes of four 16-bit lanes of a `u64`
/// (`0x00AA_00BB_00GG_00RR`), so one multiply scales all four ("SIMD within a register").
pub(super) const LANES: u64 = 0x00ff_00ff_00ff_00ff;
const RGB_LANES: u64 = 0x0000_00ff_00ff_00ff;
const HALF: u64 = 0x0080_0080_0080_0080;

/// Spread an RGBA pixel (little-endian `u32`) into lanes.
#[inline(always)]
pub(super) fn spread(p: u32) -> u64 {
    let v = u64::from(p);
    (v & 0xff) | ((v & 0xff00) << 8) | ((v & 0xff_0000) << 16) | ((v & 0xff00_0000) << 24)
}

/// Pack lanes back into an RGBA `u32`.
#[inline(always)]
pub(super) fn pack(v: u64) -> u32 {
    ((v & 0xff) | ((v >> 8) & 0xff00) | ((v >> 16) & 0xff_0000) | ((v >> 24) & 0xff00_0000)) as u32
}

/// The alpha lane.
#[inline(always)]
pub(super) fn alpha(v: u64) -> u32 {
    (v >> 48) as u32
}

/// Every lane times `k / 255` (k in 0..=255), rounded.
#[inline(always)]
pub(super) fn scale(v: u64, k: u32) -> u64 {
    let t = v * u64::from(k) + HALF;
    ((t + ((t >> 8) & LANES)) >> 8) & LANES
}

/// `a + (b - a) * f / 256` per lane (f in 0..=256), rounded.
#[inline(always)]
pub(super) fn lerp(a: u64, b: u64, f: u32) -> u64 {
    ((a * u64::from(256 - f) + b * u64::from(f) + HALF) >> 8) & LANES
}

/// Premultiply a straight-alpha RGBA `u32` into lanes.
#[inline(always)]
pub(super) fn premultiply_spread(p: u32) -> u64 {
    let v = spread(p);
    let a = alpha(v);
    (scale(v, a) & RGB_LANES) | (v & !RGB_LANES)
}

/// Apply shading (multiply, white = neutral) and a highlight (hard light, 128 = neutral) to a
/// premultiplied spread pixel; alpha is unchanged.
#[inline(always)]
pub(super) fn light_spread(c: u64, shade: u8, high: u8, s: Strengths) -> u64 {
    let a = c & !RGB_LANES;
    let f = 255 - ((s.shading * (255 - u32::from(shade))) >> 8);
    let mut rgb = scale(c, f) & RGB_LANES;
    let t = ((i32::from(high) - 128) * s.highlight as i32) >> 8;
    if t > 0 {
        // Screen towards alpha (white in premultiplied terms); colour never exceeds alpha.
        let alpha_rgb = (a >> 48) * 0x0000_0001_0001_0001;
        rgb += (((alpha_rgb - rgb) * t as u64 + 0x0040_0040_0040) >> 7) & RGB_LANES;
    } else if t < 0 {
        rgb = ((rgb * (128 + t) as u64 + 0x0040_0040_0040) >> 7) & RGB_LANES;
    }
    rgb | a
}

/// Source-over of a premultiplied spread pixel onto an RGBA destination (straight alpha).
#[inline(always)]
pub(super) fn over_spread(dst: &mut [u8], c: u64) {
    let d = u32::from_le_bytes([dst[0], dst[1], dst[2], dst[3]]);
    if d >> 24 == 255 {
        let out = c + scale(spread(d), 255 - alpha(c));
        dst.copy_from_slice(&pack(out).to_le_bytes());
    } else {
        let p = unspread(c);
        over(dst, p);
    }
}

/// Lanes as four `u32`.
#[inline(always)]
pub(super) fn unspread(v: u64) -> [u32; 4] {
    [0, 16, 32, 48].map(|s| ((v >> s) & 0xff) as u32)
}

/// Strengths of the photometric layers in 8-bit fixed point (256 = full strength).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Strengths {
    pub shading: u32,
    pub highlight: u32,
}

impl Strengths {
    /// From manifest strengths in 0..=1.
    pub(super) fn new(shading: f32, highlight: f32) -> Strengths {
        let fixed = |v: f32| (v.clamp(0.0, 1.0) * 256.0).round() as u32;
        Strengths {
            shading: fixed(shading),
            highlight: fixed(highlight),
        }
    }
}

/// Source-over of a premultiplied pixel onto a straight-alpha destination pixel.
#[inline(always)]
pub(super) fn over(dst: &mut [u8], c: [u32; 4]) {
    let inv = 255 - c[3];
    if dst[3] == 255 {
        for i in 0..3 {
            dst[i] = (c[i] + mul255(u32::from(dst[i]), inv)).min(255) as u8;
        }
        return;
    }
    let db = u32::from(dst[3]);
    let out_a = c[3] + mul255(db, inv);
    if out_a == 0 {
        return;
    }
    for i in 0..3 {
        let premul = c[i] + mul255(mul255(u32::from(dst[i]), db), inv);
        dst[i] = ((premul * 255 + out_a / 2) / out_a).min(255) as u8;
    }
    dst[3] = out_a.min(255) as u8;
}

/// Premultiply a straight-alpha pixel.
#[inline(always)]
pub(super) fn premultiply(p: [u8; 4]) -> [u32; 4] {
    let a = u32::from(p[3]);
    [
        mul255(u32::from(p[0]), a),
        mul255(u32::from(p[1]), a),
        mul255(u32::from(p[2]), a),
        a,
    ]
}

/// Composite a straight-alpha layer over `dst` (same size), skipping its clear pixels.
pub(super) fn overlay(dst: &mut RgbaImage, layer: &RgbaImage) {
    let row = dst.width() as usize * 4;
    dst.par_chunks_mut(row)
        .zip(layer.par_chunks(row))
        .for_each(|(d, l)| {
            // Overlays are mostly clear: test two pixels' alphas with one load and skip them.
            const ALPHAS: u64 = 0xff00_0000_ff00_0000;
            for (dw, lw) in d.chunks_exact_mut(8).zip(l.chunks_exact(8)) {
                let word = u64::from_le_bytes(lw.try_into().expect("chunks of 8"));
                if word & ALPHAS == 0 {
                    continue;
                }
                for (dp, lp) in dw.chunks_exact_mut(4).zip(lw.chunks_exact(4)) {
                    if lp[3] != 0 {
                        over(dp, premultiply([lp[0], lp[1], lp[2], lp[3]]));
                    }
                }
            }
            // An odd width leaves one pixel.
            let tail = d.len() / 8 * 8;
            for (dp, lp) in d[tail..].chunks_exact_mut(4).zip(l[tail..].chunks_exact(4)) {
                if lp[3] != 0 {
                    over(dp, premultiply([lp[0], lp[1], lp[2], lp[3]]));
                }
            }
        });
}

/// Per-channel lookup from the base's luma to the tinted colour.
pub(super) struct TintLut([[u8; 256]; 3]);

impl TintLut {
    /// Luma `reference` (0..=1) of flat, lit product becomes `rgb`; darker folds darken it, and
    /// on dark colours shading also adds and removes a little light, so folds stay visible.
    pub(super) fn new(rgb: [u8; 3], reference: f32) -> TintLut {
        let c = rgb.map(|v| f32::from(v) / 255.0);
        let lum = 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        let mut lut = [[0u8; 256]; 3];
        for (ch, table) in lut.iter_mut().enumerate() {
            for (l, v) in table.iter_mut().enumerate() {
                let s = l as f32 / 255.0 / reference;
                let t = c[ch] * s + 0.3 * (1.0 - lum) * (s - 1.0);
                *v = (t.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        TintLut(lut)
    }
}

/// Recolour the product region (`region`, 255 = product) of an RGBA image in place.
pub(super) fn tint_rows(img: &mut RgbaImage, region: &GrayImage, lut: &TintLut, rows: (u32, u32)) {
    let w = img.width() as usize;
    let (y0, y1) = (rows.0 as usize, rows.1 as usize);
    let pixels = &mut (**img)[y0 * w * 4..y1 * w * 4];
    let mask = &region.as_raw()[y0 * w..y1 * w];
    pixels
        .par_chunks_mut(w * 4)
        .zip(mask.par_chunks(w))
        .for_each(|(row, m)| {
            for (p, &m) in row.chunks_exact_mut(4).zip(m) {
                if m == 0 {
                    continue;
                }
                let l = (77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2])) >> 8;
                if m == 255 {
                    // Inside the product (most of it): the lookup alone, no blend.
                    for (ch, v) in p[..3].iter_mut().enumerate() {
                        *v = lut.0[ch][l as usize];
                    }
                    continue;
                }
                let m = u32::from(m);
                for (ch, v) in p[..3].iter_mut().enumerate() {
                    let t = u32::from(lut.0[ch][l as usize]);
                    *v = ((t * m + u32::from(*v) * (255 - m) + 127) / 255) as u8;
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Apply shading (multiply, white = neutral) and a highlight (hard light, 128 = neutral) to a
    /// premultiplied pixel; alpha is unchanged.
    fn light(c: [u32; 4], shade: u8, high: u8, s: Strengths) -> [u32; 4] {
        let f = 255 - ((s.shading * (255 - u32::from(shade))) >> 8);
        let a = c[3];
        let mut rgb = [mul255(c[0], f), mul255(c[1], f), mul255(c[2], f)];
        let t = ((i32::from(high) - 128) * s.highlight as i32) >> 8;
        if t > 0 {
            // Screen towards alpha (white in premultiplied terms).
            for v in &mut rgb {
                *v += ((a - *v) * t as u32 + 64) >> 7;
            }
        } else if t < 0 {
            let k = (128 + t) as u32;
            for v in &mut rgb {
                *v = (*v * k + 64) >> 7;
            }
        }
        [rgb[0], rgb[1], rgb[2], a]
    }

    #[test]
    fn mul255_matches_exact_rounding() {
        for a in 0..256u32 {
            for b in 0..256u32 {
                let exact = ((a * b) as f64 / 255.0).round() as u32;
                assert_eq!(mul255(a, b), exact, "{a}*{b}");
            }
        }
    }

    #[test]
    fn light_neutral_maps_leave_pixel_unchanged() {
        let c = [100, 50, 20, 200];
        assert_eq!(light(c, 255, 128, Strengths::new(1.0, 1.0)), c);
    }

    #[test]
    fn light_highlight_brightens_towards_alpha() {
        let c = [100, 50, 20, 200];
        let out = light(c, 255, 255, Strengths::new(0.0, 1.0));
        assert!(out[0] > 190 && out[0] <= 200, "{out:?}");
    }

    #[test]
    fn spread_and_pack_round_trip() {
        let p = u32::from_le_bytes([1, 2, 3, 250]);
        assert_eq!(pack(spread(p)), p);
        assert_eq!(unspread(spread(p)), [1, 2, 3, 250]);
    }

    #[test]
    fn scale_matches_mul255_on_every_lane() {
        for k in [0u32, 1, 77, 128, 254, 255] {
            let v = spread(u32::from_le_bytes([0, 100, 200, 255]));
            let want = [0u32, 100, 200, 255].map(|c| mul255(c, k));
            assert_eq!(unspread(scale(v, k)), want, "k={k}");
        }
    }

    #[test]
    fn light_spread_matches_scalar_light() {
        let s = Strengths::new(0.8, 0.6);
        let c = [90u32, 40, 10, 200];
        let v = c[0] as u64 | (c[1] as u64) << 16 | (c[2] as u64) << 32 | (c[3] as u64) << 48;
        for (shade, high) in [(255, 128), (100, 128), (255, 250), (180, 10)] {
            let want = light(c, shade, high, s);
            let got = unspread(light_spread(v, shade, high, s));
            for ch in 0..4 {
                assert!(
                    want[ch].abs_diff(got[ch]) <= 1,
                    "{shade},{high}: {want:?} {got:?}"
                );
            }
        }
    }

    #[test]
    fn over_spread_opaque_destination_matches_scalar_over() {
        let c = premultiply_spread(u32::from_le_bytes([200, 100, 50, 128]));
        let (mut a, mut b) = ([10u8, 20, 30, 255], [10u8, 20, 30, 255]);
        over_spread(&mut a, c);
        over(&mut b, unspread(c));
        assert_eq!(a, b);
    }

    #[test]
    fn over_opaque_source_replaces_destination() {
        let mut d = [10, 20, 30, 255];
        over(&mut d, [200, 100, 50, 255]);
        assert_eq!(d, [200, 100, 50, 255]);
    }

    #[test]
    fn over_onto_transparent_destination_unpremultiplies() {
        let mut d = [0, 0, 0, 0];
        over(&mut d, [100, 50, 0, 128]);
        assert_eq!(d, [199, 100, 0, 128]);
    }

    #[test]
    fn tint_lut_reference_luma_maps_to_colour() {
        let lut = TintLut::new([30, 60, 200], 0.9);
        let l = (0.9f32 * 255.0).round() as usize;
        for (ch, want) in [30u8, 60, 200].into_iter().enumerate() {
            assert!((i32::from(lut.0[ch][l]) - i32::from(want)).abs() <= 1);
        }
    }
}
