//! Shapes for the built-in products: paths of lines and quadratic and cubic Béziers (flattened
//! as they are added), filled with exact-area anti-aliasing by signed-area accumulation (as in
//! font-rs) within their bounding box, and strokes of polylines.

use super::kit::Plane;
use rayon::prelude::*;

/// A shape made of closed polygons (curves are flattened as they are added).
#[derive(Debug, Clone, Default)]
pub(super) struct Path {
    contours: Vec<Vec<(f32, f32)>>,
}

impl Path {
    pub(super) fn new() -> Path {
        Path::default()
    }

    /// Start a new contour.
    pub(super) fn move_to(&mut self, x: f32, y: f32) -> &mut Path {
        self.contours.push(vec![(x, y)]);
        self
    }

    fn last(&self) -> (f32, f32) {
        self.contours
            .last()
            .and_then(|c| c.last())
            .copied()
            .unwrap_or((0.0, 0.0))
    }

    fn push(&mut self, p: (f32, f32)) {
        match self.contours.last_mut() {
            Some(c) => c.push(p),
            None => self.contours.push(vec![p]),
        }
    }

    pub(super) fn line_to(&mut self, x: f32, y: f32) -> &mut Path {
        self.push((x, y));
        self
    }

    /// Quadratic Bézier to `(x, y)` through control `(cx, cy)`.
    pub(super) fn quad_to(&mut self, cx: f32, cy: f32, x: f32, y: f32) -> &mut Path {
        let p0 = self.last();
        let n = segments(p0, (x, y), (cx, cy));
        for i in 1..=n {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            self.push((
                u * u * p0.0 + 2.0 * u * t * cx + t * t * x,
                u * u * p0.1 + 2.0 * u * t * cy + t * t * y,
            ));
        }
        self
    }

    /// Cubic Bézier to `p` through controls `c1`, `c2`.
    pub(super) fn cubic_to(&mut self, c1: (f32, f32), c2: (f32, f32), p: (f32, f32)) -> &mut Path {
        let p0 = self.last();
        let n = segments(p0, p, c1) + segments(p0, p, c2);
        for i in 1..=n {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            let (a, b, c, d) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            self.push((
                a * p0.0 + b * c1.0 + c * c2.0 + d * p.0,
                a * p0.1 + b * c1.1 + c * c2.1 + d * p.1,
            ));
        }
        self
    }

    /// Append every contour of `other`.
    pub(super) fn extend(&mut self, other: &Path) -> &mut Path {
        self.contours.extend(other.contours.iter().cloned());
        self
    }

    /// An axis-aligned ellipse.
    pub(super) fn ellipse(cx: f32, cy: f32, rx: f32, ry: f32) -> Path {
        let n = (((rx + ry) * 0.8) as usize).clamp(32, 1000);
        let mut p = Path::new();
        p.contours.push(
            (0..n)
                .map(|i| {
                    let t = i as f32 / n as f32 * std::f32::consts::TAU;
                    (cx + rx * t.cos(), cy + ry * t.sin())
                })
                .collect(),
        );
        p
    }

    /// A rectangle with corners rounded by `r`.
    pub(super) fn rounded_rect(x0: f32, y0: f32, x1: f32, y1: f32, r: f32) -> Path {
        let r = r.min((x1 - x0) / 2.0).min((y1 - y0) / 2.0);
        let mut p = Path::new();
        p.move_to(x0 + r, y0)
            .line_to(x1 - r, y0)
            .quad_to(x1, y0, x1, y0 + r)
            .line_to(x1, y1 - r)
            .quad_to(x1, y1, x1 - r, y1)
            .line_to(x0 + r, y1)
            .quad_to(x0, y1, x0, y1 - r)
            .line_to(x0, y0 + r)
            .quad_to(x0, y0, x0 + r, y0);
        p
    }

    /// A closed polygon.
    pub(super) fn polygon(points: &[(f32, f32)]) -> Path {
        Path {
            contours: vec![points.to_vec()],
        }
    }

