//! Reducing a design to a few inks: k-means in Oklab (a perceptual colour space, so "near" means
//! "looks alike") over the opaque pixels, or the inks a job names; then every pixel mapped to
//! its nearest ink through a 64³ lookup table. Deterministic: the same image and ink count give
//! the same inks.

use image::RgbaImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::mask::OPAQUE_FROM;

/// An ink: its sRGB colour.
pub(crate) type Rgb = [u8; 3];

/// The index [`Palette::indices`] gives a pixel that takes no ink.
pub(crate) const CLEAR: u8 = u8::MAX;

/// Pixels sampled for k-means at most (an evenly spaced subset of the opaque pixels).
const SAMPLE: usize = 65_536;
const ITERATIONS: usize = 16;
/// Per-channel bits of the nearest-ink lookup table.
const LUT_BITS: u32 = 6;

/// A colour in Oklab (Björn Ottosson, 2020).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lab {
    pub l: f32,
    pub a: f32,
    pub b: f32,
}

fn linear(c: u8) -> f32 {
    let c = f32::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

fn encoded(c: f32) -> u8 {
    let c = c.clamp(0.0, 1.0);
    let v = if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round() as u8
}

impl Lab {
    pub(crate) fn from_rgb([r, g, b]: Rgb) -> Lab {
        let (r, g, b) = (linear(r), linear(g), linear(b));
        let l = 0.412_221_46 * r + 0.536_332_55 * g + 0.051_445_995 * b;
        let m = 0.211_903_5 * r + 0.680_699_5 * g + 0.107_396_96 * b;
        let s = 0.088_302_46 * r + 0.281_718_85 * g + 0.629_978_7 * b;
        let (l, m, s) = (l.cbrt(), m.cbrt(), s.cbrt());
        Lab {
            l: 0.210_454_26 * l + 0.793_617_8 * m - 0.004_072_047 * s,
            a: 1.977_998_5 * l - 2.428_592_2 * m + 0.450_593_7 * s,
            b: 0.025_904_037 * l + 0.782_771_77 * m - 0.808_675_77 * s,
        }
    }

    pub(crate) fn to_rgb(self) -> Rgb {
        let l = self.l + 0.396_337_78 * self.a + 0.215_803_76 * self.b;
        let m = self.l - 0.105_561_346 * self.a - 0.063_854_17 * self.b;
        let s = self.l - 0.089_484_18 * self.a - 1.291_485_5 * self.b;
        let (l, m, s) = (l * l * l, m * m * m, s * s * s);
        [
            encoded(4.076_741_7 * l - 3.307_711_6 * m + 0.230_969_94 * s),
            encoded(-1.268_438 * l + 2.609_757_4 * m - 0.341_319_38 * s),
            encoded(-0.004_196_086_3 * l - 0.703_418_6 * m + 1.707_614_7 * s),
        ]
    }

    fn distance2(&self, o: &Lab) -> f32 {
        (self.l - o.l).powi(2) + (self.a - o.a).powi(2) + (self.b - o.b).powi(2)
    }
}

/// The inks of a design and the table that maps a colour to the nearest one.
#[derive(Debug, Clone)]
pub(crate) struct Palette {
    pub inks: Vec<Rgb>,
    lut: Vec<u8>,
}

impl Palette {
    /// A palette of exactly the given inks (in the job's order).
    pub(crate) fn of(inks: Vec<Rgb>) -> Palette {
        let labs: Vec<Lab> = inks.iter().map(|c| Lab::from_rgb(*c)).collect();
        let lut = nearest_table(&labs);
        Palette { inks, lut }
    }

    /// At most `count` inks chosen by k-means in Oklab over the opaque pixels of `img`; fewer
    /// when the design has fewer distinct colours. None when no pixel is opaque.
    pub(crate) fn quantise(img: &RgbaImage, count: usize) -> Option<Palette> {
        let opaque: Vec<Rgb> = img
            .pixels()
            .filter(|p| p.0[3] >= OPAQUE_FROM)
            .map(|p| [p.0[0], p.0[1], p.0[2]])
            .collect();
        if opaque.is_empty() || count == 0 {
            return None;
        }
        let step = opaque.len().div_ceil(SAMPLE);
        let sample: Vec<Lab> = opaque
            .iter()
            .step_by(step)
            .map(|c| Lab::from_rgb(*c))
            .collect();
        let centres = kmeans(&sample, count);
        let inks: Vec<Rgb> = centres.iter().map(|c| c.to_rgb()).collect();
        let mut unique: Vec<Rgb> = Vec::with_capacity(inks.len());
        for ink in inks {
            if !unique.contains(&ink) {
                unique.push(ink);
            }
        }
        Some(Palette::of(unique))
    }

    /// Each pixel's nearest ink (its index), or [`CLEAR`] where the pixel is less than half
    /// opaque.
    pub(crate) fn indices(&self, img: &RgbaImage) -> Vec<u8> {
        use rayon::prelude::*;
        img.as_raw()
            .par_chunks_exact(4)
            .map(|p| {
                if p[3] >= OPAQUE_FROM {
                    self.nearest([p[0], p[1], p[2]])
                } else {
                    CLEAR
                }
            })
            .collect()
    }

    /// The index of the ink nearest `rgb`.
    pub(crate) fn nearest(&self, [r, g, b]: Rgb) -> u8 {
        let shift = 8 - LUT_BITS;
        let i = ((usize::from(r >> shift) << (2 * LUT_BITS))
            | (usize::from(g >> shift) << LUT_BITS))
            | usize::from(b >> shift);
        self.lut[i]
    }
}

/// For each cell of a 64³ grid of sRGB colours (taken at the cell's centre), the nearest of
/// `inks` in Oklab.
fn nearest_table(inks: &[Lab]) -> Vec<u8> {
    use rayon::prelude::*;
    let side = 1usize << LUT_BITS;
    let half = 1u32 << (7 - LUT_BITS);
    (0..side * side * side)
        .into_par_iter()
        .map(|i| {
            let cell = |c: usize| ((c as u32) << (8 - LUT_BITS) | half).min(255) as u8;
            let rgb = [
                cell(i >> (2 * LUT_BITS)),
                cell((i >> LUT_BITS) & (side - 1)),
                cell(i & (side - 1)),
            ];
            let lab = Lab::from_rgb(rgb);
            nearest_of(inks, &lab) as u8
        })
        .collect()
}

fn nearest_of(centres: &[Lab], p: &Lab) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, c) in centres.iter().enumerate() {
        let d = p.distance2(c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// k-means++ seeding (seeded, so repeatable) and Lloyd's iterations.
fn kmeans(points: &[Lab], k: usize) -> Vec<Lab> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0001);
    let mut centres = vec![points[points.len() / 2]];
    let mut d2: Vec<f32> = points.iter().map(|p| p.distance2(&centres[0])).collect();
    while centres.len() < k {
        let total: f64 = d2.iter().map(|d| f64::from(*d)).sum();
        if total <= 1e-12 {
            break; // every point already sits on a centre: fewer distinct colours than k
        }
        let mut pick = rng.random::<f64>() * total;
        let mut chosen = points.len() - 1;
        for (i, d) in d2.iter().enumerate() {
            pick -= f64::from(*d);
            if pick <= 0.0 {
                chosen = i;
                break;
            }
        }
        centres.push(points[chosen]);
        for (d, p) in d2.iter_mut().zip(points) {
            *d = d.min(p.distance2(&points[chosen]));
        }
    }
    for _ in 0..ITERATIONS {
        let mut sums = vec![(0f64, 0f64, 0f64, 0u64); centres.len()];
        for p in points {
            let s = &mut sums[nearest_of(&centres, p)];
            s.0 += f64::from(p.l);
            s.1 += f64::from(p.a);
            s.2 += f64::from(p.b);
            s.3 += 1;
        }
        let mut moved = false;
        for (c, s) in centres.iter_mut().zip(&sums) {
            if s.3 == 0 {
                continue;
            }
            let n = s.3 as f64;
            let next = Lab {
                l: (s.0 / n) as f32,
                a: (s.1 / n) as f32,
                b: (s.2 / n) as f32,
            };
            moved |= next.distance2(c) > 1e-10;
            *c = next;
        }
        if !moved {
            break;
        }
    }
    centres
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn lab_round_trips_srgb() {
        for rgb in [[0, 0, 0], [255, 255, 255], [200, 30, 90], [12, 250, 7]] {
            assert_eq!(Lab::from_rgb(rgb).to_rgb(), rgb);
        }
    }

    #[test]
    fn quantise_finds_the_colours_of_a_flat_design() {
        let mut img = RgbaImage::from_pixel(40, 40, Rgba([0, 0, 0, 0]));
        for (x, y, p) in img.enumerate_pixels_mut() {
            if y >= 10 {
                *p = if x < 20 {
                    Rgba([220, 20, 30, 255])
                } else {
                    Rgba([10, 40, 200, 255])
                };
            }
        }
        let p = Palette::quantise(&img, 4).unwrap();
        assert_eq!(p.inks.len(), 2, "{:?}", p.inks);
        assert!(p.inks.contains(&[220, 20, 30]) && p.inks.contains(&[10, 40, 200]));
        let red = p.nearest([215, 25, 35]);
        assert_eq!(p.inks[red as usize], [220, 20, 30]);
        assert!(Palette::quantise(&RgbaImage::new(4, 4), 3).is_none());
    }

    #[test]
    fn quantise_is_deterministic_and_bounded() {
        let img = RgbaImage::from_fn(64, 64, |x, y| {
            Rgba([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8, 255])
        });
        let a = Palette::quantise(&img, 5).unwrap();
        let b = Palette::quantise(&img, 5).unwrap();
        assert_eq!(a.inks, b.inks);
        assert_eq!(a.inks.len(), 5);
    }
}
