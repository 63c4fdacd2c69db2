//! The per-pixel pass that puts a design on a product: for every canvas pixel that can show the
//! design, map it back into the design (homography or cylinder, shifted by the displacement
//! map), sample bilinearly in premultiplied alpha, light it, mask it and composite it over the
//! (already tinted) product. One pass, only over the rows and columns the design can reach, rows
//! in parallel with rayon.

use super::blend::{alpha, light_spread, over_spread, pack, scale, spread, Strengths};
use super::design::{fixed, Raster};
use super::warp::{convex_row_span, Cylinder, Homography};
use image::RgbaImage;
use rayon::prelude::*;

/// Per-pixel maps of the product, all of the canvas's size (`displacement` has 2 channels).
#[derive(Clone, Copy)]
pub struct Maps<'a> {
    pub mask: Option<&'a [u8]>,
    pub shading: Option<&'a [u8]>,
    pub highlight: Option<&'a [u8]>,
    pub displacement: Option<&'a [u8]>,
    /// Canvas pixels of shift for a displacement value of 255 (or 1).
    pub displacement_px: f32,
    pub strengths: Strengths,
}

/// Maps canvas pixels back to raster positions.
pub trait SourceMap: Sync {
    /// Rows `[y0, y1)` that can show the design.
    fn rows(&self) -> (usize, usize);
    /// Columns `[x0, x1)` of row `y` that can show the design.
    fn span(&self, y: usize) -> Option<(usize, usize)>;
    /// Fixed-point raster positions (see [`fixed`]) of the centres of pixels `x0..` of row `y`,
    /// one per slot of `xs`/`ys`, each moved by `shift` canvas pixels when given. Written as
    /// plain loops over slices so the compiler vectorises them.
    fn coords(
        &self,
        y: usize,
        x0: usize,
        shift: Option<(&[f32], &[f32])>,
        xs: &mut [i32],
        ys: &mut [i32],
    );
}

/// Raster pixel coordinates of print-area fractions `(u, v)`: `area` is where the raster's
/// picture lands (u0, v0, u1, v1), `inner` its size without the border.
fn area_to_raster(area: [f64; 4], inner: (usize, usize)) -> Homography {
    let (w, h) = (inner.0 as f64, inner.1 as f64);
    let (kx, ky) = (w / (area[2] - area[0]), h / (area[3] - area[1]));
    Homography::affine(kx, ky, 1.0 - area[0] * kx, 1.0 - area[1] * ky)
}

/// A perspective print area.
pub struct QuadMap {
    m: [f32; 9],
    poly: [(f64, f64); 4],
    margin: f64,
    size: (usize, usize),
}

impl QuadMap {
    /// `quad`: the print area's corners on the canvas; `area`/`inner`: the raster's placement;
    /// `margin`: extra pixels to scan (the displacement's reach). `None` for a degenerate quad.
    pub fn new(
        quad: &[[f64; 2]; 4],
        area: [f64; 4],
        inner: (usize, usize),
        margin: f64,
        size: (usize, usize),
    ) -> Option<QuadMap> {
        let to_canvas = Homography::square_to_quad(quad)?;
        let to_raster = area_to_raster(area, inner);
        let m = to_raster.after(&to_canvas.inverse()?);
        let back = to_canvas.after(&to_raster.inverse()?);
        let (w, h) = (inner.0 as f64 + 2.0, inner.1 as f64 + 2.0);
        let poly = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|(x, y)| back.apply(x, y));
        Some(QuadMap {
            m: m.0.map(|v| v as f32),
            poly,
            margin: margin + 1.0,
            size,
        })
    }
}

impl SourceMap for QuadMap {
    fn rows(&self) -> (usize, usize) {
        let lo = self.poly.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = self
            .poly
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max);
        clamp_range(lo - self.margin, hi + self.margin, self.size.1)
    }

    fn span(&self, y: usize) -> Option<(usize, usize)> {
        let yc = y as f64 + 0.5;
        let mut best: Option<(f64, f64)> = None;
        // Displacement can pull in design from rows up to `margin` away.
        for probe in [yc - self.margin, yc, yc + self.margin] {
            if let Some((a, b)) = convex_row_span(&self.poly, probe) {
                best = Some(best.map_or((a, b), |(x, z)| (x.min(a), z.max(b))));
            }
        }
        let (a, b) = best?;
        let (x0, x1) = clamp_range(a - self.margin, b + self.margin, self.size.0);
        (x0 < x1).then_some((x0, x1))
    }

    fn coords(
        &self,
        y: usize,
        x0: usize,
        shift: Option<(&[f32], &[f32])>,
        xs: &mut [i32],
        ys: &mut [i32],
    ) {
        let m = self.m;
        let (fx0, py0) = (x0 as f32 + 0.5, y as f32 + 0.5);
        let project = |px: f32, py: f32| {
            let w = 1.0 / (m[6] * px + m[7] * py + m[8]);
            (
                fixed((m[0] * px + m[1] * py + m[2]) * w),
                fixed((m[3] * px + m[4] * py + m[5]) * w),
            )
        };
        match shift {
            None => {
                for (k, (xo, yo)) in xs.iter_mut().zip(ys.iter_mut()).enumerate() {
                    (*xo, *yo) = project(fx0 + k as i32 as f32, py0);
                }
            }
            Some((dx, dy)) => {
                let it = xs.iter_mut().zip(ys.iter_mut()).zip(dx.iter().zip(dy));
                for (k, ((xo, yo), (dx, dy))) in it.enumerate() {
                    (*xo, *yo) = project(fx0 + k as i32 as f32 + dx, py0 + dy);
                }
            }
        }
    }
}

