//! Mockup compositing end to end: geometry of the warps (quad corners, cylinder), transparent
//! designs, the built-in products in every colour, and shading. Templates, manifest errors and
//! golden images are in mockups_templates.rs.

use crate::support;

use image::{Rgba, RgbaImage};
use merchgen::mockup::{
    render, render_blank, Fit, Mapping, MockupLibrary, RenderOptions, Template,
};
use support::mockups::{badge_design, diff_centroid, dlt, fixture_dir, opts, write_flat_template};

/// A transparent design with one opaque square of `k` pixels in corner `corner` (0 = TL, 1 = TR,
/// 2 = BR, 3 = BL).
fn corner_marker(w: u32, h: u32, k: u32, corner: usize) -> RgbaImage {
    let (x0, y0) = match corner {
        0 => (0, 0),
        1 => (w - k, 0),
        2 => (w - k, h - k),
        _ => (0, h - k),
    };
    RgbaImage::from_fn(w, h, |x, y| {
        let inside = x >= x0 && x < x0 + k && y >= y0 && y < y0 + k;
        if inside {
            Rgba([255, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

/// Every corner marker lands where an independently solved homography through the manifest's
/// corners puts it (the marker's centre), within half a pixel.
fn check_corner_markers(t: &Template, size: u32, design: (u32, u32)) {
    let Mapping::Quad(quad) = t.mapping() else {
        panic!("{} has no quad", t.product())
    };
    let k = f64::from(size) / f64::from(t.canvas_size().0.max(t.canvas_size().1));
    let quad = quad.map(|[x, y]| [x * k, y * k]);
    let (w, h) = design;
    let h_indep = dlt(
        [
            [0.0, 0.0],
            [f64::from(w), 0.0],
            [f64::from(w), f64::from(h)],
            [0.0, f64::from(h)],
        ],
        quad,
    );
    let blank = render_blank(t, &opts(t.colors()[0], size)).unwrap();
    let m = (w / 16).max(4);
    let centre = f64::from(m) / 2.0;
    let centres = [
        (centre, centre),
        (f64::from(w) - centre, centre),
        (f64::from(w) - centre, f64::from(h) - centre),
        (centre, f64::from(h) - centre),
    ];
    for (corner, (cx, cy)) in centres.iter().enumerate() {
        let design = corner_marker(w, h, m, corner);
        let img = render(t, &design, &opts(t.colors()[0], size)).unwrap();
        let (fx, fy, weight) = diff_centroid(&img, &blank);
        assert!(
            weight > 0.0,
            "{} corner {corner}: marker not visible",
            t.product()
        );
        let (ex, ey) = h_indep.apply(*cx, *cy);
        let err = (fx - ex).hypot(fy - ey);
        assert!(
            err < 0.5,
            "{} corner {corner}: found ({fx:.2},{fy:.2}) expected ({ex:.2},{ey:.2})",
            t.product()
        );
    }
    // The marker centres sit half a marker inside the corners, so the corners themselves are
    // where the same map sends the design's corners: the quad's corners.
    for (i, (x, y)) in [
        (0.0, 0.0),
        (f64::from(w), 0.0),
        (f64::from(w), f64::from(h)),
        (0.0, f64::from(h)),
    ]
    .into_iter()
    .enumerate()
    {
        let (px, py) = h_indep.apply(x, y);
        assert!((px - quad[i][0]).abs() < 1e-6 && (py - quad[i][1]).abs() < 1e-6);
    }
}

#[test]
fn quad_warp_custom_template_corners_land_on_quad() {
    let dir = tempfile::tempdir().unwrap();
    let quad = [[60.0, 50.0], [330.0, 72.0], [352.0, 262.0], [38.0, 240.0]];
    write_flat_template(dir.path(), "card", (400, 300), quad);
    let lib = MockupLibrary::load(Some(dir.path())).unwrap();
    // The design's aspect matches the 4 x 3 in print area, so `fit` fills it exactly.
    check_corner_markers(lib.template("card").unwrap(), 400, (320, 240));
}

#[test]
fn quad_warp_builtin_poster_corners_land_on_quad() {
    let lib = MockupLibrary::builtin();
    check_corner_markers(lib.template("poster").unwrap(), 600, (300, 400));
}

/// Red-channel centroid of each run of stripe pixels along row `y`.
fn stripe_centres(img: &RgbaImage, blank: &RgbaImage, y: u32) -> Vec<f64> {
    let mut centres = Vec::new();
    let (mut sum, mut weight) = (0.0, 0.0);
    for x in 0..img.width() {
        let d = f64::from(img.get_pixel(x, y).0[1].abs_diff(blank.get_pixel(x, y).0[1]));
        if d > 20.0 {
            sum += d * (f64::from(x) + 0.5);
            weight += d;
        } else if weight > 0.0 {
            centres.push(sum / weight);
            (sum, weight) = (0.0, 0.0);
        }
    }
    centres
}

#[test]
fn cylinder_mug_centre_line_stays_vertical() {
    let lib = MockupLibrary::builtin();
    let mug = lib.template("mug").unwrap();
    let size = 1000;
    let design = RgbaImage::from_fn(425, 350, |x, _| {
        if (206..219).contains(&x) {
            Rgba([200, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let img = render(mug, &design, &opts("white", size)).unwrap();
    let blank = render_blank(mug, &opts("white", size)).unwrap();
    let Mapping::Cylinder(c) = mug.mapping() else {
        panic!("mug is a cylinder")
    };
    let k = f64::from(size) / 2000.0;
    let centre = c.center_x * k;
    for v in [0.1, 0.3, 0.5, 0.7, 0.9] {
        let y = ((c.top + v * (c.bottom - c.top)) * k) as u32;
        let found = stripe_centres(&img, &blank, y);
        assert_eq!(found.len(), 1, "row {y}: {found:?}");
        assert!(
            (found[0] - centre).abs() < 0.5,
            "row {y}: {} vs {centre}",
            found[0]
        );
    }
}

#[test]
fn cylinder_mug_stripes_narrow_towards_the_edges() {
    let lib = MockupLibrary::builtin();
    let mug = lib.template("mug").unwrap();
    let size = 1000;
    // Eleven evenly spaced stripes across the whole print width.
    let design = RgbaImage::from_fn(440, 350, |x, _| {
        if x % 40 >= 17 && x % 40 < 23 {
            Rgba([200, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    });
    let opts = RenderOptions {
        fit: Fit::Cover,
        ..opts("white", size)
    };
    let img = render(mug, &design, &opts).unwrap();
    let blank = render_blank(mug, &opts).unwrap();
    let Mapping::Cylinder(c) = mug.mapping() else {
        panic!("mug is a cylinder")
    };
    let y = ((c.top + c.bottom) / 2.0 * f64::from(size) / 2000.0) as u32;
    let xs = stripe_centres(&img, &blank, y);
    assert_eq!(xs.len(), 11, "{xs:?}");
    let gaps: Vec<f64> = xs.windows(2).map(|p| p[1] - p[0]).collect();
    // Ten gaps: 0..5 left of the centre stripe, 5..10 right of it.
    let mid = gaps.len() / 2;
    for i in 0..mid - 1 {
        assert!(
            gaps[i] < gaps[i + 1],
            "left side must widen towards the middle: {gaps:?}"
        );
    }
    for i in mid..gaps.len() - 1 {
        assert!(
            gaps[i] > gaps[i + 1],
            "right side must narrow towards the edge: {gaps:?}"
        );
    }
}

#[test]
fn transparent_design_leaves_every_product_untouched() {
    let lib = MockupLibrary::load(Some(&fixture_dir())).unwrap();
    let clear = RgbaImage::new(300, 200);
    for product in lib.products() {
        let t = lib.template(product).unwrap();
        for color in t.colors() {
            let o = opts(color, 96);
            let img = render(t, &clear, &o).unwrap();
            assert!(img == render_blank(t, &o).unwrap(), "{product} {color}");
        }
    }
}

#[test]
fn every_builtin_renders_in_every_colour() {
    let lib = MockupLibrary::builtin();
    assert_eq!(
        lib.products(),
        [
            "hoodie",
            "mug",
            "phone_case",
            "poster",
            "tote_bag",
            "tshirt"
        ]
    );
    let design = badge_design(200);
    for product in lib.products() {
        let t = lib.template(product).unwrap();
        assert!(t.colors().contains(&"white") && t.colors().contains(&"black"));
        assert!(t.colors().len() >= 3, "{product}");
        let mut renders = Vec::new();
        for color in t.colors() {
            let img = render(t, &design, &opts(color, 96)).unwrap();
            assert_eq!(img.dimensions(), (96, 96), "{product} {color}");
            renders.push(img);
        }
        for pair in renders.windows(2) {
            assert!(pair[0] != pair[1], "{product}: two colours render the same");
        }
    }
}

#[test]
fn shading_modulates_a_flat_design_within_bounds() {
    let lib = MockupLibrary::builtin();
    let flat = RgbaImage::from_pixel(64, 64, Rgba([128, 128, 128, 255]));
    for product in lib.products() {
        let t = lib.template(product).unwrap();
        let size = 400;
        let o = RenderOptions {
            fit: Fit::Cover,
            ..opts("white", size)
        };
        let img = render(t, &flat, &o).unwrap();
        let blank = render_blank(t, &o).unwrap();
        let k = f64::from(size) / 2000.0;
        let (x0, y0, x1, y1) = match t.mapping() {
            Mapping::Quad(q) => {
                let xs = q.map(|p| p[0] * k);
                let ys = q.map(|p| p[1] * k);
                (
                    xs[0].max(xs[3]),
                    ys[0].max(ys[1]),
                    xs[1].min(xs[2]),
                    ys[2].min(ys[3]),
                )
            }
            Mapping::Cylinder(c) => {
                let half = c.radius * (c.arc / 2.0).sin() * k;
                (
                    c.center_x * k - half,
                    c.top * k,
                    c.center_x * k + half,
                    c.bottom * k,
                )
            }
        };
        // The inner 80 % of the print area, away from the mask's edges.
        let (mx, my) = ((x1 - x0) * 0.1, (y1 - y0) * 0.1);
        let mut lum = Vec::new();
        for y in (y0 + my) as u32..(y1 - my) as u32 {
            for x in (x0 + mx) as u32..(x1 - mx) as u32 {
                let p = img.get_pixel(x, y).0;
                if p == blank.get_pixel(x, y).0 {
                    continue; // masked out (camera cut-out, drawstrings)
                }
                lum.push(
                    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]),
                );
            }
        }
        let mean = lum.iter().sum::<f64>() / lum.len() as f64;
        let var = lum.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / lum.len() as f64;
        assert!(
            var > 0.5,
            "{product}: shading does not show (variance {var:.2})"
        );
        assert!(
            var.sqrt() < 40.0,
            "{product}: shading too strong (std {:.1})",
            var.sqrt()
        );
        assert!((60.0..200.0).contains(&mean), "{product}: mean {mean:.1}");
    }
}
