//! The per-pixel pass that puts a design on a product: for every canvas pixel that can show the
//! design, map it back into the design (homography or cylinder, shifted by the displacement
//! map), sample bilinearly in premultiplied alpha, light it, mask it and composite it over the
//! (already tinted) product. One pass, only over the rows and columns the design can reach, rows
//! in parallel with rayon. `maps` maps canvas pixels back into the design (quad, cylinder);
//! `avx2` is the four-pixels-at-a-time twin of the compositing step, byte-identical to it.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod maps;

pub(super) use maps::{CylinderMap, QuadMap, SourceMap};

use super::blend::{alpha, light_spread, over_spread, pack, scale, spread, Strengths};
use super::design::Raster;
use image::RgbaImage;
use rayon::prelude::*;

/// Per-pixel maps of the product, all of the canvas's size (`displacement` has 2 channels).
#[derive(Clone, Copy)]
pub(super) struct Maps<'a> {
    pub mask: Option<&'a [u8]>,
    pub shading: Option<&'a [u8]>,
    pub highlight: Option<&'a [u8]>,
    pub displacement: Option<&'a [u8]>,
    /// Canvas pixels of shift for a displacement value of 255 (or 1).
    pub displacement_px: f32,
    pub(crate) strengths: Strengths,
}

/// Scratch space of one row.
#[derive(Default)]
struct RowBuffers {
    xs: Vec<i32>,
    ys: Vec<i32>,
    dx: Vec<f32>,
    dy: Vec<f32>,
    /// The destination pixels the scalar pass composites, spread into lanes.
    dst: Vec<u64>,
}

/// Warp `raster` through `map` and composite it onto `dst` (with the AVX2 pass where the CPU
/// has it; the bytes are the same either way).
pub(super) fn composite<M: SourceMap>(dst: &mut RgbaImage, raster: &Raster, map: &M, maps: &Maps) {
    composite_with(dst, raster, map, maps, simd_available());
}

/// Whether the four-pixel AVX2 pass (`avx2.rs`) can run here.
pub(super) fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`composite`], choosing the pass: `simd` false forces the scalar one (tests, benchmarks).
pub(super) fn composite_with<M: SourceMap>(
    dst: &mut RgbaImage,
    raster: &Raster,
    map: &M,
    maps: &Maps,
    simd: bool,
) {
    let pass = Pass {
        raster,
        map,
        maps,
        simd: simd && simd_available(),
    };
    let width = dst.width() as usize;
    let (y0, y1) = map.rows();
    if y0 >= y1 {
        return;
    }
    (**dst)[y0 * width * 4..y1 * width * 4]
        .par_chunks_mut(width * 4)
        .enumerate()
        .for_each_init(RowBuffers::default, |buf, (i, row)| {
            composite_row(row, y0 + i, width, &pass, buf)
        });
}

/// What every row of one compositing pass reads.
struct Pass<'a, M> {
    raster: &'a Raster,
    map: &'a M,
    maps: &'a Maps<'a>,
    /// Run the AVX2 pass on opaque rows.
    simd: bool,
}

fn composite_row<M: SourceMap>(
    row: &mut [u8],
    y: usize,
    width: usize,
    pass: &Pass<'_, M>,
    buf: &mut RowBuffers,
) {
    let (raster, map, maps, simd) = (pass.raster, pass.map, pass.maps, pass.simd);
    let Some((x0, x1)) = map.span(y) else { return };
    let (n, base) = (x1 - x0, y * width);
    buf.xs.resize(n, 0);
    buf.ys.resize(n, 0);
    let shift = match maps.displacement {
        Some(d) => {
            let k = maps.displacement_px / 127.0;
            let d = &d[2 * (base + x0)..2 * (base + x1)];
            buf.dx.clear();
            buf.dy.clear();
            buf.dx
                .extend(d.chunks_exact(2).map(|p| (f32::from(p[0]) - 128.0) * k));
            buf.dy
                .extend(d.chunks_exact(2).map(|p| (f32::from(p[1]) - 128.0) * k));
            Some((buf.dx.as_slice(), buf.dy.as_slice()))
        }
        None => None,
    };
    map.coords(y, x0, shift, &mut buf.xs, &mut buf.ys);
    let lit = maps.shading.is_some() || maps.highlight.is_some();
    let pixels = &mut row[x0 * 4..x1 * 4];
    let opaque = pixels.chunks_exact(4).fold(255, |a, p| a & p[3]) == 255;
    // Opaque rows: four pixels at a time, straight on the bytes, where the CPU allows; the
    // rest (all of the row without it) below.
    let done = if opaque && simd {
        simd_opaque(pixels, &buf.xs, &buf.ys, raster, maps, base + x0)
    } else {
        0
    };
    let rest = &mut pixels[done * 4..];
    // Composite in lanes: spreading and packing whole rows vectorises, per pixel it would not.
    buf.dst.clear();
    buf.dst.extend(
        rest.chunks_exact(4)
            .map(|p| spread(u32::from_le_bytes([p[0], p[1], p[2], p[3]]))),
    );
    for (k, d) in buf.dst.iter_mut().enumerate() {
        let k = done + k;
        let i = base + x0 + k;
        let m = maps.mask.map_or(255, |m| m[i]);
        if m == 0 {
            continue;
        }
        let Some(mut c) = raster.sample_fixed(buf.xs[k], buf.ys[k]) else {
            continue;
        };
        if alpha(c) == 0 {
            continue;
        }
        if lit {
            let shade = maps.shading.map_or(255, |s| s[i]);
            let high = maps.highlight.map_or(128, |h| h[i]);
            c = light_spread(c, shade, high, maps.strengths);
        }
        if m != 255 {
            c = scale(c, u32::from(m));
        }
        if opaque {
            *d = c + scale(*d, 255 - alpha(c));
        } else {
            let mut p = pack(*d).to_le_bytes();
            over_spread(&mut p, c);
            *d = spread(u32::from_le_bytes(p));
        }
    }
    for (p, &d) in rest.chunks_exact_mut(4).zip(&buf.dst) {
        p.copy_from_slice(&pack(d).to_le_bytes());
    }
}

#[cfg(target_arch = "x86_64")]
fn simd_opaque(
    pixels: &mut [u8],
    xs: &[i32],
    ys: &[i32],
    raster: &Raster,
    maps: &Maps,
    first: usize,
) -> usize {
    avx2::composite_opaque(pixels, xs, ys, raster, maps, first)
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_opaque(_: &mut [u8], _: &[i32], _: &[i32], _: &Raster, _: &Maps, _: usize) -> usize {
    0
}

#[cfg(test)]
mod tests;
