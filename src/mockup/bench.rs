//! Mockup benchmark (`merchgen bench mockups`): every built-in product rendered and JPEG-encoded
//! at a size, per product and all six together (one after another, and in parallel), plus the
//! perspective warp of one full frame alone, the figure to hold against OpenCV's
//! `warpPerspective` (`bench/warp_opencv.py` times the same quad and sizes).

use super::blend::Strengths;
use super::design::rasterize;
use super::kernel::{composite_with, simd_available, Maps, QuadMap};
use super::{render, Fit, MockupLibrary, RenderOptions};
use crate::encode::{encode, EncodeOptions, OutputFormat};
use image::RgbaImage;
use rayon::prelude::*;
use std::fmt;
use std::time::Instant;

/// The quad of the warp-only benchmark, as fractions of the frame (TL, TR, BR, BL): a
/// perspective view covering most of the frame. `bench/warp_opencv.py` uses the same numbers.
pub(crate) const WARP_QUAD: [[f64; 2]; 4] =
    [[0.05, 0.075], [0.95, 0.03], [0.975, 0.95], [0.02, 0.91]];

/// Best and median of repeated timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Timing {
    pub(crate) best_ms: f64,
    pub(crate) median_ms: f64,
}

impl Timing {
    fn of(mut samples: Vec<f64>) -> Timing {
        samples.sort_by(f64::total_cmp);
        Timing {
            best_ms: samples.first().copied().unwrap_or(0.0),
            median_ms: samples.get(samples.len() / 2).copied().unwrap_or(0.0),
        }
    }
}

/// One product's figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProductTiming {
    pub product: String,
    /// Compositing only.
    pub render: Timing,
    /// JPEG encoding only (quality 90).
    pub encode: Timing,
    /// Both.
    pub total: Timing,
    pub(crate) jpeg_bytes: usize,
}

/// What `run` measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BenchReport {
    pub size: u32,
    pub iterations: u32,
    pub design: (u32, u32),
    pub(crate) threads: usize,
    /// First render of every product, drawing the built-in layers (once per process and size).
    pub(crate) cold_ms: f64,
    /// Of `cold_ms`, drawing each product's layers (one product at a time, every core).
    pub(crate) cold_draw_ms: Vec<(String, f64)>,
    pub products: Vec<ProductTiming>,
    /// All products rendered and encoded one after another (each using every core).
    pub(crate) sequential: Timing,
    /// All products rendered and encoded at the same time.
    pub(crate) parallel: Timing,
    /// Preparing a `size` x `size` design for the warp (premultiply, pad).
    pub(crate) warp_prepare: Timing,
    /// Warping it onto a `size` x `size` frame through [`WARP_QUAD`] (the AVX2 pass where the
    /// CPU has it).
    pub(crate) warp: Timing,
    /// The same warp through the scalar pass, in the same run.
    pub(crate) warp_scalar: Timing,
    /// Whether `warp` ran the AVX2 pass.
    pub(crate) warp_simd: bool,
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

fn render_and_encode(
    lib: &MockupLibrary,
    product: &str,
    design: &RgbaImage,
    size: u32,
) -> (f64, f64, usize) {
    let template = lib
        .template(product)
        .expect("benchmarked products come from the library");
    let opts = RenderOptions {
        color: "white".into(),
        size: Some(size),
        fit: Fit::Fit,
    };
    let enc = EncodeOptions {
        format: OutputFormat::Jpeg,
        jpeg_quality: 90,
        dpi: None,
    };
    let t0 = Instant::now();
    let img = render(template, design, &opts).expect("white exists for every built-in");
    let render_ms = ms(t0);
    let t1 = Instant::now();
    let bytes = encode(&img, &enc).map(|b| b.len()).unwrap_or(0);
    (render_ms, ms(t1), bytes)
}

/// Time every built-in at `size` (longest side) with `design`, `iterations` times each.
pub(crate) fn run(design: &RgbaImage, size: u32, iterations: u32) -> BenchReport {
    let iterations = iterations.max(1);
    let lib = MockupLibrary::builtin();
    let products: Vec<&str> = lib.products();
    let t0 = Instant::now();
    let mut cold_draw_ms = Vec::with_capacity(products.len());
    for p in &products {
        let t = Instant::now();
        lib.template(p)
            .expect("benchmarked products come from the library")
            .prepared(Some(size));
        cold_draw_ms.push(((*p).to_owned(), ms(t)));
        render_and_encode(&lib, p, design, size);
    }
    let cold_ms = ms(t0);

    let mut samples = vec![(Vec::new(), Vec::new(), Vec::new(), 0usize); products.len()];
    let mut sequential = Vec::new();
    let mut parallel = Vec::new();
    for _ in 0..iterations {
        let t = Instant::now();
        for (p, s) in products.iter().zip(samples.iter_mut()) {
            let (r, e, bytes) = render_and_encode(&lib, p, design, size);
            s.0.push(r);
            s.1.push(e);
            s.2.push(r + e);
            s.3 = bytes;
        }
        sequential.push(ms(t));
        let t = Instant::now();
        products.par_iter().for_each(|p| {
            render_and_encode(&lib, p, design, size);
        });
        parallel.push(ms(t));
    }
    let (warp_prepare, warp) = time_warp(size, iterations, true);
    let (_, warp_scalar) = time_warp(size, iterations, false);
    BenchReport {
        size,
        iterations,
        design: design.dimensions(),
        threads: rayon::current_num_threads(),
        cold_ms,
        cold_draw_ms,
        products: products
            .iter()
            .zip(samples)
            .map(|(p, (r, e, t, bytes))| ProductTiming {
                product: (*p).to_owned(),
                render: Timing::of(r),
                encode: Timing::of(e),
                total: Timing::of(t),
                jpeg_bytes: bytes,
            })
            .collect(),
        sequential: Timing::of(sequential),
        parallel: Timing::of(parallel),
        warp_prepare,
        warp,
        warp_scalar,
        warp_simd: simd_available(),
    }
}