/// A cylindrical print area, with per-column tables (one `asin` per column, not per pixel).
pub struct CylinderMap {
    col_x: Vec<f32>,
    col_dx: Vec<f32>,
    col_off: Vec<f32>,
    kv: f32,
    cols: (usize, usize),
    rows: (usize, usize),
}

impl CylinderMap {
    /// Same arguments as [`QuadMap::new`], for a cylinder.
    pub fn new(
        c: &Cylinder,
        area: [f64; 4],
        inner: (usize, usize),
        margin: f64,
        size: (usize, usize),
    ) -> CylinderMap {
        let r = area_to_raster(area, inner).0;
        let (kx, ox, ky, oy) = (r[0], r[2], r[4], r[5]);
        let kv = ky / (c.bottom - c.top);
        let n = size.0;
        let (mut col_x, mut col_dx, mut col_off) = (vec![f32::NAN; n], vec![0.0; n], vec![0.0; n]);
        for x in 0..n {
            let s = (x as f64 + 0.5 - c.center_x) / c.radius;
            if !(-1.0..=1.0).contains(&s) {
                continue;
            }
            let t = s.asin();
            col_x[x] = (((t / c.arc + 0.5) * kx) + ox) as f32;
            col_dx[x] = (kx / (c.arc * c.radius * t.cos().max(0.05))) as f32;
            col_off[x] = ((c.ellipse * (1.0 - t.cos()) - c.top) * kv + oy) as f32;
        }
        // Columns and rows the raster (with its border) can reach.
        let (u0, u1) = ((-ox) / kx, (inner.0 as f64 + 2.0 - ox) / kx);
        let (x0, _) = c.to_canvas(u0.max(0.0), 0.0);
        let (x1, _) = c.to_canvas(u1.min(1.0), 0.0);
        let (v0, v1) = ((-oy) / ky, (inner.1 as f64 + 2.0 - oy) / ky);
        let (_, top) = c.to_canvas(0.0, v0.max(0.0));
        let (_, bottom) = c.to_canvas(0.5, v1.min(1.0));
        let m = margin + 1.0;
        CylinderMap {
            col_x,
            col_dx,
            col_off,
            kv: kv as f32,
            cols: clamp_range(x0 - m, x1 + m, size.0),
            rows: clamp_range(top - m, bottom + m, size.1),
        }
    }
}

impl SourceMap for CylinderMap {
    fn rows(&self) -> (usize, usize) {
        self.rows
    }

    fn span(&self, _y: usize) -> Option<(usize, usize)> {
        (self.cols.0 < self.cols.1).then_some(self.cols)
    }

    fn coords(
        &self,
        y: usize,
        x0: usize,
        shift: Option<(&[f32], &[f32])>,
        xs: &mut [i32],
        ys: &mut [i32],
    ) {
        let n = xs.len();
        let (cx, cd, co) = (
            &self.col_x[x0..x0 + n],
            &self.col_dx[x0..x0 + n],
            &self.col_off[x0..x0 + n],
        );
        let py = (y as f32 + 0.5) * self.kv;
        match shift {
            None => {
                for k in 0..n {
                    xs[k] = fixed(cx[k]);
                    ys[k] = fixed(py + co[k]);
                }
            }
            Some((dx, dy)) => {
                for k in 0..n {
                    xs[k] = fixed(cx[k] + dx[k] * cd[k]);
                    ys[k] = fixed(py + dy[k] * self.kv + co[k]);
                }
            }
        }
    }
}

