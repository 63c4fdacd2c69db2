//! Binary masks at print resolution and the morphology prepress needs: dilate and choke by a
//! radius in pixels (exact Euclidean distances, `distance.rs`), connected parts, and removing
//! specks and pinholes below an area. Pure CPU over in-memory buffers; rows run in parallel.

use super::distance::squared_distance_to;
use image::RgbaImage;
use rayon::prelude::*;

/// Radii below this are applied directly rather than through the distance transform.
const SMALL_RADIUS: f32 = 4.0;

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
        if radius < SMALL_RADIUS {
            return self.small_disc_filter(radius, true);
        }
        let d = squared_distance_to(&self.bits, self.width, self.height, true);
        self.threshold(&d, |d2| d2 <= radius * radius)
    }

    /// Set pixels farther than `radius` pixels from every clear pixel (and from outside the
    /// grid when `edge_is_clear`).
    pub(crate) fn choke(&self, radius: f32) -> Mask {
        if radius <= 0.0 {
            return self.clone();
        }
        if radius < SMALL_RADIUS {
            return self.small_disc_filter(radius, false);
        }
        let d = squared_distance_to(&self.bits, self.width, self.height, false);
        self.threshold(&d, |d2| d2 > radius * radius)
    }

    /// Dilate (`grow`) or choke by a small radius directly: a pixel is set when any (grow) or
    /// every (choke) pixel within `radius` is set, outside the grid counting as clear. The same
    /// result as the distance transform's for these radii, without its buffers.
    fn small_disc_filter(&self, radius: f32, grow: bool) -> Mask {
        let r = radius.floor() as i64;
        let offsets: Vec<(i64, i64)> = (-r..=r)
            .flat_map(|dy| (-r..=r).map(move |dx| (dx, dy)))
            .filter(|(dx, dy)| ((dx * dx + dy * dy) as f32) <= radius * radius)
            .collect();
        let (w, h) = (i64::from(self.width), i64::from(self.height));
        let mut bits = vec![false; self.bits.len()];
        bits.par_chunks_mut(w.max(1) as usize)
            .enumerate()
            .for_each(|(y, row)| {
                let y = y as i64;
                for (x, out) in row.iter_mut().enumerate() {
                    let x = x as i64;
                    let at = |(dx, dy): &(i64, i64)| {
                        let (sx, sy) = (x + dx, y + dy);
                        sx >= 0 && sy >= 0 && sx < w && sy < h && self.bits[(sy * w + sx) as usize]
                    };
                    *out = if grow {
                        offsets.iter().any(at)
                    } else {
                        self.bits[(y * w + x) as usize] && offsets.iter().all(at)
                    };
                }
            });
        Mask {
            width: self.width,
            height: self.height,
            bits,
        }
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
        let out = self.without_islands(min_area);
        out.fill_holes_below(min_area)
    }

    /// The mask with set parts smaller than `min_area` pixels cleared.
    pub(crate) fn without_islands(&self, min_area: u64) -> Mask {
        let mut out = self.clone();
        if min_area > 1 {
            Parts::label(self, true).set_where(&mut out, false, |p| p.area < min_area);
        }
        out
    }

    /// Fill clear parts that touch no edge of the grid (holes) smaller than `max_area`.
    pub(crate) fn fill_holes_below(&self, max_area: u64) -> Mask {
        let mut out = self.clone();
        if max_area > 1 {
            Parts::label(self, false)
                .set_where(&mut out, true, |p| !p.touches_edge && p.area < max_area);
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

/// A horizontal run of equal pixels: row `y`, columns `x0..x1`.
#[derive(Debug, Clone, Copy)]
struct Run {
    y: u32,
    x0: u32,
    x1: u32,
}

/// Connected parts of the pixels equal to one value, found run by run (union-find over the runs
/// of each row that overlap the runs of the row above: the work follows the outlines, not the
/// pixel count). `part_of[i]` is run `i`'s part.
pub(crate) struct Parts {
    runs: Vec<Run>,
    part_of: Vec<u32>,
    pub parts: Vec<Part>,
}

impl Parts {
    pub(crate) fn label(mask: &Mask, value: bool) -> Parts {
        let (w, h) = (mask.width as usize, mask.height as usize);
        let mut runs: Vec<Run> = Vec::new();
        let mut parent: Vec<u32> = Vec::new();
        let mut above = 0..0; // the previous row's runs, as indices into `runs`
        for y in 0..h {
            let row = &mask.bits[y * w..(y + 1) * w];
            let start = runs.len();
            let mut x = 0;
            while x < w {
                let Some(off) = row[x..].iter().position(|b| *b == value) else {
                    break;
                };
                let x0 = x + off;
                let len = row[x0..].iter().position(|b| *b != value).unwrap_or(w - x0);
                let x1 = x0 + len;
                let id = runs.len() as u32;
                runs.push(Run {
                    y: y as u32,
                    x0: x0 as u32,
                    x1: x1 as u32,
                });
                parent.push(id);
                x = x1;
            }
            // Join each run with the runs above it that it overlaps (4-connectivity).
            let mut j = above.start;
            for i in start..runs.len() {
                let r = runs[i];
                while j < above.end && runs[j].x1 <= r.x0 {
                    j += 1;
                }
                let mut k = j;
                while k < above.end && runs[k].x0 < r.x1 {
                    union(&mut parent, i as u32, k as u32);
                    k += 1;
                }
            }
            above = start..runs.len();
        }
        let mut dense = vec![u32::MAX; runs.len()];
        let mut parts: Vec<Part> = Vec::new();
        let mut part_of = vec![0u32; runs.len()];
        for (i, r) in runs.iter().enumerate() {
            let root = find(&mut parent, i as u32) as usize;
            if dense[root] == u32::MAX {
                dense[root] = parts.len() as u32;
                parts.push(Part {
                    area: 0,
                    touches_edge: false,
                });
            }
            let part = &mut parts[dense[root] as usize];
            part.area += u64::from(r.x1 - r.x0);
            part.touches_edge |=
                r.y == 0 || r.y as usize == h - 1 || r.x0 == 0 || r.x1 as usize == w;
            part_of[i] = dense[root];
        }
        Parts {
            runs,
            part_of,
            parts,
        }
    }

    /// Set the pixels of every part `pick` chooses to `value` in `out`.
    fn set_where(&self, out: &mut Mask, value: bool, pick: impl Fn(&Part) -> bool) {
        let w = out.width as usize;
        for (r, part) in self.runs.iter().zip(&self.part_of) {
            if pick(&self.parts[*part as usize]) {
                let row = r.y as usize * w;
                out.bits[row + r.x0 as usize..row + r.x1 as usize].fill(value);
            }
        }
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

    #[test]
    fn dilate_grows_a_point_into_a_disc() {
        let m = mask(21, 21, &[(10, 10)]);
        let d = m.dilate(5.0);
        assert!(d.get(15, 10) && d.get(10, 5) && d.get(13, 14));
        assert!(!d.get(16, 10) && !d.get(14, 14));
        assert_eq!(d.choke(5.0).count(), 1);
    }

    #[test]
    fn small_radii_match_the_distance_transform() {
        let mut m = Mask::new(31, 23);
        for (i, b) in m.bits.iter_mut().enumerate() {
            *b = (i * 7919) % 11 < 6 || (i % 31 > 8 && i % 31 < 20);
        }
        for radius in [1.0f32, 1.5, 2.0, 3.0, 3.9] {
            let d = squared_distance_to(&m.bits, m.width, m.height, true);
            let grown = m.threshold(&d, |d2| d2 <= radius * radius);
            assert_eq!(m.small_disc_filter(radius, true), grown, "dilate {radius}");
            let d = squared_distance_to(&m.bits, m.width, m.height, false);
            let choked = m.threshold(&d, |d2| d2 > radius * radius);
            assert_eq!(m.small_disc_filter(radius, false), choked, "choke {radius}");
        }
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
