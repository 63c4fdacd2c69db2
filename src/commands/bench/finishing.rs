//! `merchgen bench finishing`: the print-ready stages on one design: matting (mask and cut-out),
//! x4 upscale (tiled), and a t-shirt print file at 300 DPI from the upscaled design, each timed
//! over a few runs after a warm-up, with peak memory. Weights come from files: the tiny models of
//! `merchgen models tiny`, full-size random ones (`bench/finishing_random.py` writes them), or
//! real ones from the cache.

use super::memory::PeakMemory;
use crate::cli::FinishingBench;
use crate::config::Config;
use crate::engine::files::net_presets::{self, NetRole};
use crate::engine::matting::{self, Matting};
use crate::engine::upscale::{TileOptions, Upscaler};
use crate::mockup::{self, Fit, MockupLibrary};
use anyhow::{Context, Result};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// Best and median of a stage's runs, in milliseconds.
fn summary(runs: &[f64]) -> serde_json::Value {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    serde_json::json!({"best_ms": sorted.first(), "median_ms": sorted.get(sorted.len() / 2), "runs_ms": runs})
}

pub(crate) fn run(config: &Config, b: &FinishingBench) -> Result<()> {
    let device = crate::engine::device::open(&config.device)?;
    let hub = config.hub_settings();
    let mat_path = net_presets::resolve(&config.matting_model, NetRole::Matting, &hub, false)?;
    let up_path = net_presets::resolve(&config.upscale_model, NetRole::Upscale, &hub, false)?;
    let memory = PeakMemory::start(&device);
    let t = Instant::now();
    let matting = Matting::load(&mat_path, &device)
        .with_context(|| format!("loading {}", mat_path.display()))?;
    let matting_load_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let upscaler = Upscaler::load(&up_path, &device)
        .with_context(|| format!("loading {}", up_path.display()))?;
    let upscale_load_ms = t.elapsed().as_secs_f64() * 1e3;
    let design = sample_design(b.size)?;
    let tiles = TileOptions {
        tile: config.upscale_tile,
        overlap: config.upscale_tile_overlap,
    };
    let library = MockupLibrary::builtin();
    let tshirt = library.template("tshirt").context("the built-in t-shirt")?;
    let cancel = AtomicBool::new(false);
    let (mut cut_ms, mut up_ms, mut print_ms) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..=b.iterations {
        let t = Instant::now();
        let mask = matting.predict_mask(&design, &cancel)?;
        let cut = matting::apply_mask(&design, &mask);
        let cut_t = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let up = upscaler.upscale(&cut, &tiles, &cancel)?;
        let up_t = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let print = mockup::print_file(tshirt, &up, 300, Fit::Fit);
        let print_t = t.elapsed().as_secs_f64() * 1e3;
        if !b.json {
            let label = if i == 0 {
                "warm-up".to_owned()
            } else {
                format!("run {i}")
            };
            println!(
                "{label}: cut-out {cut_t:.1} ms, x{} upscale to {}x{} {up_t:.1} ms, print file {}x{} {print_t:.1} ms",
                upscaler.scale(),
                up.width(),
                up.height(),
                print.width(),
                print.height()
            );
        }
        if i > 0 {
            cut_ms.push(cut_t);
            up_ms.push(up_t);
            print_ms.push(print_t);
        }
    }
    let mem = memory.finish();
    let line = serde_json::json!({
        "bench": "finishing", "device": crate::engine::device::name(&device), "size": b.size,
        "matting": {"model": mat_path.display().to_string(), "arch": matting.arch(), "load_ms": matting_load_ms},
        "upscaler": {"model": up_path.display().to_string(), "arch": upscaler.arch(), "scale": upscaler.scale(),
                     "load_ms": upscale_load_ms, "tile": tiles.tile, "overlap": tiles.overlap},
        "cutout": summary(&cut_ms), "upscale": summary(&up_ms), "print_file": summary(&print_ms),
        "memory": mem,
    });
    if b.json {
        println!("{line}");
    } else {
        println!("{}", serde_json::to_string_pretty(&line)?);
    }
    Ok(())
}

/// The sample design at `size`.
fn sample_design(size: u32) -> Result<RgbaImage> {
    let path = "events/assets/design-on-white.png";
    let img = image::open(path)
        .with_context(|| format!("reading the sample design {path}"))?
        .to_rgba8();
    Ok(mockup::resize_rgba(&img, size, size))
}
