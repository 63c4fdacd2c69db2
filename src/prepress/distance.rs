//! Exact Euclidean distance transform of a binary grid (Felzenszwalb and Huttenlocher): for
//! every pixel, the squared distance to the nearest pixel of a value. What `Mask::dilate` and
//! `Mask::choke` threshold for radii too large to apply directly. Rows and columns run in
//! parallel on rayon.

use rayon::prelude::*;

/// For every pixel, the squared Euclidean distance (in pixels) to the nearest pixel whose value
/// is `target` (infinite when there is none). Pixels outside the grid count as `!target`'s
/// value when `target` is true, and as `target` when it is false (so a choke also eats in from
/// the edge). Felzenszwalb and Huttenlocher's two-pass transform: exact, linear in pixels.
pub(crate) fn squared_distance_to(
    bits: &[bool],
    width: u32,
    height: u32,
    target: bool,
) -> Vec<f32> {
    let (w, h) = (width as usize, height as usize);
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let edge = !target;
    // Pass 1: along each row, the squared distance to the nearest target in that row.
    let mut rows = vec![0f32; w * h];
    rows.par_chunks_mut(w).enumerate().for_each(|(y, out)| {
        row_distances(&bits[y * w..(y + 1) * w], target, edge, out);
    });
    // Pass 2: along each column, the lower envelope of parabolas. Columns are gathered into
    // rows of a transposed buffer (the edge rows above and below as targets at distance 0 when
    // the edge counts), transformed in place, and gathered back: every write is contiguous.
    let pad = usize::from(edge);
    let th = h + 2 * pad;
    let mut columns = vec![0f32; w * th];
    columns.par_chunks_mut(th).enumerate().for_each(|(x, col)| {
        for (y, v) in col[pad..pad + h].iter_mut().enumerate() {
            *v = rows[y * w + x];
        }
        let f = col.to_vec();
        envelope(&f, col);
    });
    rows.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (x, v) in row.iter_mut().enumerate() {
            *v = columns[x * th + y + pad];
        }
    });
    rows
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

    fn brute(bits: &[bool], w: i64, h: i64, target: bool) -> Vec<f32> {
        let mut out = vec![0f32; (w * h) as usize];
        for y in 0..h {
            for x in 0..w {
                let mut best = FAR;
                for ty in -1..=h {
                    for tx in -1..=w {
                        let inside = tx >= 0 && ty >= 0 && tx < w && ty < h;
                        // Outside the grid is clear.
                        let v = inside && bits[(ty * w + tx) as usize];
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
        let (w, h) = (13usize, 9usize);
        let mut points = vec![false; w * h];
        for (x, y) in [(2, 2), (10, 7), (6, 4), (0, 8)] {
            points[y * w + x] = true;
        }
        let got = squared_distance_to(&points, w as u32, h as u32, true);
        assert_eq!(got, brute(&points, w as i64, h as i64, true));
        let mut blob = vec![false; w * h];
        for y in 2..8 {
            for x in 1..11 {
                blob[y * w + x] = (x + y) % 5 != 0;
            }
        }
        let got = squared_distance_to(&blob, w as u32, h as u32, false);
        assert_eq!(got, brute(&blob, w as i64, h as i64, false));
    }
}