    /// The same path mirrored about the vertical line `x = axis`.
    pub(super) fn mirrored(&self, axis: f32) -> Path {
        Path {
            contours: self
                .contours
                .iter()
                .map(|c| c.iter().rev().map(|&(x, y)| (2.0 * axis - x, y)).collect())
                .collect(),
        }
    }

    /// The points of the last contour (for strokes along a curve).
    pub(super) fn points(&self) -> &[(f32, f32)] {
        self.contours.last().map_or(&[], Vec::as_slice)
    }

    /// Coverage (0..=1) on a `w x h` plane; overlapping contours add up, clamped to 1.
    pub(super) fn fill(&self, w: usize, h: usize) -> Plane {
        self.coverage(w, h).into_plane(w, h)
    }

    /// Coverage within the path's bounding box only (cheap for small shapes on big canvases).
    pub(super) fn coverage(&self, w: usize, h: usize) -> Coverage {
        let pts = self.contours.iter().flatten();
        let (mut lo, mut hi) = ((f32::MAX, f32::MAX), (f32::MIN, f32::MIN));
        for &(x, y) in pts {
            lo = (lo.0.min(x), lo.1.min(y));
            hi = (hi.0.max(x), hi.1.max(y));
        }
        let x0 = (lo.0.floor().max(0.0) as usize).min(w);
        let y0 = (lo.1.floor().max(0.0) as usize).min(h);
        let x1 = ((hi.0.ceil() + 2.0).max(0.0) as usize).min(w);
        let y1 = ((hi.1.ceil() + 1.0).max(0.0) as usize).min(h);
        let (bw, bh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
        let mut cov = Coverage {
            x0,
            y0,
            w: bw,
            h: bh,
            data: vec![0f32; bw * bh + bw + 4],
        };
        if bw < 2 || bh == 0 {
            cov.data.truncate(bw * bh);
            return cov;
        }
        let clamp = |p: (f32, f32)| {
            (
                (p.0 - x0 as f32).clamp(0.0, bw as f32 - 1.001),
                p.1 - y0 as f32,
            )
        };
        for c in &self.contours {
            for i in 0..c.len() {
                let (a, b) = (clamp(c[i]), clamp(c[(i + 1) % c.len()]));
                accumulate_line(&mut cov.data, bw, bh, a, b);
            }
        }
        cov.data.truncate(bw * bh);
        cov.data.par_chunks_mut(bw).for_each(|row| {
            let mut sum = 0.0;
            for v in row.iter_mut() {
                sum += *v;
                *v = sum.abs().min(1.0);
            }
        });
        cov
    }
}

/// Coverage of a path inside its bounding box `(x0, y0, w, h)` on a larger plane.
pub(super) struct Coverage {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
    pub data: Vec<f32>,
}

impl Coverage {
    /// Place on an empty `w x h` plane.
    pub(super) fn into_plane(self, w: usize, h: usize) -> Plane {
        let mut p = Plane::new(w, h, 0.0);
        self.apply(&mut p, |_, c| c);
        p
    }