/// A busy `size` x `size` test pattern: colour ramps, a checkerboard and soft alpha.
pub(crate) fn test_design(size: u32) -> RgbaImage {
    RgbaImage::from_fn(size, size, |x, y| {
        let check = ((x / 64 + y / 64) % 2) as u8;
        let a = if (x / 256 + y / 256) % 3 == 0 {
            160
        } else {
            255
        };
        image::Rgba([
            (x * 255 / size) as u8,
            (y * 255 / size) as u8,
            60 + 120 * check,
            a,
        ])
    })
}

fn time_warp(size: u32, iterations: u32, simd: bool) -> (Timing, Timing) {
    let design = test_design(size);
    let n = size as usize;
    let quad = WARP_QUAD.map(|[x, y]| [x * f64::from(size), y * f64::from(size)]);
    let maps = Maps {
        mask: None,
        shading: None,
        highlight: None,
        displacement: None,
        displacement_px: 0.0,
        strengths: Strengths::new(0.0, 0.0),
    };
    let frame = RgbaImage::from_pixel(size, size, image::Rgba([0, 0, 0, 255]));
    let (mut prep, mut warp) = (Vec::new(), Vec::new());
    for _ in 0..iterations.max(3) {
        let t = Instant::now();
        let full = f64::from(size);
        let raster = rasterize(&design, [0, 0, size, size], (full, full));
        prep.push(ms(t));
        let mut out = frame.clone();
        let t = Instant::now();
        let map = QuadMap::new(&quad, [0.0, 0.0, 1.0, 1.0], raster.inner(), 0.0, (n, n))
            .expect("the benchmark quad is convex");
        composite_with(&mut out, &raster, &map, &maps, simd);
        warp.push(ms(t));
    }
    (Timing::of(prep), Timing::of(warp))
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (dw, dh) = self.design;
        writeln!(
            f,
            "mockups at {s}x{s}, design {dw}x{dh}, {} iterations, {} threads; JPEG q90",
            self.iterations,
            self.threads,
            s = self.size
        )?;
        writeln!(
            f,
            "cold (draw built-in layers + first render, all products): {:.1} ms",
            self.cold_ms
        )?;
        let draws: Vec<String> = self
            .cold_draw_ms
            .iter()
            .map(|(p, ms)| format!("{p} {ms:.0}"))
            .collect();
        writeln!(f, "  of which drawing the layers, ms: {}", draws.join(", "))?;
        writeln!(
            f,
            "{:<12} {:>14} {:>14} {:>14} {:>9}",
            "product", "render ms", "jpeg ms", "total ms", "jpeg KB"
        )?;
        writeln!(
            f,
            "{:<12} {:>14} {:>14} {:>14}",
            "", "best / median", "best / median", "best / median"
        )?;
        for p in &self.products {
            let t = |t: Timing| format!("{:.1} / {:.1}", t.best_ms, t.median_ms);
            writeln!(
                f,
                "{:<12} {:>14} {:>14} {:>14} {:>9}",
                p.product,
                t(p.render),
                t(p.encode),
                t(p.total),
                p.jpeg_bytes / 1024
            )?;
        }
        let t = |t: Timing| format!("best {:.1} ms, median {:.1} ms", t.best_ms, t.median_ms);
        writeln!(f, "all products, one after another: {}", t(self.sequential))?;
        writeln!(f, "all products, in parallel:       {}", t(self.parallel))?;
        writeln!(
            f,
            "warp prepare ({s}x{s} design):     {}",
            t(self.warp_prepare),
            s = self.size
        )?;
        writeln!(
            f,
            "perspective warp ({s}x{s} frame):  {} ({})",
            t(self.warp),
            if self.warp_simd {
                "AVX2 pass"
            } else {
                "scalar pass: no AVX2 here"
            },
            s = self.size
        )?;
        write!(
            f,
            "  the same, scalar pass:          {}",
            t(self.warp_scalar)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_of_samples_picks_best_and_median() {
        let t = Timing::of(vec![5.0, 1.0, 3.0]);
        assert_eq!((t.best_ms, t.median_ms), (1.0, 3.0));
    }

    #[test]
    fn run_small_size_reports_every_product() {
        let report = run(&test_design(64), 64, 1);
        assert_eq!(report.products.len(), 6);
        assert!(report.products.iter().all(|p| p.jpeg_bytes > 0));
        let text = report.to_string();
        assert!(text.contains("tote_bag") && text.contains("perspective warp"));
    }
}
