//! Helpers for tests/mockups.rs and tests/mockups_templates.rs: the code-drawn demo design (a
//! badge with transparency), an independent homography solve, manifest text, the custom
//! "canvas_bag" template fixture (a photo-like bag drawn by code) and the contact sheet.

// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};
use merchgen::mockup::{render, Fit, Homography, MockupLibrary, RenderOptions};
use std::path::{Path, PathBuf};

/// Whether golden files and fixtures should be rewritten instead of checked.
pub(crate) fn update_golden() -> bool {
    std::env::var("MERCHGEN_UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// Homography through four point pairs by Gaussian elimination of the 8x8 DLT system,
/// independent of the closed form the library uses.
pub(crate) fn dlt(from: [[f64; 2]; 4], to: [[f64; 2]; 4]) -> Homography {
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8)
            .max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let h: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Homography([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], 1.0])
}

/// A version-1 manifest for a template with only a base layer and a 4 x 3 in quad print area.
pub(crate) fn manifest_json(
    product: &str,
    (w, h): (u32, u32),
    quad: [[f64; 2]; 4],
    colors: &str,
) -> String {
    let colors: serde_json::Value = serde_json::from_str(colors).unwrap();
    serde_json::json!({
        "version": 1,
        "product": product,
        "canvas": [w, h],
        "layers": {"base": "base.png"},
        "print_area": {"type": "quad", "corners": quad},
        "print": {"width_in": 4.0, "height_in": 3.0, "dpi": 300},
        "colors": colors,
    })
    .to_string()
}

/// Coverage of a pixel by a shape, from a signed distance in pixels (negative inside).
fn cover(distance: f64) -> f64 {
    (0.5 - distance).clamp(0.0, 1.0)
}

/// Signed distance to a triangle's inside (corners clockwise on screen), using its edges'
/// half-planes (exact enough away from the corners for anti-aliasing).
fn triangle(p: (f64, f64), t: [(f64, f64); 3]) -> f64 {
    (0..3)
        .map(|i| {
            let (a, b) = (t[i], t[(i + 1) % 3]);
            let (ex, ey) = (b.0 - a.0, b.1 - a.1);
            let len = ex.hypot(ey);
            (ey * (p.0 - a.0) - ex * (p.1 - a.1)) / len
        })
        .fold(f64::MIN, f64::max)
}

fn blend(dst: &mut [f64; 4], rgb: [u8; 3], a: f64) {
    for c in 0..3 {
        dst[c] = dst[c] * (1.0 - a) + f64::from(rgb[c]) / 255.0 * a;
    }
    dst[3] = dst[3] + a * (1.0 - dst[3]);
}

