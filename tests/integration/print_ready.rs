//! Print-ready designs through the whole worker, on the tiny random-weight models written in
//! their real formats: background removal (matting model and the model-free flat cut-out),
//! super-resolution, print files of exact size and DPI, mockups of every variation, the pixel
//! budget, and the bad inputs of each, after which the worker keeps serving.

use crate::support;

use base64::Engine as _;
use image::{Rgba, RgbaImage};
use merchgen::app::Door;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::engine::{matting, upscale};
use merchgen::job::outcome::JobOutcome;
use merchgen::mockup::MockupLibrary;
use merchgen::worker::{JobRequest, Worker};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The tiny FLUX plus tiny matting and upscaling models under `dir`.
struct TinyModels {
    flux: PathBuf,
    matting: PathBuf,
    x4: PathBuf,
    x2: PathBuf,
}

fn tiny_models(dir: &Path, seed: u64) -> TinyModels {
    let flux = tiny::write(&dir.join("model"), seed, TinyLayout::Folder).unwrap();
    let mats = matting::write_tiny(&dir.join("matting"), seed).unwrap();
    let ups = upscale::write_tiny(&dir.join("upscale"), seed).unwrap();
    let named = |files: &[PathBuf], name: &str| {
        files
            .iter()
            .find(|f| f.file_name().is_some_and(|n| n == name))
            .unwrap_or_else(|| panic!("tiny {name} written: {files:?}"))
            .clone()
    };
    TinyModels {
        flux,
        matting: named(&mats, "u2netp.pth"),
        x4: named(&ups, "RealESRGAN_x4plus.pth"),
        x2: named(&ups, "RealESRGAN_x2plus.pth"),
    }
}

async fn worker_with(models: &TinyModels, out: &Path, extra: &[&str]) -> Worker {
    let defaults = [
        ("--matting-model", models.matting.to_str().unwrap()),
        ("--upscale-model", models.x4.to_str().unwrap()),
        ("--upscale-x2-model", models.x2.to_str().unwrap()),
        ("--upscale-tile", "48"),
        ("--upscale-tile-overlap", "8"),
    ];
    // `extra` may override a default flag.
    let mut args: Vec<&str> = extra.to_vec();
    for (flag, value) in defaults {
        if !extra.contains(&flag) {
            args.extend([flag, value]);
        }
    }
    let cli = support::workers::cli(&models.flux, &args);
    support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await
}

