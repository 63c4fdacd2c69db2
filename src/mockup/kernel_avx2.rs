//! The compositing pass of `kernel.rs`, four pixels at a time with AVX2, for rows whose pixels
//! are all opaque (every product: the tinted product is opaque under the print area). Each
//! spread pixel (`0x00AA_00BB_00GG_00RR`) is one 64-bit lane of a 256-bit register, so the
//! 16-bit arithmetic of `blend.rs` runs unchanged on four pixels: the bilinear taps come from
//! one 16-byte load per pixel and row, the weights are broadcast to each pixel's lanes, and every step rounds exactly
//! as the scalar code does, so the output is byte-identical (tested against the scalar pass).
//! The branches of the scalar pass become identities here: a clear sample, a zero mask and a
//! flat 2x2 neighbourhood give the same bytes through the full arithmetic, and an out-of-range
//! sample is zeroed, which leaves the destination as it was.
//!
//! Chosen over a SIMD crate: the kernel needs 128-bit lane shuffles and 16-bit multiplies,
//! which portable SIMD crates either lack on stable Rust or lower to the same intrinsics.

#![allow(unsafe_code)]

use super::blend::Strengths;
use super::design::Raster;
use super::kernel::Maps;
use std::arch::x86_64::*;

/// One weight per pixel, copied into all four 16-bit lanes of its 64-bit lane.
const BROADCAST: u64 = 0x0001_0001_0001_0001;

/// Whether this CPU can run [`composite_opaque`] (checked once by the standard library).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Composite the first `dst.len() / 4 * 4` pixels of an opaque row; returns how many were done.
/// `xs`/`ys` are the fixed-point raster positions of the pixels, `first` the canvas index of
/// `dst[0]` (for the mask and lighting maps).
pub fn composite_opaque(
    dst: &mut [u64],
    xs: &[i32],
    ys: &[i32],
    raster: &Raster,
    maps: &Maps,
    first: usize,
) -> usize {
    assert!(available(), "composite_opaque needs AVX2");
    assert!(xs.len() >= dst.len() && ys.len() >= dst.len());
    assert!(raster.width >= 2 && raster.height >= 2);
    assert!(raster.data.len() >= raster.width * raster.height);
    // SAFETY: AVX2 is present (checked above); the raster's size by the asserts above, and each
    // group's slices (`dst`, `xs`, `ys`) by slice indexing in `opaque_row`.
    unsafe { opaque_row(dst, xs, ys, raster, maps, first) }
}

#[target_feature(enable = "avx2")]
unsafe fn opaque_row(
    dst: &mut [u64],
    xs: &[i32],
    ys: &[i32],
    raster: &Raster,
    maps: &Maps,
    first: usize,
) -> usize {
    let groups = dst.len() / 4;
    let lit = maps.shading.is_some() || maps.highlight.is_some();
    for g in 0..groups {
        let k = g * 4;
        let i = first + k;
        // Per-pixel weights, computed as the scalar pass computes them.
        let mut mask = [255u64; 4];
        let (mut shade_f, mut t_pos, mut t_neg) = ([255u64; 4], [0u64; 4], [128u64; 4]);
        for p in 0..4 {
            if let Some(m) = maps.mask {
                mask[p] = u64::from(m[i + p]);
            }
            if lit {
                let shade = maps.shading.map_or(255, |s| s[i + p]);
                let high = maps.highlight.map_or(128, |h| h[i + p]);
                let (f, t) = light_weights(shade, high, maps.strengths);
                shade_f[p] = u64::from(f);
                if t > 0 {
                    t_pos[p] = t as u64;
                } else {
                    t_neg[p] = (128 + t) as u64;
                }
            }
        }
        let c = unsafe { sample4(raster, &xs[k..k + 4], &ys[k..k + 4]) };
        let c = if lit {
            light4(c, lanes(shade_f), lanes(t_pos), lanes(t_neg))
        } else {
            c
        };
        let c = scale4(c, lanes(mask));
        let d = unsafe { _mm256_loadu_si256(dst[k..k + 4].as_ptr().cast()) };
        let out = _mm256_add_epi16(c, scale4(d, inverse_alpha(c)));
        unsafe { _mm256_storeu_si256(dst[k..k + 4].as_mut_ptr().cast(), out) };
    }
    groups * 4
}

