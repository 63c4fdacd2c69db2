//! Binary masks at print resolution and the morphology prepress needs: exact Euclidean
//! distances (dilate and choke by a radius in pixels), connected parts, and removing specks and
//! pinholes below an area. Pure CPU over in-memory buffers; rows run in parallel on rayon.

use image::RgbaImage;
use rayon::prelude::*;

/// Alpha at or above this is "opaque" for every mask prepress derives from an image.
pub(crate) const OPAQUE_FROM: u8 = 128;

/// A width × height grid of booleans, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mask {
    pub width: u32,
    pub height: u32,
    pub bits: Vec<bool>,
}

/// The smallest rectangle holding every set pixel: `x0, y0` inclusive, `x1, y1` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Mask {
    #[cfg(test)]
    pub(crate) fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            bits: vec![false; width as usize * height as usize],
        }
    }

    /// Pixels whose alpha is at least [`OPAQUE_FROM`].
    pub(crate) fn opaque(img: &RgbaImage) -> Mask {
        Mask {
            width: img.width(),
            height: img.height(),
            bits: img.pixels().map(|p| p.0[3] >= OPAQUE_FROM).collect(),
        }
    }

    pub(crate) fn get(&self, x: u32, y: u32) -> bool {
        self.bits[y as usize * self.width as usize + x as usize]
    }

    pub(crate) fn count(&self) -> u64 {
        self.bits.iter().filter(|b| **b).count() as u64
    }

    pub(crate) fn is_empty(&self) -> bool {
        !self.bits.iter().any(|b| *b)
    }

    /// Set pixels in both masks.
    #[cfg(test)]
    pub(crate) fn and(&self, other: &Mask) -> Mask {
        let bits = self.bits.iter().zip(&other.bits).map(|(a, b)| *a && *b);
        Mask {
            width: self.width,
            height: self.height,
            bits: bits.collect(),
        }
    }

    pub(crate) fn bounds(&self) -> Option<Bounds> {
        let w = self.width as usize;
        let mut b: Option<Bounds> = None;
        for (y, row) in self.bits.chunks(w.max(1)).enumerate() {
            let Some(first) = row.iter().position(|v| *v) else {
                continue;
            };
            let last = row
                .iter()
                .rposition(|v| *v)
                .expect("a row with a first has a last");
            let (y, first, last) = (y as u32, first as u32, last as u32);
            b = Some(match b {
                None => Bounds {
                    x0: first,
                    y0: y,
                    x1: last + 1,
                    y1: y + 1,
                },
                Some(b) => Bounds {
                    x0: b.x0.min(first),
                    y0: b.y0,
                    x1: b.x1.max(last + 1),
                    y1: y + 1,
                },
            });
        }
        b
    }

    /// Every pixel within `radius` pixels (Euclidean) of a set pixel.
    pub(crate) fn dilate(&self, radius: f32) -> Mask {
        let d = squared_distance_to(self, true);
        self.threshold(&d, |d2| d2 <= radius * radius)
    }

    /// Set pixels farther than `radius` pixels from every clear pixel (and from outside the
    /// grid when `edge_is_clear`).
    pub(crate) fn choke(&self, radius: f32) -> Mask {
        if radius <= 0.0 {
            return self.clone();
        }
        let d = squared_distance_to(self, false);
        self.threshold(&d, |d2| d2 > radius * radius)
    }

    fn threshold(&self, d2: &[f32], keep: impl Fn(f32) -> bool + Sync) -> Mask {
        Mask {
            width: self.width,
            height: self.height,
            bits: d2.par_iter().map(|d| keep(*d)).collect(),
        }
    }

    /// The mask with set parts smaller than `min_area` pixels cleared and clear parts enclosed
    /// by set pixels (holes, not touching the grid's edge) smaller than `min_area` filled.
    pub(crate) fn without_specks(&self, min_area: u64) -> Mask {
        if min_area <= 1 {
            return self.clone();
        }
        let mut out = self.clone();
        for value in [true, false] {
            let parts = Parts::label(&out, value);
            for (i, b) in out.bits.iter_mut().enumerate() {
                let label = parts.labels[i];
                if label != 0 {
                    let part = &parts.parts[label as usize - 1];
                    let enclosed = value || !part.touches_edge;
                    if enclosed && part.area < min_area {
                        *b = !value;
                    }
                }
            }
        }
        out
    }

    /// Fill clear parts that touch no edge of the grid (holes) smaller than `max_area`.
    pub(crate) fn fill_holes_below(&self, max_area: u64) -> Mask {
        let parts = Parts::label(self, false);
        let mut out = self.clone();
        for (i, b) in out.bits.iter_mut().enumerate() {
            let label = parts.labels[i];
            if label != 0 {
                let part = &parts.parts[label as usize - 1];
                if !part.touches_edge && part.area < max_area {
                    *b = true;
                }
            }
        }
        out
    }

    /// The same mask cut to `b` (a smaller grid).
    pub(crate) fn crop(&self, b: Bounds) -> Mask {
        let w = self.width as usize;
        let mut bits = Vec::with_capacity(((b.x1 - b.x0) * (b.y1 - b.y0)) as usize);
        for y in b.y0..b.y1 {
            let row = y as usize * w;
            bits.extend_from_slice(&self.bits[row + b.x0 as usize..row + b.x1 as usize]);
        }
        Mask {
            width: b.x1 - b.x0,
            height: b.y1 - b.y0,
            bits,
        }
    }
}

