//! The AVX2 compositing pass against the scalar one: the same bytes on random designs, maps and
//! products.

use super::*;
use crate::mockup::blend::Strengths;
use crate::mockup::design::rasterize;
use crate::mockup::warp::Cylinder;
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
