//! The compositing pass of `kernel/mod.rs`, four pixels at a time with AVX2, for rows whose pixels
//! are all opaque (every product: the tinted product is opaque under the print area). It works
//! straight on the row's RGBA bytes: zero-extending 16 bytes spreads four pixels into the
//! 64-bit lanes of a 256-bit register (`0x00AA_00BB_00GG_00RR` each, as `blend::spread`), so the
//! 16-bit arithmetic of `blend.rs` runs unchanged on four pixels, and packing gives the bytes
//! back. The bilinear taps come from one 16-byte load per pixel and row; the mask and lighting
//! weights of four pixels are computed in 32-bit lanes and broadcast to each pixel's lanes; a
//! missing map (the identity step) is skipped. Every step rounds exactly as the scalar code
//! does, so the output is byte-identical (tested against the scalar pass). The branches of the
//! scalar pass become identities here: a clear sample, a zero mask and a flat 2x2 neighbourhood
//! give the same bytes through the full arithmetic, and an out-of-range sample is zeroed, which
//! leaves the destination as it was.
//!
//! Chosen over a SIMD crate: the kernel needs 128-bit lane shuffles and 16-bit multiplies,
//! which portable SIMD crates either lack on stable Rust or lower to the same intrinsics.

#![allow(unsafe_code)]

use super::Maps;
use crate::mockup::design::Raster;
use std::arch::x86_64::*;

/// Whether this CPU can run [`composite_opaque`] (checked once by the standard library).
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx2")
}

/// Composite the first `pixels.len() / 16 * 4` pixels of an opaque row in place; returns how
/// many were done. `pixels` are the row's RGBA bytes (every alpha 255), `xs`/`ys` the
/// fixed-point raster positions of its pixels, `first` the canvas index of its first pixel (for
/// the mask and lighting maps).
pub(super) fn composite_opaque(
    pixels: &mut [u8],
    xs: &[i32],
    ys: &[i32],
    raster: &Raster,
    maps: &Maps,
    first: usize,
) -> usize {
    assert!(available(), "composite_opaque needs AVX2");
    let n = pixels.len() / 4;
    assert!(xs.len() >= n && ys.len() >= n);
    assert!(raster.width >= 2 && raster.height >= 2);
    assert!(raster.data.len() >= raster.width * raster.height);
    // SAFETY: AVX2 is present (checked above); the raster's size by the asserts above, and each
    // group's slices (`pixels`, `xs`, `ys`, the maps) by slice indexing in `opaque_row`.
    unsafe { opaque_row(pixels, xs, ys, raster, maps, first) }
}

/// # Safety
///
/// The CPU must have AVX2, and `raster.data` must hold at least `raster.width *
/// raster.height` pixels with both sides at least 2 (as `composite_opaque` asserts). Slice
/// bounds (`pixels`, `xs`, `ys`, the maps) are checked by indexing.
#[target_feature(enable = "avx2")]
unsafe fn opaque_row(
    pixels: &mut [u8],
    xs: &[i32],
    ys: &[i32],
    raster: &Raster,
    maps: &Maps,
    first: usize,
) -> usize {
    let groups = pixels.len() / 16;
    let lit = maps.shading.is_some() || maps.highlight.is_some();
    for g in 0..groups {
        let k = g * 4;
        let i = first + k;
        // SAFETY: AVX2 and the raster's size are this function's own contract; the slices are
        // four long by indexing.
        let c = unsafe { sample4(raster, &xs[k..k + 4], &ys[k..k + 4]) };
        // A missing map is the neutral value, whose step is the identity: skipped.
        let c = if lit {
            let (f, t_pos, t_neg) = light_weights4(maps, i);
            light4(c, f, t_pos, t_neg)
        } else {
            c
        };
        let c = match maps.mask {
            Some(m) => scale4(c, mask4(&m[i..i + 4])),
            None => c,
        };
        let bytes = &mut pixels[k * 4..k * 4 + 16];
        // Zero-extending the bytes spreads four pixels into 64-bit lanes, and packing with
        // unsigned saturation (never reached: an opaque result is at most 255) packs them back.
        // SAFETY: `bytes` is 16 bytes long (indexed above); the load is unaligned.
        let d = _mm256_cvtepu8_epi16(unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) });
        let out = _mm256_add_epi16(c, scale4(d, inverse_alpha(c)));
        let packed = _mm_packus_epi16(
            _mm256_castsi256_si128(out),
            _mm256_extracti128_si256::<1>(out),
        );
        // SAFETY: `bytes` is 16 writable bytes (indexed above); the store is unaligned.
        unsafe { _mm_storeu_si128(bytes.as_mut_ptr().cast(), packed) };
    }
    groups * 4
}