/// A red disc on a plain off-white background, as a base64 PNG.
fn disc_design(size: u32) -> String {
    let c = size as f32 / 2.0;
    let img = RgbaImage::from_fn(size, size, |x, y| {
        let d = ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - c).powi(2)).sqrt();
        if d < size as f32 / 3.0 {
            Rgba([210, 30, 30, 255])
        } else {
            Rgba([248, 248, 246, 255])
        }
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

fn read_rgba(path: &Path) -> RgbaImage {
    image::open(path).unwrap().to_rgba8()
}

fn png_dpi(path: &Path) -> u32 {
    let file = std::fs::File::open(path).unwrap();
    let reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let dims = reader.info().pixel_dims.expect("pHYs chunk present");
    assert_eq!(dims.unit, png::Unit::Meter);
    (f64::from(dims.xppu) * 0.0254).round() as u32
}

async fn run(worker: &Worker, job: Value) -> JobOutcome {
    worker.handle(JobRequest::new(job, "delivery")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_cutout_design_lets_the_shirt_show_through() {
    let dir = tempfile::tempdir().unwrap();
    let models = tiny_models(dir.path(), 1);
    let out = dir.path().join("out");
    let worker = worker_with(&models, &out, &[]).await;
    let design = disc_design(96);
    let job = |id: &str, background: &str| {
        json!({"id": id, "design": {"base64": design}, "background": background,
               "mockups": {"products": ["tshirt"], "colors": ["black"], "format": "png", "size": 512}})
    };
    let cut = run(&worker, job("cut", "remove_flat")).await;
    assert!(cut.succeeded(), "{cut:?}");
    let kept = run(&worker, job("kept", "keep")).await;
    assert!(kept.succeeded(), "{kept:?}");
    assert!(cut.timings_ms.as_ref().unwrap().remove_flat.is_some());

    // The cut-out design is stored with alpha: transparent corners, opaque centre.
    assert_eq!(cut.images.len(), 1);
    let stored = read_rgba(&out.join("cut/images/0.png"));
    assert_eq!(stored.get_pixel(0, 0).0[3], 0);
    assert_eq!(stored.get_pixel(48, 48).0[3], 255);

    // Outside the disc the cut-out mockup shows the black shirt, the opaque one the white square.
    let a = read_rgba(&out.join("cut/mockups/tshirt-black.png"));
    let b = read_rgba(&out.join("kept/mockups/tshirt-black.png"));
    assert_eq!(a.dimensions(), b.dimensions());
    let luma = |p: &Rgba<u8>| u32::from(p.0[0]) + u32::from(p.0[1]) + u32::from(p.0[2]);
    let (mut brighter, mut differing) = (0u64, 0u64);
    for (pa, pb) in a.pixels().zip(b.pixels()) {
        if pa != pb {
            differing += 1;
            if luma(pb) > luma(pa) + 150 {
                brighter += 1;
            }
        }
    }
    assert!(differing > 1000, "{differing} pixels differ");
    assert!(
        brighter * 2 > differing,
        "the opaque square is brighter where the cut-out shows the shirt ({brighter}/{differing})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_designs_cut_out_upscaled_printed_and_mocked_up_per_variation() {
    let dir = tempfile::tempdir().unwrap();
    let models = tiny_models(dir.path(), 2);
    let out = dir.path().join("out");
    let worker = worker_with(&models, &out, &[]).await;
    let job = json!({
        "id": "print-1", "prompt": "a fox", "width": 64, "height": 64, "num_images": 2, "seed": 3,
        "background": "remove", "upscale": 4,
        "mockups": {"products": ["tshirt", "mug", "tshirt"], "colors": ["white", "white"],
                    "size": 256, "print_files": true},
        "output": {"print_dpi": 100}
    });
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let t = outcome.timings_ms.clone().unwrap();
    assert!(t.matting.is_some() && t.matting_load.is_some(), "{t:?}");
    assert!(t.upscale.is_some() && t.upscale_load.is_some(), "{t:?}");

    // Stored images: x4, with the matting model's alpha.
    assert_eq!(outcome.images.len(), 2);
    for (i, img) in outcome.images.iter().enumerate() {
        assert_eq!((img.width, img.height), (256, 256));
        let decoded = read_rgba(&out.join(format!("print-1/images/{i}.png")));
        assert_eq!(decoded.dimensions(), (256, 256));
        assert!(
            decoded.pixels().any(|p| p.0[3] < 255),
            "image {i} has alpha"
        );
    }

    // Every variation has its own mockups; tshirt and white asked twice are rendered once.
    let lib = MockupLibrary::builtin();
    let (pw, ph) = lib.template("tshirt").unwrap().print_size_px(100);
    assert_eq!(outcome.mockups.len(), 2 * 4, "{:?}", outcome.mockups);
    for i in 0..2u32 {
        for key in [
            format!("print-1/mockups/{i}/tshirt-white.jpg"),
            format!("print-1/mockups/{i}/mug-white.jpg"),
        ] {
            assert!(out.join(&key).is_file(), "{key}");
        }
        let print = out.join(format!("print-1/print/{i}/tshirt.png"));
        let img = read_rgba(&print);
        assert_eq!(
            img.dimensions(),
            (pw, ph),
            "print file is the print area at 100 DPI"
        );
        assert_eq!(png_dpi(&print), 100);
        assert!(
            img.pixels().any(|p| p.0[3] == 0),
            "transparent where the design is not"
        );
        let shown: Vec<u32> = outcome
            .mockups
            .iter()
            .filter(|m| m.image == i)
            .map(|m| m.image)
            .collect();
        assert_eq!(shown.len(), 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upscale_two_and_one_image_jobs_keep_the_old_keys() {
    let dir = tempfile::tempdir().unwrap();
    let models = tiny_models(dir.path(), 3);
    let out = dir.path().join("out");
    let worker = worker_with(&models, &out, &[]).await;
    let job = json!({"id": "one", "prompt": "x", "width": 64, "height": 64, "upscale": 2,
                     "mockups": {"products": ["mug"], "colors": ["white"], "size": 128, "print_files": true}});
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(
        (outcome.images[0].width, outcome.images[0].height),
        (128, 128)
    );
    assert!(out.join("one/mockups/mug-white.jpg").is_file());
    assert!(out.join("one/print/mug.png").is_file());
    assert!(outcome.mockups.iter().all(|m| m.image == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_print_ready_inputs_fail_clearly_and_the_worker_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let models = tiny_models(dir.path(), 4);
    let out = dir.path().join("out");
    let not_a_model = dir.path().join("u2net.pth");
    std::fs::write(&not_a_model, b"this is not a pytorch checkpoint").unwrap();
    let missing = dir.path().join("nowhere/isnet-general-use.pth");
    let worker = worker_with(&models, &out, &["--max-job-pixels", "2000000"]).await;
    let bad_mat = worker_with(
        &models,
        &out,
        &["--matting-model", not_a_model.to_str().unwrap()],
    )
    .await;
    let no_mat = worker_with(
        &models,
        &out,
        &["--matting-model", missing.to_str().unwrap()],
    )
    .await;

    let expect = |o: &JobOutcome, code: &str, field: Option<&str>, says: &str| {
        let e = o.error.as_ref().unwrap_or_else(|| panic!("failed: {o:?}"));
        assert_eq!(e.code.as_str(), code, "{e:?}");
        assert_eq!(e.field.as_deref(), field, "{e:?}");
        assert!(e.message.contains(says), "{e:?} should say {says}");
    };
    let base = json!({"prompt": "x", "width": 64, "height": 64});
    let with = |extra: Value| {
        let mut job = base.clone();
        job.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        job
    };
    expect(
        &run(&worker, with(json!({"background": "erase"}))).await,
        "invalid_input",
        Some("background"),
        "erase",
    );
    expect(
        &run(&worker, with(json!({"upscale": 3}))).await,
        "invalid_input",
        Some("upscale"),
        "2 or 4",
    );
    expect(
        &run(&worker, with(json!({"num_images": 8, "upscale": 4, "mockups": {"products": ["poster"], "print_files": true}}))).await,
        "invalid_input",
        Some("output.print_dpi"),
        "megapixels",
    );
    expect(
        &run(&no_mat, with(json!({"background": "remove"}))).await,
        "model_unavailable",
        None,
        "isnet-general-use.pth",
    );
    let o = run(&no_mat, with(json!({"background": "remove"}))).await;
    assert!(o.error.unwrap().message.contains("merchgen models fetch"));
    expect(
        &run(&bad_mat, with(json!({"background": "remove"}))).await,
        "model_unavailable",
        None,
        "u2net.pth",
    );
    // Each worker serves the next good job.
    for w in [&worker, &bad_mat, &no_mat] {
        let ok = run(w, with(json!({"background": "remove_flat", "upscale": 2}))).await;
        assert!(ok.succeeded(), "{ok:?}");
        assert_eq!(ok.images[0].width, 128);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_variations_each_get_their_print_deliverables() {
    let dir = tempfile::tempdir().unwrap();
    let models = tiny_models(dir.path(), 4);
    let out = dir.path().join("out");
    let worker = worker_with(&models, &out, &[]).await;
    let job = json!({
        "id": "shop", "prompt": "a fox sticker", "style": "sticker", "width": 64, "height": 64,
        "num_images": 2, "seed": 5,
        "print": {"size_in": {"width": 1, "height": 1},
                  "vector": {"colors": 4, "detail": "low"},
                  "sticker": {"border_mm": 2, "bleed_mm": 0.5},
                  "separations": {"inks": 3, "underbase": true}},
        "output": {"print_dpi": 150}
    });
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let t = outcome.timings_ms.clone().unwrap();
    assert!(
        t.print_vector.is_some() && t.print_sticker.is_some() && t.print_separations.is_some(),
        "{t:?}"
    );
    for i in 0..2u32 {
        for file in [
            "vector/design.svg",
            "sticker/sticker.png",
            "sticker/sticker.svg",
            "sticker/sticker.pdf",
            "separations/underbase.png",
            "separations/preview.png",
        ] {
            let key = format!("shop/print/{i}/{file}");
            assert!(out.join(&key).is_file(), "{key}");
            assert!(
                outcome.print.iter().any(|p| p.key == key && p.image == i),
                "{key} listed"
            );
        }
        let films = outcome
            .print
            .iter()
            .filter(|p| p.image == i && p.kind == "separation")
            .count();
        assert!((1..=3).contains(&films), "{films} films");
        let sticker = read_rgba(&out.join(format!("shop/print/{i}/sticker/sticker.png")));
        assert!(
            sticker.width() <= 150 && sticker.height() <= 150,
            "fits 1 in at 150 DPI"
        );
        assert_eq!(
            png_dpi(&out.join(format!("shop/print/{i}/sticker/sticker.png"))),
            150
        );
    }
}
