//! The `print` deliverables through the whole worker (a model-free worker: mockup-only jobs),
//! checked with tools no one here wrote: the sticker PDF by `qpdf --check` and Ghostscript's
//! separation device (a `CutContour` plate, the cut line `border_mm` outside the silhouette),
//! the vector SVG rendered by librsvg against the print file's silhouette, separations decoded
//! by the `png` crate, hard alpha and the sRGB chunk; then the bad inputs, after each of which
//! the worker serves the next job.

use crate::support;

use base64::Engine as _;
use image::{GrayImage, Rgba, RgbaImage};
use merchgen::app::Door;
use merchgen::job::outcome::{JobOutcome, PrintOutput};
use merchgen::worker::{JobRequest, Worker};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

async fn worker(out: &Path, extra: &[&str]) -> Worker {
    let cli = support::workers::cli(Path::new("none"), extra);
    merchgen::app::build_worker(&cli.config, None, Door::Invoke, out.display().to_string())
        .expect("a model-free worker builds")
}

async fn run(worker: &Worker, job: Value) -> JobOutcome {
    worker.handle(JobRequest::new(job, "delivery")).await
}

fn base64_png(img: &RgbaImage) -> String {
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// A red disc of radius `r` centred on a transparent square of `size`.
fn red_disc(size: u32, r: f32) -> RgbaImage {
    let c = size as f32 / 2.0;
    RgbaImage::from_fn(size, size, |x, y| {
        let d = ((x as f32 + 0.5 - c).powi(2) + (y as f32 + 0.5 - c).powi(2)).sqrt();
        if d <= r {
            Rgba([220, 20, 30, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
}

/// The repository's demo design (a flat badge in about ten colours), as a job would send it.
fn badge() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("events/assets/design.png");
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).unwrap())
}

fn file<'a>(outcome: &'a JobOutcome, kind: &str) -> &'a PrintOutput {
    outcome
        .print
        .iter()
        .find(|p| p.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", outcome.print))
}

fn local(out: &Path, p: &PrintOutput) -> PathBuf {
    out.join(&p.key)
}

fn gray(path: &Path) -> GrayImage {
    image::open(path).unwrap().to_luma8()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticker_pdf_cut_contour_lies_border_mm_outside_the_silhouette() {
    let (Some(qpdf), Some(gs)) = (support::peers::tool("qpdf"), support::peers::tool("gs")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = worker(&out, &[]).await;
    let job = json!({
        "id": "die-cut", "design": {"base64": base64_png(&red_disc(200, 70.0))},
        "print": {"size_in": {"width": 2, "height": 2},
                  "sticker": {"border_mm": 3, "bleed_mm": 1}},
        "output": {"print_dpi": 300}
    });
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert!(outcome.timings_ms.as_ref().unwrap().print_sticker.is_some());
    let pdf = local(&out, file(&outcome, "sticker_pdf"));
    assert_eq!(pdf.file_name().unwrap(), "sticker.pdf");
    assert!(out.join("die-cut/print/0/sticker/sticker.svg").is_file());
    assert!(out.join("die-cut/print/0/sticker/sticker.png").is_file());

    let check = Command::new(qpdf)
        .arg("--check")
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "qpdf --check: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Ghostscript's separations at 150 DPI: one TIFF per colorant, CutContour among them.
    let seps = dir.path().join("seps");
    std::fs::create_dir_all(&seps).unwrap();
    let gs_out = Command::new(gs)
        .args([
            "-q",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=tiffsep",
            "-sCompression=none",
            "-r150",
        ])
        .arg(format!("-sOutputFile={}", seps.join("s.tif").display()))
        .arg(&pdf)
        .output()
        .unwrap();
    assert!(gs_out.status.success(), "{gs_out:?}");
    let cut_plate = seps.join("s(CutContour).tif");
    assert!(
        cut_plate.is_file(),
        "no CutContour separation: {:?}",
        std::fs::read_dir(&seps).unwrap().collect::<Vec<_>>()
    );
    // tiffsep plates: 0 is full colorant, 255 none.
    let ink = |img: &GrayImage| -> Vec<(f64, f64)> {
        img.enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] < 128)
            .map(|(x, y, _)| (f64::from(x) + 0.5, f64::from(y) + 0.5))
            .collect()
    };
    let cut = ink(&gray(&cut_plate));
    let art = ink(&gray(&seps.join("s(Magenta).tif")));
    assert!(
        cut.len() > 100 && art.len() > 1000,
        "{} {}",
        cut.len(),
        art.len()
    );
    // The design is a disc: its centre and radius from the magenta plate.
    let n = art.len() as f64;
    let (cx, cy) = (
        art.iter().map(|p| p.0).sum::<f64>() / n,
        art.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let radius = (n / std::f64::consts::PI).sqrt();
    let px_per_mm = 150.0 / 25.4;
    for (x, y) in &cut {
        let d = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
        let off_mm = (d - radius) / px_per_mm;
        assert!(
            (off_mm - 3.0).abs() <= 0.5,
            "cut line {off_mm:.2} mm outside the silhouette at ({x}, {y})"
        );
    }
    // The page is the sticker: the disc (fitted to the print area) + 2 × (border + bleed).
    let p = file(&outcome, "sticker_pdf");
    let expected_mm = 2.0 * radius / px_per_mm + 2.0 * 4.0;
    for side in [p.width_mm, p.height_mm] {
        assert!((side - expected_mm).abs() < 0.5, "{side} vs {expected_mm}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vector_svg_rendered_by_librsvg_covers_the_print_file_in_few_colours() {
    let Some(rsvg) = support::peers::tool("rsvg-convert") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = worker(&out, &[]).await;
    let job = json!({
        "id": "vec", "design": {"base64": badge()},
        "mockups": {"products": ["tshirt"], "colors": ["white"], "size": 256, "print_files": true},
        "print": {"vector": {"colors": 6, "detail": "medium"}},
        "output": {"print_dpi": 72}
    });
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    let svg_file = file(&outcome, "vector");
    assert_eq!(svg_file.content_type, "image/svg+xml");
    assert!(svg_file.colors.len() <= 6 && svg_file.colors.len() >= 2);
    let svg = std::fs::read_to_string(local(&out, svg_file)).unwrap();
    let mut fills: Vec<&str> = svg.split("fill=\"").skip(1).map(|s| &s[..7]).collect();
    fills.sort_unstable();
    fills.dedup();
    assert!(fills.len() <= 6, "{fills:?}");

    let print = image::open(out.join("vec/print/tshirt.png"))
        .unwrap()
        .to_rgba8();
    let (w, h) = print.dimensions();
    assert_eq!((svg_file.width, svg_file.height), (w, h));
    let rendered = dir.path().join("vec.png");
    let status = Command::new(rsvg)
        .args(["-w", &w.to_string(), "-h", &h.to_string(), "-o"])
        .arg(&rendered)
        .arg(local(&out, svg_file))
        .status()
        .unwrap();
    assert!(status.success());
    let drawn = image::open(&rendered).unwrap().to_rgba8();
    assert_eq!(drawn.dimensions(), (w, h));
    let (mut both, mut either) = (0u64, 0u64);
    for (a, b) in print.pixels().zip(drawn.pixels()) {
        let (a, b) = (a.0[3] >= 128, b.0[3] >= 128);
        both += u64::from(a && b);
        either += u64::from(a || b);
    }
    let iou = both as f64 / either as f64;
    assert!(iou >= 0.95, "silhouette IoU {iou:.4}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separations_partition_the_opaque_area_under_an_underbase() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = worker(&out, &[]).await;
    let job = json!({
        "id": "seps", "design": {"base64": badge()},
        "mockups": {"products": ["tshirt"], "colors": ["black"], "size": 256, "print_files": true},
        "print": {"separations": {"inks": 4, "underbase": true, "underbase_choke_px": 2}},
        "output": {"print_dpi": 72}
    });
    let outcome = run(&worker, job).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert!(outcome
        .timings_ms
        .as_ref()
        .unwrap()
        .print_separations
        .is_some());
    // The print file is the same design on the same area: its opaque pixels are the inks'.
    let print = image::open(out.join("seps/print/tshirt.png"))
        .unwrap()
        .to_rgba8();
    let films: Vec<&PrintOutput> = outcome
        .print
        .iter()
        .filter(|p| p.kind == "separation")
        .collect();
    assert!(!films.is_empty() && films.len() <= 4, "{films:?}");
    let layers: Vec<GrayImage> = films.iter().map(|f| gray(&local(&out, f))).collect();
    for (f, layer) in films.iter().zip(&layers) {
        assert_eq!(layer.dimensions(), print.dimensions());
        assert!(f
            .ink
            .as_ref()
            .is_some_and(|c| c.len() == 7 && c.starts_with('#')));
        let ink = layer.pixels().filter(|p| p.0[0] == 0).count() as f64;
        let share = ink / f64::from(layer.width() * layer.height());
        assert!((f.coverage.unwrap() - share).abs() < 1e-4, "{f:?}");
    }
    let under = gray(&local(&out, file(&outcome, "underbase")));
    let (mut opaque, mut underbase) = (0u64, 0u64);
    for (x, y, p) in print.enumerate_pixels() {
        let inked = layers
            .iter()
            .filter(|l| l.get_pixel(x, y).0[0] == 0)
            .count();
        let is_opaque = p.0[3] >= 128;
        assert_eq!(inked, usize::from(is_opaque), "({x}, {y}) alpha {}", p.0[3]);
        if under.get_pixel(x, y).0[0] == 0 {
            assert!(
                is_opaque,
                "the underbase lies inside the opaque area at ({x}, {y})"
            );
            underbase += 1;
        }
        opaque += u64::from(is_opaque);
    }
    assert!(
        underbase > 0 && underbase < opaque,
        "{underbase} of {opaque}"
    );
    let preview = file(&outcome, "separation_preview");
    assert_eq!(preview.colors.len(), films.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_alpha_print_files_are_binary_and_say_srgb() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = worker(&out, &[]).await;
    let job = |id: &str, print: Value| {
        json!({
            "id": id, "design": {"base64": badge()}, "print": print,
            "mockups": {"products": ["tshirt"], "colors": ["black"], "size": 256, "print_files": true},
            "output": {"print_dpi": 72}
        })
    };
    let hard = run(
        &worker,
        job(
            "hard",
            json!({"alpha": "hard", "alpha_choke_px": 1, "alpha_min_feature_mm": 0.5}),
        ),
    )
    .await;
    assert!(hard.succeeded(), "{hard:?}");
    assert!(hard.timings_ms.as_ref().unwrap().print_alpha.is_some());
    let soft = run(
        &worker,
        job("soft", json!({"alpha": "soft", "vector": {"colors": 2}})),
    )
    .await;
    assert!(soft.succeeded(), "{soft:?}");
    for (id, binary) in [("hard", true), ("soft", false)] {
        let path = out.join(format!("{id}/print/tshirt.png"));
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert!(
            reader.info().srgb.is_some(),
            "{id}: the print file says sRGB"
        );
        let img = image::open(&path).unwrap().to_rgba8();
        let partial = img
            .pixels()
            .filter(|p| p.0[3] != 0 && p.0[3] != 255)
            .count();
        assert_eq!(
            partial == 0,
            binary,
            "{id}: {partial} partly transparent pixels"
        );
        assert!(img.pixels().any(|p| p.0[3] == 255));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_print_inputs_name_their_field_and_the_worker_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let worker = worker(&out, &["--max-job-pixels", "20000000"]).await;
    let disc = base64_png(&red_disc(64, 20.0));
    let cases = [
        (
            json!({"id": "b1", "design": {"base64": disc}, "print": {"size_in": {"width": 2, "height": 2}, "vector": {"colors": 17}}}),
            "print.vector.colors",
        ),
        (
            json!({"id": "b2", "design": {"base64": disc}, "print": {"size_in": {"width": 0.5, "height": 0.5}, "sticker": {"border_mm": 6}}}),
            "print.sticker.border_mm",
        ),
        (
            json!({"id": "b3", "design": {"base64": base64_png(&RgbaImage::new(32, 32))}, "print": {"size_in": {"width": 2, "height": 2}, "separations": {"inks": 3}}}),
            "print.separations",
        ),
        (
            json!({"id": "b4", "design": {"base64": disc}, "print": {"size_in": {"width": 20, "height": 20}, "separations": {"inks": 8}}}),
            "print.separations",
        ),
        (
            json!({"id": "b5", "design": {"base64": disc}, "print": {"product": "spaceship", "vector": {}}}),
            "print.product",
        ),
    ];
    for (job, field) in cases {
        let outcome = run(&worker, job.clone()).await;
        let e = outcome
            .error
            .clone()
            .unwrap_or_else(|| panic!("{job} passed"));
        assert_eq!(e.field.as_deref(), Some(field), "{job}: {e:?}");
        assert_eq!(serde_json::to_value(e.code).unwrap(), "invalid_input");
    }
    let good = json!({"id": "ok", "design": {"base64": disc},
        "print": {"size_in": {"width": 1, "height": 1}, "sticker": {}, "vector": {"colors": 2}}});
    let outcome = run(&worker, good).await;
    assert!(outcome.succeeded(), "{outcome:?}");
    assert_eq!(outcome.print.len(), 4);
}