    /// `p = f(p, coverage)` inside the bounding box.
    pub(super) fn apply(&self, p: &mut Plane, f: impl Fn(f32, f32) -> f32 + Sync) {
        if self.w == 0 {
            return;
        }
        let (x0, w) = (self.x0, self.w);
        p.data[self.y0 * p.w..(self.y0 + self.h) * p.w]
            .par_chunks_mut(p.w)
            .zip(self.data.par_chunks(w))
            .for_each(|(row, c)| {
                for (v, &c) in row[x0..x0 + w].iter_mut().zip(c) {
                    if c > 0.0 {
                        *v = f(*v, c);
                    }
                }
            });
    }
}

fn segments(a: (f32, f32), b: (f32, f32), c: (f32, f32)) -> usize {
    let len = (a.0 - c.0).hypot(a.1 - c.1) + (c.0 - b.0).hypot(c.1 - b.1);
    ((len / 6.0).ceil() as usize).clamp(4, 400)
}

/// Add the signed area a line contributes to each pixel of the rows it crosses (font-rs).
/// Each row's sum is zero outside a closed contour, so rows are accumulated independently.
fn accumulate_line(acc: &mut [f32], w: usize, h: usize, p0: (f32, f32), p1: (f32, f32)) {
    if (p0.1 - p1.1).abs() <= f32::EPSILON {
        return;
    }
    let (dir, p0, p1) = if p0.1 < p1.1 {
        (1.0, p0, p1)
    } else {
        (-1.0, p1, p0)
    };
    let dxdy = (p1.0 - p0.0) / (p1.1 - p0.1);
    let mut x = p0.0;
    if p0.1 < 0.0 {
        x -= p0.1 * dxdy;
    }
    let y_start = p0.1.max(0.0) as usize;
    let y_end = (p1.1.ceil().max(0.0) as usize).min(h);
    for y in y_start..y_end {
        let line = y * w;
        let dy = ((y + 1) as f32).min(p1.1) - (y as f32).max(p0.1);
        let xnext = x + dxdy * dy;
        let d = dy * dir;
        let (x0, x1) = if x < xnext { (x, xnext) } else { (xnext, x) };
        let x0f = x0.floor();
        let x0i = x0f as usize;
        let x1c = x1.ceil();
        let x1i = x1c as usize;
        if x1i <= x0i + 1 {
            let xm = 0.5 * (x + xnext) - x0f;
            acc[line + x0i] += d - d * xm;
            acc[line + x0i + 1] += d * xm;
        } else {
            let s = 1.0 / (x1 - x0);
            let fx0 = x0 - x0f;
            let a0 = 0.5 * s * (1.0 - fx0) * (1.0 - fx0);
            let fx1 = x1 - x1c + 1.0;
            let am = 0.5 * s * fx1 * fx1;
            acc[line + x0i] += d * a0;
            if x1i == x0i + 2 {
                acc[line + x0i + 1] += d * (1.0 - a0 - am);
            } else {
                let a1 = s * (1.5 - fx0);
                acc[line + x0i + 1] += d * (a1 - a0);
                for xi in x0i + 2..x1i - 1 {
                    acc[line + xi] += d * s;
                }
                let a2 = a1 + (x1i - x0i - 3) as f32 * s;
                acc[line + x1i - 1] += d * (1.0 - a2 - am);
            }
            acc[line + x1i] += d * am;
        }
        x = xnext;
    }
}

/// The outline of a polyline drawn with a pen `width` wide (butt ends, mitred joins).
pub(super) fn stroke(points: &[(f32, f32)], width: f32) -> Path {
    let n = points.len();
    if n < 2 {
        return Path::new();
    }
    let half = width / 2.0;
    let normal = |i: usize| {
        let (a, b) = (points[i.saturating_sub(1)], points[(i + 1).min(n - 1)]);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = dx.hypot(dy).max(1e-6);
        (-dy / len, dx / len)
    };
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    for (i, p) in points.iter().enumerate() {
        let (nx, ny) = normal(i);
        left.push((p.0 + nx * half, p.1 + ny * half));
        right.push((p.0 - nx * half, p.1 - ny * half));
    }
    left.extend(right.into_iter().rev());
    Path::polygon(&left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_rectangle_has_exact_area() {
        let p = Path::polygon(&[(2.25, 3.0), (10.75, 3.0), (10.75, 9.5), (2.25, 9.5)]);
        let c = p.fill(16, 16);
        let area: f32 = c.data.iter().sum();
        assert!((area - 8.5 * 6.5).abs() < 1e-3, "{area}");
        assert!((c.data[5 * 16 + 2] - 0.75).abs() < 1e-5);
    }

    #[test]
    fn fill_ellipse_area_matches_formula() {
        let c = Path::ellipse(50.0, 50.0, 30.0, 20.0).fill(100, 100);
        let area: f32 = c.data.iter().sum();
        let want = std::f32::consts::PI * 600.0;
        assert!((area - want).abs() / want < 0.01, "{area}");
    }

    #[test]
    fn stroke_of_a_line_covers_width_times_length() {
        let c = stroke(&[(10.0, 20.0), (50.0, 20.0)], 4.0).fill(64, 64);
        let area: f32 = c.data.iter().sum();
        assert!((area - 160.0).abs() < 0.5, "{area}");
    }
}
