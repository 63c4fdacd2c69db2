//! Where each canvas pixel of a print area comes from in the design raster: a perspective quad
//! (`QuadMap`, a homography) or a mug's cylinder (`CylinderMap`), with the rows and spans that
//! can show the design and the displacement map's shift applied to the coordinates.

use crate::mockup::design::fixed;
use crate::mockup::warp::{convex_row_span, Cylinder, Homography};

/// Maps canvas pixels back to raster positions.
pub(crate) trait SourceMap: Sync {
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
pub(crate) struct QuadMap {
    m: [f32; 9],
    poly: [(f64, f64); 4],
    margin: f64,
    size: (usize, usize),
}

impl QuadMap {
    /// `quad`: the print area's corners on the canvas; `area`/`inner`: the raster's placement;
    /// `margin`: extra pixels to scan (the displacement's reach). `None` for a degenerate quad.
    pub(crate) fn new(
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
pub(crate) struct CylinderMap {
    col_x: Vec<f32>,
    col_dx: Vec<f32>,
    col_off: Vec<f32>,
    kv: f32,
    cols: (usize, usize),
    rows: (usize, usize),
}

impl CylinderMap {
    /// Same arguments as [`QuadMap::new`], for a cylinder.
    pub(crate) fn new(
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
