//! Hard alpha for direct-to-film printing: the white underbase a DTF printer lays follows the
//! alpha channel, so a half-transparent edge prints as a halo. Here every pixel becomes either
//! opaque or clear, the opaque area is choked by a few pixels, and specks and pinholes below a
//! size are removed.

use super::mask::Mask;
use image::RgbaImage;

/// How a print file's alpha is made hard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HardAlpha {
    /// Pixels the opaque area shrinks by (0 keeps it).
    pub choke_px: f32,
    /// Opaque islands and enclosed holes smaller than this many pixels are removed.
    pub min_area_px: u64,
}

/// `img` with alpha 0 or 255 only: opaque where alpha was at least half after the choke and
/// the speck removal; colour kept where opaque, cleared (0,0,0,0) elsewhere. Pixels that turn
/// opaque (a filled pinhole, or an edge pixel that was half-transparent) keep their colour.
pub(crate) fn harden(img: &RgbaImage, opts: &HardAlpha) -> RgbaImage {
    // A choke only shrinks the opaque area: it can split off new islands but opens no new
    // pinholes, so the second pass drops islands alone.
    let opaque = Mask::opaque(img)
        .without_specks(opts.min_area_px)
        .choke(opts.choke_px)
        .without_islands(opts.min_area_px);
    let mut out = img.clone();
    for (p, keep) in out.pixels_mut().zip(&opaque.bits) {
        if *keep {
            p.0[3] = 255;
        } else {
            p.0 = [0, 0, 0, 0];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgba;

    #[test]
    fn harden_leaves_no_partial_alpha_and_chokes() {
        let mut img = RgbaImage::from_pixel(30, 30, Rgba([0, 0, 0, 0]));
        for y in 5..25 {
            for x in 5..25 {
                let edge = x == 5 || y == 5 || x == 24 || y == 24;
                img.put_pixel(x, y, Rgba([200, 10, 10, if edge { 100 } else { 255 }]));
            }
        }
        img.put_pixel(1, 1, Rgba([9, 9, 9, 255])); // a speck
        let hard = harden(
            &img,
            &HardAlpha {
                choke_px: 1.0,
                min_area_px: 4,
            },
        );
        assert!(hard.pixels().all(|p| p.0[3] == 0 || p.0[3] == 255));
        assert_eq!(hard.get_pixel(1, 1).0, [0, 0, 0, 0]);
        assert_eq!(hard.get_pixel(6, 10).0[3], 0, "choked by one pixel");
        assert_eq!(hard.get_pixel(7, 10).0, [200, 10, 10, 255]);
    }
}