/// Four bytes of a map as four 32-bit lanes.
#[target_feature(enable = "avx2")]
fn bytes4(m: &[u8]) -> __m128i {
    let word = i32::from_le_bytes([m[0], m[1], m[2], m[3]]);
    _mm_cvtepu8_epi32(_mm_cvtsi32_si128(word))
}

/// Four mask bytes, each in all four 16-bit lanes of its pixel.
#[target_feature(enable = "avx2")]
fn mask4(m: &[u8]) -> __m256i {
    per_pixel(bytes4(m))
}

/// Four 32-bit lanes (each 0..=255), each copied to all four 16-bit lanes of its pixel.
#[target_feature(enable = "avx2")]
fn per_pixel(v: __m128i) -> __m256i {
    broadcast_word0(_mm256_cvtepu32_epi64(v))
}

/// The multiply and highlight weights of `blend::light_spread` for pixels `i..i + 4`: `f`, and
/// the highlight step split into its screening (`t_pos`, 0 = none) and darkening (`t_neg`, 128 =
/// none) halves, as `light4` takes them. A missing map is its neutral value (255, 128).
#[target_feature(enable = "avx2")]
fn light_weights4(maps: &Maps, i: usize) -> (__m256i, __m256i, __m256i) {
    let s = maps.strengths;
    let shade = maps
        .shading
        .map_or(_mm_set1_epi32(255), |m| bytes4(&m[i..i + 4]));
    let high = maps
        .highlight
        .map_or(_mm_set1_epi32(128), |m| bytes4(&m[i..i + 4]));
    // f = 255 - ((shading * (255 - shade)) >> 8)
    let dark = _mm_mullo_epi32(
        _mm_set1_epi32(s.shading as i32),
        _mm_sub_epi32(_mm_set1_epi32(255), shade),
    );
    let f = _mm_sub_epi32(_mm_set1_epi32(255), _mm_srli_epi32::<8>(dark));
    // t = ((high - 128) * highlight) >> 8, arithmetic as in the scalar code.
    let t = _mm_srai_epi32::<8>(_mm_mullo_epi32(
        _mm_sub_epi32(high, _mm_set1_epi32(128)),
        _mm_set1_epi32(s.highlight as i32),
    ));
    let zero = _mm_setzero_si128();
    let t_pos = _mm_max_epi32(t, zero);
    let t_neg = _mm_add_epi32(_mm_set1_epi32(128), _mm_min_epi32(t, zero));
    (per_pixel(f), per_pixel(t_pos), per_pixel(t_neg))
}

/// Bilinear samples of four pixels (`blend::lerp` twice across, once down); zero where a
/// position falls outside the raster.
///
/// # Safety
///
/// The CPU must have AVX2; `xs` and `ys` must be at least four long; `raster.data` must hold
/// at least `raster.width * raster.height` pixels with both sides at least 2 (every tap then
/// lies inside it: out-of-range positions read pixel 0 and are zeroed).
#[target_feature(enable = "avx2")]
unsafe fn sample4(raster: &Raster, xs: &[i32], ys: &[i32]) -> __m256i {
    let (w, h) = (raster.width as i32, raster.height as i32);
    // SAFETY: `xs` and `ys` hold at least four `i32`s (16 bytes) by the contract above.
    let xs = unsafe { _mm_loadu_si128(xs.as_ptr().cast()) };
    // SAFETY: as for `xs`.
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
    // SAFETY: `at` is four `i32`s, 16 writable bytes; the store is unaligned.
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
