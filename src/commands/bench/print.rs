//! `merchgen bench print`: the `print` deliverables of one design on a product's print area,
//! through the worker's own print stage (the job validated as any job is, the plan, each kind
//! made and encoded): vector SVG, die-cut sticker (PNG, SVG, PDF), separations with underbase,
//! and hard alpha of the print file. Each is timed over a few runs after a warm-up, with its
//! peak resident memory. `--write-traced-input` writes the tracer's input for a reference run.

use super::memory::PeakMemory;
use crate::cli::PrintBench;
use crate::job::{self, GenerationDefaults, JobSpec, Limits};
use crate::mockup::{self, Fit, MockupLibrary};
use crate::prepress;
use crate::worker::print::{self as stage, Kind};
use anyhow::{Context, Result};
use candle_core::Device;
use std::time::Instant;

pub(crate) fn run(b: &PrintBench) -> Result<()> {
    let design = image::open(&b.design)
        .with_context(|| format!("reading {}", b.design.display()))?
        .to_rgba8();
    let design = mockup::resize_rgba(&design, b.size, b.size);
    let job = bench_job(b)?;
    let library = MockupLibrary::builtin();
    let plan = stage::plan(&library, &job)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
        .context("the bench job asks for deliverables")?;
    if let Some(path) = &b.write_traced_input {
        prepress::in_inks(&design, b.colors as usize)
            .context("the design has no opaque pixel")?
            .save(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut stages = serde_json::Map::new();
    for kind in Kind::ALL {
        let report = time(b.iterations, || {
            let files =
                stage::make(kind, &plan, &design).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            Ok(files.iter().map(|f| f.bytes.len() as u64).sum())
        })?;
        stages.insert(kind.stage().to_owned(), report);
    }
    let template = library.template(&b.product).context("the product")?;
    let print = mockup::print_file(template, &design, b.dpi, Fit::Fit);
    let side = f64::from(prepress::mm_to_px(0.5, b.dpi));
    let hard = prepress::HardAlpha {
        choke_px: 1.0,
        min_area_px: (side * side).round() as u64,
    };
    let report = time(b.iterations, || {
        let out = prepress::harden(&print, &hard);
        Ok(u64::from(out.width() * out.height()))
    })?;
    stages.insert("print_alpha".to_owned(), report);
    let (pw, ph) = plan.area;
    let summary = serde_json::json!({
        "design": format!("{}x{}", b.size, b.size), "product": b.product, "dpi": b.dpi,
        "print_area_px": [pw, ph], "colors": b.colors, "inks": b.inks,
        "threads": rayon::current_num_threads(), "stages": stages,
    });
    if b.json {
        println!("{summary}");
    } else {
        println!(
            "print deliverables of a {0}x{0} design on {1} at {2} DPI ({pw}x{ph} px):",
            b.size, b.product, b.dpi
        );
        for (stage, r) in &stages {
            println!(
                "  {stage}: best {:.0} ms, median {:.0} ms, peak {:.0} MB",
                r["best_ms"].as_f64().unwrap_or(0.0),
                r["median_ms"].as_f64().unwrap_or(0.0),
                r["peak_memory_bytes"].as_f64().unwrap_or(0.0) / 1e6
            );
        }
    }
    Ok(())
}

/// The job a shop would send for these deliverables, validated as every job is.
fn bench_job(b: &PrintBench) -> Result<job::ValidJob> {
    let spec: JobSpec = serde_json::from_value(serde_json::json!({
        "id": "bench-print",
        "design": {"path": b.design.display().to_string()},
        "mockups": {"products": [b.product], "print_files": true},
        "print": {
            "product": b.product,
            "alpha": "hard",
            "vector": {"colors": b.colors},
            "sticker": {"border_mm": 3, "bleed_mm": 1},
            "separations": {"inks": b.inks, "underbase": true}
        },
        "output": {"print_dpi": b.dpi}
    }))?;
    job::validate::validate(
        spec,
        "bench",
        &Limits::default(),
        &GenerationDefaults::default(),
    )
    .map_err(|e| anyhow::anyhow!("{}: {}", e.field.unwrap_or_default(), e.message))
}

/// Runs of `f` after one warm-up: best, median, each run, peak memory over the runs, and what
/// `f` says it made (bytes or pixels).
fn time(iterations: u32, mut f: impl FnMut() -> Result<u64>) -> Result<serde_json::Value> {
    f()?;
    let memory = PeakMemory::start(&Device::Cpu);
    let mut runs = Vec::new();
    let mut made = 0;
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        made = f()?;
        runs.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let peak = memory.finish();
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(serde_json::json!({
        "best_ms": sorted[0], "median_ms": sorted[sorted.len() / 2], "runs_ms": runs,
        "peak_memory_bytes": peak.peak_memory_bytes, "made": made,
    }))
}