/// The demo design: a round "mountain sunrise" badge with a ribbon, transparent around it.
pub(crate) fn badge_design(size: u32) -> RgbaImage {
    let s = f64::from(size);
    RgbaImage::from_fn(size, size, |x, y| {
        let (u, v) = ((f64::from(x) + 0.5) / s, (f64::from(y) + 0.5) / s);
        let px = |d: f64| d * s;
        let r = (u - 0.5).hypot(v - 0.5);
        let mut c = [0.0, 0.0, 0.0, 0.0];
        blend(&mut c, [29, 43, 83], cover(px(r - 0.47)));
        blend(&mut c, [250, 240, 220], cover(px(r - 0.405)));
        let inner = cover(px(r - 0.39));
        let sky = [255, (200.0 - 90.0 * v) as u8, (90.0 - 40.0 * v) as u8];
        blend(&mut c, sky, inner);
        let sun = (u - 0.5).hypot(v - 0.55);
        blend(&mut c, [255, 236, 170], inner * cover(px(sun - 0.16)));
        let big = [(0.16, 0.74), (0.43, 0.33), (0.72, 0.74)].map(|(a, b)| (px(a), px(b)));
        let small = [(0.44, 0.74), (0.65, 0.44), (0.88, 0.74)].map(|(a, b)| (px(a), px(b)));
        let p = (px(u), px(v));
        blend(&mut c, [45, 64, 89], inner * cover(triangle(p, big)));
        let cap = [(0.37, 0.42), (0.43, 0.33), (0.49, 0.42)].map(|(a, b)| (px(a), px(b)));
        blend(&mut c, [245, 248, 255], inner * cover(triangle(p, cap)));
        blend(&mut c, [63, 95, 127], inner * cover(triangle(p, small)));
        blend(&mut c, [29, 43, 83], inner * cover(px(0.72 - v)));
        // Ribbon with notched tails, reaching outside the circle.
        let band = cover(px((v - 0.72).abs() - 0.065)) * cover(px((u - 0.5).abs() - 0.36));
        let tail_l = [(0.04, 0.66), (0.2, 0.66), (0.2, 0.80)].map(|(a, b)| (px(a), px(b)));
        let tail_l2 = [(0.04, 0.80), (0.1, 0.73), (0.2, 0.80)].map(|(a, b)| (px(a), px(b)));
        // Mirroring flips the winding, so the corners are listed backwards.
        let mirror = |t: [(f64, f64); 3]| [t[2], t[1], t[0]].map(|(a, b)| (s - a, b));
        let tails = [tail_l, tail_l2, mirror(tail_l), mirror(tail_l2)]
            .iter()
            .map(|t| cover(triangle(p, *t)))
            .fold(0.0, f64::max);
        blend(&mut c, [170, 25, 45], tails);
        blend(&mut c, [215, 38, 61], band);
        // Three "words" of lettering on the ribbon.
        for (a, b) in [(0.27, 0.39), (0.42, 0.58), (0.61, 0.73)] {
            let word = cover(px((v - 0.72).abs() - 0.018))
                * cover(px((u - (a + b) / 2.0).abs() - (b - a) / 2.0));
            blend(&mut c, [255, 245, 235], word);
        }
        // `blend` keeps colour premultiplied by coverage; images store it straight.
        let a = c[3];
        let straight = |v: f64| {
            if a > 0.0 {
                (v / a * 255.0).round().clamp(0.0, 255.0) as u8
            } else {
                0
            }
        };
        Rgba([
            straight(c[0]),
            straight(c[1]),
            straight(c[2]),
            (a * 255.0).round() as u8,
        ])
    })
}

fn hash(x: u32, y: u32) -> f64 {
    let mut h = x.wrapping_mul(0x8da6_b343) ^ y.wrapping_mul(0xd816_3841);
    h = (h ^ (h >> 13)).wrapping_mul(0x5bd1_e995);
    f64::from((h ^ (h >> 15)) & 0xffff) / 65535.0
}

/// The custom template fixture: a canvas bag photographed on a concrete floor (drawn by code),
/// with tint, mask, shading and displacement layers and a perspective print area.
pub(crate) fn write_canvas_bag(dir: &Path) {
    const N: u32 = 800;
    std::fs::create_dir_all(dir).unwrap();
    let n = f64::from(N);
    let bag = [(0.2, 0.27), (0.79, 0.3), (0.81, 0.9), (0.18, 0.88)].map(|(a, b)| (a * n, b * n));
    let print = [[0.31, 0.4], [0.68, 0.42], [0.69, 0.8], [0.3, 0.79]].map(|[a, b]| [a * n, b * n]);
    let inside = |p: (f64, f64)| {
        let d = (0..4)
            .map(|i| {
                let (a, b) = (bag[i], bag[(i + 1) % 4]);
                let (ex, ey) = (b.0 - a.0, b.1 - a.1);
                (ex * (p.1 - a.1) - ey * (p.0 - a.0)) / ex.hypot(ey)
            })
            .fold(f64::MAX, f64::min);
        (d + 0.5).clamp(0.0, 1.0)
    };
    let fold = |x: f64, y: f64| {
        (x / n * 19.0 + y / n * 7.0).sin() * 0.5 + (y / n * 23.0 - x / n * 5.0).sin() * 0.35
    };
    let mut base = RgbImage::new(N, N);
    let (mut tint, mut shade) = (GrayImage::new(N, N), GrayImage::new(N, N));
    let mut disp = RgbImage::new(N, N);
    for (x, y, p) in base.enumerate_pixels_mut() {
        let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let floor = 0.62 + 0.06 * hash(x / 2, y / 2) + 0.05 * (1.0 - fy / n);
        let shadow = 1.0 - 0.35 * inside((fx - 14.0, fy - 18.0)) * 0.8;
        let cov = inside((fx, fy));
        let light =
            0.93 + 0.05 * fold(fx, fy) - 0.12 * (fx / n - 0.3).abs() + 0.02 * (hash(x, y) - 0.5);
        let lum = floor * shadow * (1.0 - cov) + 0.92 * light * cov;
        let warm = [1.0, 0.98, 0.94];
        *p = Rgb(warm.map(|k| (lum * k * 255.0).clamp(0.0, 255.0) as u8));
        tint.put_pixel(x, y, Luma([(cov * 255.0).round() as u8]));
        shade.put_pixel(x, y, Luma([((light.min(1.0)) * 255.0) as u8]));
        let gx = (fold(fx + 1.0, fy) - fold(fx - 1.0, fy)) * 40.0;
        let gy = (fold(fx, fy + 1.0) - fold(fx, fy - 1.0)) * 40.0;
        let q = |g: f64| (128.0 + g * 127.0).clamp(0.0, 255.0) as u8;
        disp.put_pixel(x, y, Rgb([q(gx), q(gy), 128]));
    }
    base.save(dir.join("base.png")).unwrap();
    tint.save(dir.join("tint.png")).unwrap();
    tint.save(dir.join("mask.png")).unwrap();
    shade.save(dir.join("shading.png")).unwrap();
    disp.save(dir.join("displacement.png")).unwrap();
    let manifest = serde_json::json!({
        "version": 1,
        "product": "canvas_bag",
        "view": "front",
        "canvas": [N, N],
        "layers": {"base": "base.png", "tint": "tint.png", "mask": "mask.png",
                   "shading": "shading.png", "displacement": "displacement.png"},
        "print_area": {"type": "quad", "corners": print},
        "print": {"width_in": 10.0, "height_in": 10.0, "dpi": 300},
        "effects": {"shading": 0.85, "highlight": 0.0, "displacement_px": 3.0, "tint_reference": 0.86},
        "colors": {"natural": "#e8dcc2", "kraft": "#b58b5e", "black": "#222222"},
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest).unwrap() + "\n",
    )
    .unwrap();
}

