//! `merchgen bench --random-weights --load-only`: loading the full-size random GGUF files against
//! a plain read of them (page cache dropped), merchgen's loader against candle's reader, and both
//! files at once as the pipeline loads them, with peak host memory. No generation.

use super::memory::PeakMemory;
use super::random::{load_t5, ms, setup, write_files, Scratch, Setup};
use super::random_gguf;
use super::report::median;
use crate::cli::PipelineBench;
use crate::config::Config;
use crate::engine::flux::weights;
use anyhow::Result;
use std::time::Instant;

/// A plain sequential read of `path` (8 MiB at a time) from a dropped page cache: the disk's
/// speed, the floor for loading.
fn plain_read_ms(path: &std::path::Path) -> Result<f64> {
    use std::io::Read;
    random_gguf::drop_page_cache(path);
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 8 << 20];
    let t = Instant::now();
    while file.read(&mut buf)? > 0 {}
    Ok(ms(t))
}

/// One thing `--load-only` times: (label, bytes, the load, the files it reads).
type LoadCase<'a> = (
    &'a str,
    u64,
    &'a dyn Fn() -> Result<()>,
    Vec<&'a std::path::Path>,
);

/// Per case: plain-read times, load times, peak memory, one entry per round.
type LoadSamples = (Vec<f64>, Vec<f64>, Vec<u64>);

/// How many times each load is timed; the report gives the median (the disk here is shared and
/// a single read of the same file varied 2x between runs).
const LOAD_ROUNDS: usize = 3;

/// `--load-only`: write the full-size files once, then per round and file (page cache dropped
/// before each): a plain sequential read, merchgen's loader, and candle's reader (the loader
/// before the memory map); then both files loaded at once as `FluxPipeline::load` does, against
/// both read one after the other. Medians of `LOAD_ROUNDS` rounds. Peak host memory is VmHWM
/// since just before the load (file pages a loader maps count as the kernel counts them: as
/// resident while mapped in). Goal: load at most 1.15 x read + 1 s; peak at most 1.1 x
/// file.
pub(super) fn load_only(config: &Config, p: &PipelineBench) -> Result<serde_json::Value> {
    let Setup {
        device,
        sizes,
        flux_shapes,
        t5_shapes,
        params: _,
        dense_dtype,
        dense,
    } = setup(config, p)?;
    let scratch = Scratch::new()?;
    eprintln!(
        "bench: writing {} FLUX and T5 GGUF files in {}",
        p.scale,
        scratch.0.display()
    );
    let written = write_files(&scratch, &flux_shapes, &t5_shapes)?;
    let (flux, t5) = (&written.flux, &written.t5);
    let timed = |load: &dyn Fn() -> Result<()>, files: &[&std::path::Path]| -> Result<(f64, u64)> {
        for f in files {
            random_gguf::drop_page_cache(f);
        }
        let memory = PeakMemory::start(&device);
        let t = Instant::now();
        load()?;
        Ok((ms(t), memory.finish().peak_memory_bytes))
    };
    let ours_flux = || -> Result<()> {
        let t = weights::load_transformer(flux, &sizes.flux, dense, dense_dtype, &device)?;
        device.synchronize()?;
        drop(t);
        Ok(())
    };
    let candle_flux = || -> Result<()> {
        drop(candle_transformers::quantized_var_builder::VarBuilder::from_gguf(flux, &device)?);
        device.synchronize()?;
        Ok(())
    };
    let ours_t5 = || load_t5(t5, &sizes, &device).map(drop);
    let candle_t5 = || -> Result<()> {
        drop(candle_transformers::quantized_var_builder::VarBuilder::from_gguf(t5, &device)?);
        Ok(())
    };
    let both = || -> Result<()> {
        std::thread::scope(|scope| -> Result<()> {
            let t5 = scope.spawn(ours_t5);
            ours_flux()?;
            t5.join()
                .map_err(|_| anyhow::anyhow!("the T5 loader panicked"))?
        })
    };
    let cases: [LoadCase<'_>; 5] = [
        (
            if dense {
                "transformer (dense from Q4_0)"
            } else {
                "transformer (Q4_0)"
            },
            written.gguf_bytes,
            &ours_flux,
            vec![flux.as_path()],
        ),
        (
            "transformer (Q4_0), candle's reader (before)",
            written.gguf_bytes,
            &candle_flux,
            vec![flux.as_path()],
        ),
        (
            "T5 encoder (Q8_0)",
            written.t5_gguf_bytes,
            &ours_t5,
            vec![t5.as_path()],
        ),
        (
            "T5 encoder (Q8_0), candle's reader (before)",
            written.t5_gguf_bytes,
            &candle_t5,
            vec![t5.as_path()],
        ),
        (
            "transformer + T5, concurrently",
            written.gguf_bytes + written.t5_gguf_bytes,
            &both,
            vec![flux.as_path(), t5.as_path()],
        ),
    ];
    let mut samples: Vec<LoadSamples> = vec![Default::default(); cases.len()];
    for round in 0..LOAD_ROUNDS {
        for ((what, _, load, files), (reads, loads, peaks)) in cases.iter().zip(samples.iter_mut())
        {
            let mut read_ms = 0.0;
            for f in files {
                read_ms += plain_read_ms(f)?;
            }
            let (load_ms, peak) = timed(*load, files)?;
            eprintln!(
                "bench: round {}: {what}: plain read {read_ms:.0} ms, load {load_ms:.0} ms",
                round + 1
            );
            reads.push(read_ms);
            loads.push(load_ms);
            peaks.push(peak);
        }
    }
    let mut rows = Vec::new();
    for ((what, bytes, _, _), (reads, loads, peaks)) in cases.iter().zip(samples) {
        let (read_ms, load_ms) = (median(&reads), median(&loads));
        let peak = peaks.iter().copied().max().unwrap_or(0);
        let goal_ms = 1.15 * read_ms + 1000.0;
        eprintln!(
            "bench: {what}: {:.2} GB, plain read {read_ms:.0} ms, load {load_ms:.0} ms ({:.2} x read; goal <= {goal_ms:.0} ms), peak memory {:.2} GB ({:.2} x file; goal <= 1.1) [medians of {LOAD_ROUNDS}]",
            *bytes as f64 / 1e9,
            load_ms / read_ms.max(1e-9),
            peak as f64 / 1e9,
            peak as f64 / (*bytes).max(1) as f64
        );
        rows.push(serde_json::json!({"file": what, "bytes": bytes, "rounds": LOAD_ROUNDS,
            "plain_read_ms": read_ms, "plain_read_ms_all": reads, "load_ms": load_ms, "load_ms_all": loads,
            "load_over_read": load_ms / read_ms.max(1e-9), "goal_ms": goal_ms,
            "peak_memory_bytes": peak, "peak_over_file": peak as f64 / (*bytes).max(1) as f64}));
    }
    Ok(
        serde_json::json!({"bench": "load_only", "scale": p.scale, "device": crate::engine::device::name(&device),
            "cache": "dropped before each read and load (fsync, posix_fadvise DONTNEED)", "files": rows}),
    )
}