fn clamp_range(lo: f64, hi: f64, n: usize) -> (usize, usize) {
    let lo = lo.floor().clamp(0.0, n as f64) as usize;
    let hi = hi.ceil().clamp(0.0, n as f64) as usize;
    (lo, hi.max(lo))
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
pub fn composite<M: SourceMap>(dst: &mut RgbaImage, raster: &Raster, map: &M, maps: &Maps) {
    composite_with(dst, raster, map, maps, simd_available());
}

/// Whether the four-pixel AVX2 pass (`kernel_avx2.rs`) can run here.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        super::kernel_avx2::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`composite`], choosing the pass: `simd` false forces the scalar one (tests, benchmarks).
pub fn composite_with<M: SourceMap>(
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
    super::kernel_avx2::composite_opaque(pixels, xs, ys, raster, maps, first)
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_opaque(_: &mut [u8], _: &[i32], _: &[i32], _: &Raster, _: &Maps, _: usize) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quad_map_print_area_corners_map_to_raster_corners() {
        let quad = [[10.0, 20.0], [90.0, 25.0], [95.0, 80.0], [5.0, 90.0]];
        let map = QuadMap::new(&quad, [0.0, 0.0, 1.0, 1.0], (50, 40), 0.0, (100, 100)).unwrap();
        let m = Homography(map.m.map(f64::from));
        let (x, y) = m.apply(90.0, 25.0);
        assert!((x - 51.0).abs() < 1e-3 && (y - 1.0).abs() < 1e-3, "{x},{y}");
    }

    #[test]
    fn quad_map_span_covers_the_quad_row() {
        let quad = [[10.0, 10.0], [90.0, 10.0], [90.0, 90.0], [10.0, 90.0]];
        let map = QuadMap::new(&quad, [0.0, 0.0, 1.0, 1.0], (80, 80), 0.0, (100, 100)).unwrap();
        let (a, b) = map.span(50).unwrap();
        assert!((7..=10).contains(&a) && (90..=93).contains(&b), "{a}..{b}");
        assert!(map.span(95).is_none());
    }

    #[test]
    fn cylinder_map_centre_column_is_design_centre() {
        let c = Cylinder {
            center_x: 100.5,
            radius: 80.0,
            top: 50.0,
            bottom: 150.0,
            arc: 2.0,
            ellipse: 10.0,
        };
        let map = CylinderMap::new(&c, [0.0, 0.0, 1.0, 1.0], (60, 60), 0.0, (200, 200));
        let (mut xs, mut ys) = ([0; 1], [0; 1]);
        map.coords(100, 100, None, &mut xs, &mut ys);
        assert_eq!((xs[0], ys[0]), (fixed(31.0), fixed(31.3)));
    }
}

#[cfg(test)]
mod simd_tests {
    use super::*;
    use crate::mockup::blend::Strengths;
    use crate::mockup::design::rasterize;
    use rand::{Rng, SeedableRng};

    /// A design with flat areas, gradients and (partly) clear pixels.
    fn design(rng: &mut rand_chacha::ChaCha8Rng, w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let a = match (x / 7 + y / 5) % 4 {
                0 => 0,
                1 => 255,
                _ => rng.random_range(0..=255u8),
            };
            image::Rgba([(x * 3) as u8, rng.random(), (y * 5) as u8, a])
        })
    }

    fn random_map(rng: &mut rand_chacha::ChaCha8Rng, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.random()).collect()
    }

    /// The AVX2 pass gives byte for byte what the scalar pass gives: with and without mask,
    /// lighting and displacement, on a perspective quad and a cylinder, rows of every length
    /// modulo four, and positions outside the raster.
    #[test]
    fn simd_pass_matches_the_scalar_pass_byte_for_byte() {
        if !simd_available() {
            eprintln!("no AVX2 on this CPU: only the scalar pass runs here");
            return;
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let (w, h) = (203usize, 157usize);
        for case in 0..8 {
            let d = design(&mut rng, 61 + case, 47);
            let raster = rasterize(&d, [0, 0, d.width(), d.height()], (120.0, 90.0));
            let (mask, shading, highlight, disp) = (
                random_map(&mut rng, w * h),
                random_map(&mut rng, w * h),
                random_map(&mut rng, w * h),
                random_map(&mut rng, 2 * w * h),
            );
            let maps = Maps {
                mask: (case & 1 == 1).then_some(mask.as_slice()),
                shading: (case & 2 == 2).then_some(shading.as_slice()),
                highlight: (case & 2 == 2).then_some(highlight.as_slice()),
                displacement: (case & 4 == 4).then_some(disp.as_slice()),
                displacement_px: 3.0,
                strengths: Strengths::new(0.7, 0.5),
            };
            let canvas = RgbaImage::from_fn(w as u32, h as u32, |x, y| {
                image::Rgba([(x * 7) as u8, (y * 3) as u8, rng.random(), 255])
            });
            let quad = [[12.5, 9.0], [190.0, 20.0], [180.0, 150.0], [3.0, 140.0]];
            let quad_map =
                QuadMap::new(&quad, [0.05, 0.1, 0.95, 0.9], raster.inner(), 3.0, (w, h)).unwrap();
            let cylinder = Cylinder {
                center_x: 101.0,
                radius: 80.0,
                top: 20.0,
                bottom: 140.0,
                arc: 2.0,
                ellipse: 8.0,
            };
            let cyl_map =
                CylinderMap::new(&cylinder, [0.0, 0.0, 1.0, 1.0], raster.inner(), 3.0, (w, h));
            let run = |simd: bool, quad: bool| {
                let mut out = canvas.clone();
                if quad {
                    composite_with(&mut out, &raster, &quad_map, &maps, simd);
                } else {
                    composite_with(&mut out, &raster, &cyl_map, &maps, simd);
                }
                out
            };
            for quad in [true, false] {
                let (scalar, simd) = (run(false, quad), run(true, quad));
                assert_ne!(scalar, canvas, "case {case}: the design was drawn");
                assert!(
                    scalar == simd,
                    "case {case} (quad {quad}): the AVX2 pass differs from the scalar pass"
                );
            }
        }
    }
}