/// One connected part (4-connected) of a mask's set or clear pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part {
    pub area: u64,
    pub touches_edge: bool,
}

/// Connected parts of the pixels equal to one value: `labels[i]` is 0 for the other value, else
/// the part's index + 1.
pub(crate) struct Parts {
    pub labels: Vec<u32>,
    pub parts: Vec<Part>,
}

impl Parts {
    /// Two-pass labelling with union-find over 4-neighbours.
    pub(crate) fn label(mask: &Mask, value: bool) -> Parts {
        let (w, h) = (mask.width as usize, mask.height as usize);
        let mut labels = vec![0u32; w * h];
        let mut parent: Vec<u32> = vec![0];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if mask.bits[i] != value {
                    continue;
                }
                let up = if y > 0 { labels[i - w] } else { 0 };
                let left = if x > 0 { labels[i - 1] } else { 0 };
                labels[i] = match (up, left) {
                    (0, 0) => {
                        parent.push(parent.len() as u32);
                        parent.len() as u32 - 1
                    }
                    (a, 0) | (0, a) => a,
                    (a, b) => union(&mut parent, a, b),
                };
            }
        }
        // Flatten to dense part numbers.
        let mut dense = vec![0u32; parent.len()];
        let mut parts: Vec<Part> = Vec::new();
        for l in 1..parent.len() {
            let root = find(&mut parent, l as u32) as usize;
            if dense[root] == 0 {
                parts.push(Part {
                    area: 0,
                    touches_edge: false,
                });
                dense[root] = parts.len() as u32;
            }
            dense[l] = dense[root];
        }
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if labels[i] == 0 {
                    continue;
                }
                let d = dense[labels[i] as usize];
                labels[i] = d;
                let part = &mut parts[d as usize - 1];
                part.area += 1;
                part.touches_edge |= x == 0 || y == 0 || x == w - 1 || y == h - 1;
            }
        }
        Parts { labels, parts }
    }
}

fn find(parent: &mut [u32], mut a: u32) -> u32 {
    while parent[a as usize] != a {
        let grand = parent[parent[a as usize] as usize];
        parent[a as usize] = grand;
        a = grand;
    }
    a
}

fn union(parent: &mut [u32], a: u32, b: u32) -> u32 {
    let (ra, rb) = (find(parent, a), find(parent, b));
    let (lo, hi) = (ra.min(rb), ra.max(rb));
    parent[hi as usize] = lo;
    lo
}

/// For every pixel, the squared Euclidean distance (in pixels) to the nearest pixel whose value
/// is `target` (infinite when there is none). Pixels outside the grid count as `!target`'s
/// value when `target` is true, and as `target` when it is false (so a choke also eats in from
/// the edge). Felzenszwalb and Huttenlocher's two-pass transform: exact, linear in pixels.
pub(crate) fn squared_distance_to(mask: &Mask, target: bool) -> Vec<f32> {
    let (w, h) = (mask.width as usize, mask.height as usize);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let edge = !target;
    // Pass 1: along each row, the squared distance to the nearest target in that row.
    let mut rows = vec![0f32; w * h];
    rows.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        let bits = &mask.bits[y * w..(y + 1) * w];
        row_distances(bits, target, edge, out);
    });
    // Pass 2: along each column, the lower envelope of parabolas.
    let mut out = vec![0f32; w * h];
    let columns: Vec<Vec<f32>> = (0..w)
        .into_par_iter()
        .map(|x| {
            let mut f: Vec<f32> = (0..h).map(|y| rows[y * w + x]).collect();
            if edge {
                // The edge rows above and below act as targets at distance 0.
                f.insert(0, 0.0);
                f.push(0.0);
            }
            let mut d = vec![0f32; f.len()];
            envelope(&f, &mut d);
            if edge {
                d.remove(0);
                d.pop();
            }
            d
        })
        .collect();
    for (x, col) in columns.into_iter().enumerate() {
        for (y, v) in col.into_iter().enumerate() {
            out[y * w + x] = v;
        }
    }
    out
}

const FAR: f32 = 1e20;

