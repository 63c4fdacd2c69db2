//! Geometry of a print area: the projective map of a flat rectangle onto a quad (homography, in
//! closed form after Heckbert 1989) and the cylinder map used for mugs. Pure maths on `f64`; the
//! per-pixel kernels that use these maps live in `kernel/`.

/// A 3x3 projective transform, row-major, acting on column vectors `[x, y, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Homography(pub [f64; 9]);

impl Homography {
    /// Maps the unit square's corners (0,0), (1,0), (1,1), (0,1) onto `q[0..4]` (top-left,
    /// top-right, bottom-right, bottom-left). `None` when the quad is degenerate.
    pub(crate) fn square_to_quad(q: &[[f64; 2]; 4]) -> Option<Homography> {
        let [[x0, y0], [x1, y1], [x2, y2], [x3, y3]] = *q;
        let (sx, sy) = (x0 - x1 + x2 - x3, y0 - y1 + y2 - y3);
        let (g, h) = if sx.abs() < 1e-12 && sy.abs() < 1e-12 {
            (0.0, 0.0)
        } else {
            let (dx1, dx2, dy1, dy2) = (x1 - x2, x3 - x2, y1 - y2, y3 - y2);
            let det = dx1 * dy2 - dx2 * dy1;
            if det.abs() < 1e-12 {
                return None;
            }
            ((sx * dy2 - dx2 * sy) / det, (dx1 * sy - sx * dy1) / det)
        };
        let m = Homography([
            x1 - x0 + g * x1,
            x3 - x0 + h * x3,
            x0,
            y1 - y0 + g * y1,
            y3 - y0 + h * y3,
            y0,
            g,
            h,
            1.0,
        ]);
        (m.det().abs() > 1e-12).then_some(m)
    }

    /// Maps the rectangle `[0, w] x [0, h]` onto the quad (corners in the same order).
    pub fn rect_to_quad(w: f64, h: f64, q: &[[f64; 2]; 4]) -> Option<Homography> {
        let scale = Homography([1.0 / w, 0.0, 0.0, 0.0, 1.0 / h, 0.0, 0.0, 0.0, 1.0]);
        Some(Homography::square_to_quad(q)?.after(&scale))
    }

    /// A scale and translation: `(x, y) -> (sx * x + tx, sy * y + ty)`.
    pub(crate) fn affine(sx: f64, sy: f64, tx: f64, ty: f64) -> Homography {
        Homography([sx, 0.0, tx, 0.0, sy, ty, 0.0, 0.0, 1.0])
    }

    /// `self` applied after `first`: the product `self * first`.
    pub fn after(&self, first: &Homography) -> Homography {
        let (a, b) = (&self.0, &first.0);
        let mut m = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                m[r * 3 + c] = (0..3).map(|k| a[r * 3 + k] * b[k * 3 + c]).sum();
            }
        }
        Homography(m)
    }

    fn det(&self) -> f64 {
        let m = &self.0;
        m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6])
            + m[2] * (m[3] * m[7] - m[4] * m[6])
    }

    /// The inverse map (adjugate over determinant); `None` when singular.
    pub(crate) fn inverse(&self) -> Option<Homography> {
        let m = &self.0;
        let det = self.det();
        if det.abs() < 1e-15 {
            return None;
        }
        let adj = [
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ];
        Some(Homography(adj.map(|v| v / det)))
    }

    /// Maps one point. Points on the horizon (w = 0) land at infinity.
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        let w = m[6] * x + m[7] * y + m[8];
        (
            (m[0] * x + m[1] * y + m[2]) / w,
            (m[3] * x + m[4] * y + m[5]) / w,
        )
    }
}

/// The front of a vertical cylinder (a mug) seen from slightly above, in canvas pixels.
///
/// The print area spans `arc` radians around the axis, centred on the line facing the viewer,
/// and runs from `top` to `bottom` on that centre line. Seen from above, a horizontal line on the
/// surface is an ellipse arc: a point at angle `t` from the front sits `ellipse * (1 - cos t)`
/// pixels higher than the same line at the front.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cylinder {
    pub center_x: f64,
    pub radius: f64,
    pub top: f64,
    pub bottom: f64,
    pub arc: f64,
    pub(crate) ellipse: f64,
}

impl Cylinder {
    /// Canvas point of the print-area point `(u, v)` in `[0, 1]^2`.
    pub(crate) fn to_canvas(self, u: f64, v: f64) -> (f64, f64) {
        let t = (u - 0.5) * self.arc;
        let x = self.center_x + self.radius * t.sin();
        let y = self.top + v * (self.bottom - self.top) - self.ellipse * (1.0 - t.cos());
        (x, y)
    }

