//! Mockup templates end to end: manifest errors, the custom template fixture, small golden
//! images and the demo assets.
//!
//! Regenerate the golden images, the custom template fixture, `events/assets/design.png` and
//! `docs/mockups.png` with:
//!
//! ```text
//! MERCHGEN_UPDATE_GOLDEN=1 cargo test --test mockups_templates
//! ```

use crate::support;

use image::{Rgba, RgbaImage};
use merchgen::mockup::{render, render_blank, Fit, Homography, MockupLibrary, RenderOptions};
use std::path::Path;
use support::mockups::{
    badge_design, diff_centroid, dlt, fixture_dir, manifest_json, opts, update_golden,
    write_canvas_bag, write_flat_template,
};

#[test]
fn bad_manifests_name_the_file_and_field() {
    let quad = [[10.0, 10.0], [90.0, 10.0], [90.0, 70.0], [10.0, 70.0]];
    let good = manifest_json("bad", (100, 80), quad, "{\"white\": \"#fff\"}");
    let cases: Vec<(&str, String)> = vec![
        (
            "layers.base: cannot read",
            good.replace("base.png", "missing.png"),
        ),
        (
            "not convex",
            good.replace("[90.0,70.0],[10.0,70.0]", "[10.0,70.0],[90.0,70.0]"),
        ),
        (
            "counter-clockwise",
            good.replace(
                "[[10.0,10.0],[90.0,10.0],[90.0,70.0],[10.0,70.0]]",
                "[[10.0,10.0],[10.0,70.0],[90.0,70.0],[90.0,10.0]]",
            ),
        ),
        (
            "first corner must be the top-left",
            good.replace(
                "[[10.0,10.0],[90.0,10.0],[90.0,70.0],[10.0,70.0]]",
                "[[90.0,10.0],[90.0,70.0],[10.0,70.0],[10.0,10.0]]",
            ),
        ),
        (
            "print_area.corners: the print area reaches outside the 100x80 canvas",
            good.replace("[90.0,70.0]", "[90.0,95.0]"),
        ),
        (
            "colors.white: \"#ffg\" is not a colour",
            good.replace("#fff", "#ffg"),
        ),
        (
            "version: unsupported manifest version 2",
            good.replace("\"version\":1", "\"version\":2"),
        ),
        (
            "unknown field `canvass`",
            good.replace("\"canvas\"", "\"canvass\""),
        ),
        (
            "layers.base: cannot read",
            good.replace("base.png", "notes.txt"),
        ),
    ];
    for (want, json) in cases {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("bad");
        std::fs::create_dir_all(&folder).unwrap();
        RgbaImage::from_pixel(100, 80, Rgba([9, 9, 9, 255]))
            .save(folder.join("base.png"))
            .unwrap();
        std::fs::write(folder.join("notes.txt"), "not an image").unwrap();
        std::fs::write(folder.join("manifest.json"), &json).unwrap();
        let err = MockupLibrary::load(Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "want {want:?} in {err:?}");
        assert!(err.contains("bad/manifest.json"), "file not named: {err}");
    }
}

#[test]
fn layer_of_wrong_size_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    write_flat_template(
        dir.path(),
        "small",
        (100, 80),
        [[10.0, 10.0], [90.0, 10.0], [90.0, 70.0], [10.0, 70.0]],
    );
    RgbaImage::new(50, 50)
        .save(dir.path().join("small/base.png"))
        .unwrap();
    let err = MockupLibrary::load(Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("layers.base") && err.contains("50x50"),
        "{err}"
    );
}

#[test]
fn custom_fixture_template_loads_and_renders() {
    let dir = fixture_dir();
    if update_golden() {
        write_canvas_bag(&dir.join("canvas_bag"));
    }
    let lib = MockupLibrary::load(Some(&dir)).unwrap();
    assert!(lib.products().contains(&"canvas_bag"));
    let t = lib.template("canvas_bag").unwrap();
    assert_eq!(t.canvas_size(), (800, 800));
    let design = badge_design(300);
    let img = render(t, &design, &opts("natural", 400)).unwrap();
    let blank = render_blank(t, &opts("natural", 400)).unwrap();
    let (_, _, weight) = diff_centroid(&img, &blank);
    assert!(weight > 1000.0);
    // Rendering at the canvas size uses the loaded layers as they are.
    let full = render(
        t,
        &design,
        &RenderOptions {
            color: "kraft".into(),
            size: None,
            fit: Fit::Fit,
        },
    )
    .unwrap();
    assert_eq!(full.dimensions(), (800, 800));
}

/// Mean absolute difference per channel between two images of the same size.
fn mean_abs_diff(a: &RgbaImage, b: &RgbaImage) -> f64 {
    let total: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    total as f64 / a.as_raw().len() as f64
}

#[test]
fn golden_renders_match_within_tolerance() {
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let lib = MockupLibrary::builtin();
    let design = badge_design(256);
    for product in lib.products() {
        let t = lib.template(product).unwrap();
        for color in ["white", "black"] {
            let img = render(t, &design, &opts(color, 128)).unwrap();
            let path = golden.join(format!("{product}-{color}.png"));
            if update_golden() {
                std::fs::create_dir_all(&golden).unwrap();
                img.save(&path).unwrap();
                continue;
            }
            let want = image::open(&path)
                .unwrap_or_else(|e| {
                    panic!("{}: {e}; run with MERCHGEN_UPDATE_GOLDEN=1", path.display())
                })
                .to_rgba8();
            let d = mean_abs_diff(&img, &want);
            assert!(
                d < 1.0,
                "{product}-{color}: mean abs diff {d:.3} (MERCHGEN_UPDATE_GOLDEN=1 regenerates)"
            );
        }
    }
}

#[test]
fn demo_assets_regenerate_on_request() {
    if !update_golden() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("events/assets")).unwrap();
    let design = badge_design(1024);
    design.save(root.join("events/assets/design.png")).unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    support::mockups::contact_sheet(&MockupLibrary::builtin(), &design, 300)
        .save(root.join("docs/mockups.png"))
        .unwrap();
}

#[test]
fn homography_from_library_matches_independent_solve() {
    let quad = [
        [100.0, 120.0],
        [900.0, 80.0],
        [950.0, 1000.0],
        [60.0, 940.0],
    ];
    let ours = Homography::rect_to_quad(300.0, 400.0, &quad).unwrap();
    let theirs = dlt(
        [[0.0, 0.0], [300.0, 0.0], [300.0, 400.0], [0.0, 400.0]],
        quad,
    );
    for p in [(10.0, 10.0), (150.0, 200.0), (290.0, 390.0)] {
        let (a, b) = (ours.apply(p.0, p.1), theirs.apply(p.0, p.1));
        assert!((a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6);
    }
}
