//! Screen-print separations: the design at print size reduced to a few inks, one 1-bit layer per
//! ink (every opaque pixel in exactly one), an optional white underbase for dark garments (the
//! opaque area choked so the underbase hides under the inks), and a composite preview.

use super::mask::Mask;
use super::palette::{Palette, Rgb};
use image::RgbaImage;
use rayon::prelude::*;

/// What a separation is made of.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inks {
    /// At most this many inks, chosen by quantisation.
    Count(usize),
    /// Exactly these inks; each pixel takes the nearest.
    Given(Vec<Rgb>),
}

/// A separation request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeparationOptions {
    pub inks: Inks,
    /// The underbase's choke in pixels; None makes no underbase.
    pub underbase_choke_px: Option<f32>,
}

/// One ink's layer.
#[derive(Debug, Clone)]
pub(crate) struct InkLayer {
    pub color: Rgb,
    pub mask: Mask,
    /// The share of the print area this ink covers, 0 to 1.
    pub coverage: f64,
}

/// A design's separations.
#[derive(Debug, Clone)]
pub(crate) struct Separations {
    pub layers: Vec<InkLayer>,
    pub underbase: Option<Mask>,
    /// Each pixel's ink (an index into the palette), or `palette::CLEAR` where none lies.
    index: Vec<u8>,
    palette: Vec<Rgb>,
    width: u32,
}

/// Why a design cannot be separated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SeparationError {
    #[error("the design is fully transparent: there is nothing to separate")]
    Transparent,
}

/// Separate `img` (the print file: print size, DPI) into ink layers. Inks no pixel uses are
/// left out, so a job asking for 6 inks of a 3-colour design gets 3 layers.
pub(crate) fn separate(
    img: &RgbaImage,
    opts: &SeparationOptions,
) -> Result<Separations, SeparationError> {
    let opaque = Mask::opaque(img);
    if opaque.is_empty() {
        return Err(SeparationError::Transparent);
    }
    let palette = match &opts.inks {
        Inks::Count(n) => Palette::quantise(img, *n).ok_or(SeparationError::Transparent)?,
        Inks::Given(inks) => Palette::of(inks.clone()),
    };
    let index = palette.indices(img);
    let area = index.len() as f64;
    let layers = palette
        .inks
        .par_iter()
        .enumerate()
        .map(|(i, color)| {
            let bits: Vec<bool> = index.iter().map(|v| usize::from(*v) == i).collect();
            let count = bits.iter().filter(|b| **b).count();
            InkLayer {
                color: *color,
                coverage: count as f64 / area,
                mask: Mask {
                    width: img.width(),
                    height: img.height(),
                    bits,
                },
            }
        })
        .filter(|l| l.coverage > 0.0)
        .collect();
    let underbase = opts.underbase_choke_px.map(|px| opaque.choke(px));
    Ok(Separations {
        layers,
        underbase,
        index,
        palette: palette.inks,
        width: img.width(),
    })
}

impl Separations {
    /// The inks composited as they would print (the underbase is hidden under them),
    /// transparent where no ink lies, scaled down (nearest pixel) to at most `max_side`.
    pub(crate) fn preview(&self, max_side: u32) -> RgbaImage {
        let (w, h) = (
            self.width,
            (self.index.len() / (self.width.max(1) as usize)) as u32,
        );
        let scale = (f64::from(max_side) / f64::from(w.max(h).max(1))).min(1.0);
        let (pw, ph) = (
            ((f64::from(w) * scale).round() as u32).max(1),
            ((f64::from(h) * scale).round() as u32).max(1),
        );
        let mut out = RgbaImage::new(pw, ph);
        out.par_chunks_mut(4 * pw as usize)
            .enumerate()
            .for_each(|(y, row)| {
                let sy = ((y as u64 * u64::from(h)) / u64::from(ph)) as usize;
                for (x, px) in row.chunks_exact_mut(4).enumerate() {
                    let sx = ((x as u64 * u64::from(w)) / u64::from(pw)) as usize;
                    let ink = self.index[sy * w as usize + sx];
                    if let Some([r, g, b]) = self.palette.get(usize::from(ink)) {
                        px.copy_from_slice(&[*r, *g, *b, 255]);
                    }
                }
            });
        out
    }
}

/// A layer as the film is printed: 1-bit rows, ink black (0), no ink white (1), most
/// significant bit first.
pub(crate) fn film_rows(mask: &Mask) -> Vec<u8> {
    let w = mask.width as usize;
    let stride = w.div_ceil(8);
    let mut out = vec![0xffu8; stride * mask.height as usize];
    out.par_chunks_mut(stride.max(1))
        .zip(mask.bits.par_chunks(w.max(1)))
        .for_each(|(packed, row)| {
            for (x, on) in row.iter().enumerate() {
                if *on {
                    packed[x / 8] &= !(0x80 >> (x % 8));
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    fn three_colours() -> RgbaImage {
        RgbaImage::from_fn(30, 10, |x, _| match x / 10 {
            0 => Rgba([250, 250, 250, 255]),
            1 => Rgba([200, 0, 0, 255]),
            _ => Rgba([0, 0, 0, 0]),
        })
    }

    #[test]
    fn separate_puts_each_opaque_pixel_in_one_layer() {
        let img = three_colours();
        let s = separate(
            &img,
            &SeparationOptions {
                inks: Inks::Count(4),
                underbase_choke_px: Some(1.0),
            },
        )
        .unwrap();
        assert_eq!(s.layers.len(), 2);
        let opaque = Mask::opaque(&img);
        for i in 0..opaque.bits.len() {
            let n = s.layers.iter().filter(|l| l.mask.bits[i]).count();
            assert_eq!(n, usize::from(opaque.bits[i]));
        }
        let total: f64 = s.layers.iter().map(|l| l.coverage).sum();
        assert!((total - 2.0 / 3.0).abs() < 1e-9);
        let under = s.underbase.clone().unwrap();
        assert!(under.count() > 0 && under.count() < opaque.count());
        assert_eq!(
            under.and(&opaque),
            under,
            "the underbase lies inside the opaque area"
        );
        assert_eq!(s.preview(1024).get_pixel(15, 5).0, [200, 0, 0, 255]);
        assert_eq!(s.preview(15).dimensions(), (15, 5));
    }

    #[test]
    fn separate_refuses_a_transparent_design() {
        let e = separate(
            &RgbaImage::new(8, 8),
            &SeparationOptions {
                inks: Inks::Given(vec![[0, 0, 0]]),
                underbase_choke_px: None,
            },
        )
        .unwrap_err();
        assert_eq!(e, SeparationError::Transparent);
    }

    #[test]
    fn film_rows_pack_ink_as_black_bits() {
        let mut m = Mask::new(10, 1);
        m.bits[0] = true;
        m.bits[9] = true;
        assert_eq!(film_rows(&m), vec![0b0111_1111, 0b1011_1111]);
    }
}