fn row_distances(bits: &[bool], target: bool, edge_is_target: bool, out: &mut [f32]) {
    let n = bits.len();
    let mut last: Option<isize> = if edge_is_target { Some(-1) } else { None };
    for x in 0..n {
        if bits[x] == target {
            last = Some(x as isize);
        }
        out[x] = last.map_or(f32::INFINITY, |l| (x as isize - l) as f32);
    }
    let mut next: Option<isize> = if edge_is_target {
        Some(n as isize)
    } else {
        None
    };
    for x in (0..n).rev() {
        if bits[x] == target {
            next = Some(x as isize);
        }
        if let Some(nx) = next {
            out[x] = out[x].min((nx - x as isize) as f32);
        }
    }
    for v in out.iter_mut() {
        *v = if v.is_finite() { *v * *v } else { FAR };
    }
}

/// One-dimensional squared distance transform of sampled function `f` (Felzenszwalb and
/// Huttenlocher 2012): `d[q] = min_p (q - p)² + f[p]`, from the lower envelope of the parabolas
/// rooted at each sample.
fn envelope(f: &[f32], d: &mut [f32]) {
    let n = f.len();
    let mut v = vec![0usize; n];
    let mut z = vec![0f64; n + 1];
    let mut k = 0usize;
    z[0] = f64::NEG_INFINITY;
    z[1] = f64::INFINITY;
    let cut = |q: usize, p: usize| {
        let (fq, fp) = (f64::from(f[q]), f64::from(f[p]));
        let (qf, pf) = (q as f64, p as f64);
        ((fq + qf * qf) - (fp + pf * pf)) / (2.0 * (qf - pf))
    };
    for q in 1..n {
        let mut s = cut(q, v[k]);
        while s <= z[k] {
            k -= 1;
            s = cut(q, v[k]);
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = f64::INFINITY;
    }
    k = 0;
    for (q, out) in d.iter_mut().enumerate() {
        while z[k + 1] < q as f64 {
            k += 1;
        }
        let p = v[k];
        let dq = q as f32 - p as f32;
        *out = (dq * dq + f[p]).min(FAR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: u32, h: u32, set: &[(u32, u32)]) -> Mask {
        let mut m = Mask::new(w, h);
        for (x, y) in set {
            m.bits[(y * w + x) as usize] = true;
        }
        m
    }

    fn brute(m: &Mask, target: bool) -> Vec<f32> {
        let (w, h) = (m.width as i64, m.height as i64);
        let mut out = vec![0f32; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let mut best = FAR;
                for ty in -1..=h {
                    for tx in -1..=w {
                        let inside = tx >= 0 && ty >= 0 && tx < w && ty < h;
                        // Outside the grid is clear.
                        let v = inside && m.bits[(ty * w + tx) as usize];
                        if v == target {
                            let d = ((x - tx).pow(2) + (y - ty).pow(2)) as f32;
                            best = best.min(d);
                        }
                    }
                }
                out[(y * w + x) as usize] = best;
            }
        }
        out
    }

    #[test]
    fn squared_distance_to_matches_brute_force() {
        let m = mask(13, 9, &[(2, 2), (10, 7), (6, 4), (0, 8)]);
        assert_eq!(squared_distance_to(&m, true), brute(&m, true));
        let mut blob = Mask::new(13, 9);
        for y in 2..8 {
            for x in 1..11 {
                blob.bits[y * 13 + x] = (x + y) % 5 != 0;
            }
        }
        assert_eq!(squared_distance_to(&blob, false), brute(&blob, false));
    }

    #[test]
    fn dilate_grows_a_point_into_a_disc() {
        let m = mask(21, 21, &[(10, 10)]);
        let d = m.dilate(5.0);
        assert!(d.get(15, 10) && d.get(10, 5) && d.get(13, 14));
        assert!(!d.get(16, 10) && !d.get(14, 14));
        assert_eq!(d.choke(5.0).count(), 1);
    }

    #[test]
    fn choke_eats_in_from_the_grid_edge() {
        let mut m = Mask::new(10, 10);
        m.bits.iter_mut().for_each(|b| *b = true);
        let c = m.choke(2.0);
        assert!(!c.get(0, 5) && !c.get(1, 5) && c.get(2, 5));
    }

    #[test]
    fn without_specks_drops_islands_and_fills_pinholes() {
        let mut m = Mask::new(20, 20);
        for y in 5..15 {
            for x in 5..15 {
                m.bits[y * 20 + x] = true;
            }
        }
        m.bits[10 * 20 + 10] = false; // a pinhole
        m.bits[20 + 1] = true; // a speck
        let clean = m.without_specks(4);
        assert!(clean.get(10, 10));
        assert!(!clean.get(1, 1));
        assert_eq!(clean.count(), 100);
        assert_eq!(clean.bounds().unwrap().x0, 5);
    }

    #[test]
    fn parts_counts_separate_islands() {
        let m = mask(10, 3, &[(0, 0), (1, 0), (5, 1), (9, 2)]);
        let p = Parts::label(&m, true);
        assert_eq!(p.parts.len(), 3);
        assert_eq!(p.parts[0].area, 2);
    }
}