/// Every built-in in every colour, `tile` pixels a side, one product per row.
pub(crate) fn contact_sheet(lib: &MockupLibrary, design: &RgbaImage, tile: u32) -> RgbaImage {
    let products = lib.products();
    let cols = products
        .iter()
        .map(|p| lib.template(p).unwrap().colors().len())
        .max()
        .unwrap() as u32;
    let mut sheet = RgbaImage::from_pixel(
        cols * tile,
        products.len() as u32 * tile,
        Rgba([250, 250, 250, 255]),
    );
    for (row, product) in products.iter().enumerate() {
        let t = lib.template(product).unwrap();
        for (col, color) in t.colors().into_iter().enumerate() {
            let opts = RenderOptions {
                color: color.into(),
                size: Some(tile),
                fit: Fit::Fit,
            };
            let img = render(t, design, &opts).unwrap();
            image::imageops::replace(
                &mut sheet,
                &img,
                i64::from(col as u32 * tile),
                i64::from(row as u32 * tile),
            );
        }
    }
    sheet
}

/// Render options for a colour at a size, fitting the design.
pub(crate) fn opts(color: &str, size: u32) -> RenderOptions {
    RenderOptions {
        color: color.into(),
        size: Some(size),
        fit: Fit::Fit,
    }
}

/// Centroid of where `a` and `b` differ, weighted by the difference.
pub(crate) fn diff_centroid(a: &RgbaImage, b: &RgbaImage) -> (f64, f64, f64) {
    let (mut sx, mut sy, mut sw) = (0.0, 0.0, 0.0);
    for (x, y, p) in a.enumerate_pixels() {
        let q = b.get_pixel(x, y);
        let w: f64 = (0..3).map(|c| f64::from(p.0[c].abs_diff(q.0[c]))).sum();
        sx += w * (f64::from(x) + 0.5);
        sy += w * (f64::from(y) + 0.5);
        sw += w;
    }
    (sx / sw, sy / sw, sw)
}

/// The committed custom template folder.
pub(crate) fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

/// A template with a flat grey base and a quad print area (4 x 3 in).
pub(crate) fn write_flat_template(
    dir: &Path,
    product: &str,
    (w, h): (u32, u32),
    quad: [[f64; 2]; 4],
) {
    let folder = dir.join(product);
    std::fs::create_dir_all(&folder).unwrap();
    RgbaImage::from_pixel(w, h, Rgba([40, 40, 40, 255]))
        .save(folder.join("base.png"))
        .unwrap();
    let json = manifest_json(product, (w, h), quad, "{\"white\": \"#ffffff\"}");
    std::fs::write(folder.join("manifest.json"), json).unwrap();
}