/// The multiply and highlight weights of `blend::light_spread` for one pixel.
fn light_weights(shade: u8, high: u8, s: Strengths) -> (u32, i32) {
    let f = 255 - ((s.shading * (255 - u32::from(shade))) >> 8);
    let t = ((i32::from(high) - 128) * s.highlight as i32) >> 8;
    (f, t)
}

/// Four per-pixel weights, each in all four 16-bit lanes of its pixel.
#[target_feature(enable = "avx2")]
fn lanes(w: [u64; 4]) -> __m256i {
    _mm256_set_epi64x(
        (w[3] * BROADCAST) as i64,
        (w[2] * BROADCAST) as i64,
        (w[1] * BROADCAST) as i64,
        (w[0] * BROADCAST) as i64,
    )
}

/// Bilinear samples of four pixels (`blend::lerp` twice across, once down); zero where a
/// position falls outside the raster.
#[target_feature(enable = "avx2")]
unsafe fn sample4(raster: &Raster, xs: &[i32], ys: &[i32]) -> __m256i {
    let (w, h) = (raster.width as i32, raster.height as i32);
    let xs = unsafe { _mm_loadu_si128(xs.as_ptr().cast()) };
    let ys = unsafe { _mm_loadu_si128(ys.as_ptr().cast()) };
    let (x0, y0) = (_mm_srai_epi32(xs, 8), _mm_srai_epi32(ys, 8));
    let minus_one = _mm_set1_epi32(-1);
    // 0 <= x0 and x0 + 1 < w (likewise y0), as in `Raster::sample_fixed`.
    let valid = _mm_and_si128(
        _mm_and_si128(
            _mm_cmpgt_epi32(x0, minus_one),
            _mm_cmpgt_epi32(_mm_set1_epi32(w - 1), x0),
        ),
        _mm_and_si128(
            _mm_cmpgt_epi32(y0, minus_one),
            _mm_cmpgt_epi32(_mm_set1_epi32(h - 1), y0),
        ),
    );
    // Out-of-range pixels read index 0 (inside the raster) and are zeroed below.
    let index = _mm_and_si128(
        _mm_add_epi32(_mm_mullo_epi32(y0, _mm_set1_epi32(w)), x0),
        valid,
    );
    let mut at = [0i32; 4];
    unsafe { _mm_storeu_si128(at.as_mut_ptr().cast(), index) };
    let data = raster.data.as_ptr();
    let width = raster.width;
    // Each pixel's two taps of a row are adjacent: one 16-byte load per row and pixel (gathers
    // measured slower than the scalar pass on AMD EPYC). Lanes come out in the order
    // [p0, p2, p1, p3] and are put back in order below.
    // SAFETY: every index is either 0 or a valid (x0, y0) with x0 + 1 < width and y0 + 1 <
    // height, so index + width + 1 is inside `data` (at least width * height long).
    let pair = |i: i32, row: usize| unsafe {
        _mm_loadu_si128(data.add(i as usize + row).cast::<__m128i>())
    };
    let (top01, top23) = (
        _mm256_set_m128i(pair(at[1], 0), pair(at[0], 0)),
        _mm256_set_m128i(pair(at[3], 0), pair(at[2], 0)),
    );
    let (bot01, bot23) = (
        _mm256_set_m128i(pair(at[1], width), pair(at[0], width)),
        _mm256_set_m128i(pair(at[3], width), pair(at[2], width)),
    );
    let in_order = |v: __m256i| _mm256_permute4x64_epi64::<0b11_01_10_00>(v);
    let (a, b, c, d) = (
        in_order(_mm256_unpacklo_epi64(top01, top23)),
        in_order(_mm256_unpackhi_epi64(top01, top23)),
        in_order(_mm256_unpacklo_epi64(bot01, bot23)),
        in_order(_mm256_unpackhi_epi64(bot01, bot23)),
    );
    let byte = _mm_set1_epi32(255);
    let fx = broadcast_word0(_mm256_cvtepu32_epi64(_mm_and_si128(xs, byte)));
    let fy = broadcast_word0(_mm256_cvtepu32_epi64(_mm_and_si128(ys, byte)));
    let top = lerp4(a, b, fx);
    let bottom = lerp4(c, d, fx);
    _mm256_and_si256(lerp4(top, bottom, fy), _mm256_cvtepi32_epi64(valid))
}

