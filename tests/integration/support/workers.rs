//! Shared by the in-process tests on the tiny random-weight model: the command line they run
//! under (CPU, quantized weights, 64-pixel minimum side) and a worker built on it.

#![allow(dead_code)]

use clap::Parser;
use merchgen::app::{self, Door};
use merchgen::cli::Cli;
use merchgen::engine::files::hub::{self, HubSettings};
use merchgen::engine::flux::weights::WeightsMode;
use merchgen::engine::flux::{FluxPipeline, LoadOptions};
use merchgen::worker::Worker;
use std::path::Path;

/// `merchgen --model MODEL --device cpu --weights quantized --min-side 64 EXTRA...`.
pub(crate) fn cli(model: &Path, extra: &[&str]) -> Cli {
    let model = model.to_str().expect("test paths are UTF-8");
    let base = [
        "merchgen",
        "--model",
        model,
        "--device",
        "cpu",
        "--weights",
        "quantized",
        "--min-side",
        "64",
    ];
    Cli::try_parse_from(base.iter().chain(extra)).expect("the test command line parses")
}

/// A worker with the model loaded, as `door` builds it, writing to `destination` by default.
pub(crate) async fn worker(cli: &Cli, door: Door, destination: &str) -> Worker {
    let engine = app::start_engine(&cli.config)
        .await
        .expect("the tiny model loads");
    app::build_worker(&cli.config, Some(engine), door, destination.to_owned())
        .expect("the worker builds")
}

/// The FLUX pipeline of `model` (a preset, folder or manifest) on the CPU, batches up to 4.
pub(crate) fn pipeline(model: &str, hub: &HubSettings, weights: WeightsMode) -> FluxPipeline {
    let resolved = hub::resolve(model, hub, false).expect("tiny model resolves offline");
    FluxPipeline::load(
        &resolved,
        &candle_core::Device::Cpu,
        &LoadOptions {
            weights,
            max_batch: 4,
        },
    )
    .expect("tiny model loads")
}