    /// Print-area coordinates `(u, v)` of the canvas column `x`'s angle, or `None` where the
    /// column misses the cylinder. `v` is not range-checked.
    #[cfg(test)]
    pub(crate) fn to_print(self, x: f64, y: f64) -> Option<(f64, f64)> {
        let s = (x - self.center_x) / self.radius;
        if !(-1.0..=1.0).contains(&s) {
            return None;
        }
        let t = s.asin();
        let u = t / self.arc + 0.5;
        let v = (y + self.ellipse * (1.0 - t.cos()) - self.top) / (self.bottom - self.top);
        Some((u, v))
    }

    /// Bounding box of the print area: `(x0, y0, x1, y1)`.
    pub(crate) fn bounds(&self) -> (f64, f64, f64, f64) {
        let half = (self.arc / 2.0).sin() * self.radius;
        let rise = self.ellipse * (1.0 - (self.arc / 2.0).cos());
        (
            self.center_x - half,
            self.top - rise,
            self.center_x + half,
            self.bottom,
        )
    }

    /// The same cylinder on a canvas scaled by `k`.
    pub(crate) fn scaled(&self, k: f64) -> Cylinder {
        Cylinder {
            center_x: self.center_x * k,
            radius: self.radius * k,
            top: self.top * k,
            bottom: self.bottom * k,
            arc: self.arc,
            ellipse: self.ellipse * k,
        }
    }
}

/// The x-interval where the horizontal line at `y` crosses a convex polygon, if it does.
pub(super) fn convex_row_span(poly: &[(f64, f64)], y: f64) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for i in 0..poly.len() {
        let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
        let (ymin, ymax) = (a.1.min(b.1), a.1.max(b.1));
        if y < ymin || y > ymax {
            continue;
        }
        let x = if (b.1 - a.1).abs() < 1e-12 {
            lo = lo.min(a.0.min(b.0));
            hi = hi.max(a.0.max(b.0));
            continue;
        } else {
            a.0 + (y - a.1) * (b.0 - a.0) / (b.1 - a.1)
        };
        lo = lo.min(x);
        hi = hi.max(x);
    }
    (lo <= hi).then_some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUAD: [[f64; 2]; 4] = [
        [100.0, 120.0],
        [900.0, 80.0],
        [950.0, 1000.0],
        [60.0, 940.0],
    ];

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6
    }

    #[test]
    fn rect_to_quad_corners_land_on_quad() {
        let h = Homography::rect_to_quad(300.0, 400.0, &QUAD).unwrap();
        let corners = [(0.0, 0.0), (300.0, 0.0), (300.0, 400.0), (0.0, 400.0)];
        for (c, q) in corners.iter().zip(QUAD) {
            assert!(close(h.apply(c.0, c.1), (q[0], q[1])), "{c:?}");
        }
    }

    #[test]
    fn inverse_of_homography_round_trips_points() {
        let h = Homography::rect_to_quad(300.0, 400.0, &QUAD).unwrap();
        let inv = h.inverse().unwrap();
        for p in [(10.0, 20.0), (150.0, 200.0), (299.0, 5.0)] {
            let q = h.apply(p.0, p.1);
            assert!(close(inv.apply(q.0, q.1), p));
        }
    }

    #[test]
    fn square_to_quad_parallelogram_is_affine() {
        let q = [[0.0, 0.0], [10.0, 0.0], [12.0, 5.0], [2.0, 5.0]];
        let h = Homography::square_to_quad(&q).unwrap();
        assert_eq!((h.0[6], h.0[7]), (0.0, 0.0));
    }

    #[test]
    fn square_to_quad_collinear_points_is_none() {
        let q = [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]];
        assert!(Homography::square_to_quad(&q).is_none());
    }

    #[test]
    fn cylinder_centre_column_maps_to_middle_of_design() {
        let c = Cylinder {
            center_x: 500.0,
            radius: 300.0,
            top: 200.0,
            bottom: 800.0,
            arc: 2.5,
            ellipse: 40.0,
        };
        let (u, v) = c.to_print(500.0, 500.0).unwrap();
        assert!((u - 0.5).abs() < 1e-12 && (v - 0.5).abs() < 1e-12);
        let back = c.to_canvas(0.8, 0.3);
        let (u, v) = c.to_print(back.0, back.1).unwrap();
        assert!((u - 0.8).abs() < 1e-9 && (v - 0.3).abs() < 1e-9);
        assert!(c.to_print(100.0, 500.0).is_none());
    }

    #[test]
    fn convex_row_span_crosses_triangle() {
        let tri = [(0.0, 0.0), (10.0, 10.0), (-10.0, 10.0)];
        let (a, b) = convex_row_span(&tri, 5.0).unwrap();
        assert!((a + 5.0).abs() < 1e-12 && (b - 5.0).abs() < 1e-12);
        assert!(convex_row_span(&tri, 11.0).is_none());
    }
}