/// Each 64-bit lane's lowest 16-bit word copied to its four words.
#[target_feature(enable = "avx2")]
fn broadcast_word0(v: __m256i) -> __m256i {
    _mm256_shufflehi_epi16::<0>(_mm256_shufflelo_epi16::<0>(v))
}

/// `255 - alpha` of each pixel, in all its lanes (alpha is word 3 of each 64-bit lane).
#[target_feature(enable = "avx2")]
fn inverse_alpha(c: __m256i) -> __m256i {
    let alpha = _mm256_shufflehi_epi16::<0xff>(_mm256_shufflelo_epi16::<0xff>(c));
    _mm256_sub_epi16(_mm256_set1_epi16(255), alpha)
}

/// `blend::lerp`: `(a * (256 - f) + b * f + 128) >> 8` per lane; never above 65 408, so 16-bit
/// lanes hold every intermediate exactly.
#[target_feature(enable = "avx2")]
fn lerp4(a: __m256i, b: __m256i, f: __m256i) -> __m256i {
    let left = _mm256_mullo_epi16(a, _mm256_sub_epi16(_mm256_set1_epi16(256), f));
    let right = _mm256_mullo_epi16(b, f);
    _mm256_srli_epi16::<8>(_mm256_add_epi16(
        _mm256_add_epi16(left, right),
        _mm256_set1_epi16(128),
    ))
}

/// `blend::scale`: every lane times `k / 255`, rounded (`t = v * k + 128; (t + (t >> 8)) >> 8`).
#[target_feature(enable = "avx2")]
fn scale4(v: __m256i, k: __m256i) -> __m256i {
    let t = _mm256_add_epi16(_mm256_mullo_epi16(v, k), _mm256_set1_epi16(128));
    _mm256_srli_epi16::<8>(_mm256_add_epi16(t, _mm256_srli_epi16::<8>(t)))
}

/// `blend::light_spread` with its per-pixel branch folded into weights: colour lanes scaled by
/// `f`, then screened towards alpha by `t_pos` (0: unchanged) and darkened by `t_neg` (128:
/// unchanged); alpha untouched.
#[target_feature(enable = "avx2")]
fn light4(c: __m256i, f: __m256i, t_pos: __m256i, t_neg: __m256i) -> __m256i {
    let rgb_lanes = _mm256_set1_epi64x(0x0000_00ff_00ff_00ff);
    let alpha = _mm256_andnot_si256(rgb_lanes, c);
    let rgb = _mm256_and_si256(scale4(c, f), rgb_lanes);
    let alpha_rgb = _mm256_and_si256(
        _mm256_shufflehi_epi16::<0xff>(_mm256_shufflelo_epi16::<0xff>(c)),
        rgb_lanes,
    );
    let sixty_four = _mm256_set1_epi16(64);
    let towards = _mm256_mullo_epi16(_mm256_sub_epi16(alpha_rgb, rgb), t_pos);
    let rgb = _mm256_add_epi16(
        rgb,
        _mm256_and_si256(
            _mm256_srli_epi16::<7>(_mm256_add_epi16(towards, sixty_four)),
            rgb_lanes,
        ),
    );
    let darker =
        _mm256_srli_epi16::<7>(_mm256_add_epi16(_mm256_mullo_epi16(rgb, t_neg), sixty_four));
    _mm256_or_si256(_mm256_and_si256(darker, rgb_lanes), alpha)
}
