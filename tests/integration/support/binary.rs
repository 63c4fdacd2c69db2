//! The `merchgen` binary as the tests start it: one place for the settings every run on a tiny
//! model shares, so each test names only what it is about.

use std::path::Path;
use std::process::Command;

/// The binary `cargo test` built.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_merchgen");

/// `merchgen` on the tiny model at `model` (see [`tiny_settings`]).
pub(crate) fn on_tiny_model(model: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    tiny_settings(&mut cmd, model);
    cmd
}

/// The settings every run on a tiny model shares: the model, the CPU, quantized weights, jobs
/// from 64 pixels, the hub offline, and none of the output, RunPod or API-key settings a
/// developer's shell may carry. For a command that starts from a cleared environment too.
pub(crate) fn tiny_settings<'a>(cmd: &'a mut Command, model: &Path) -> &'a mut Command {
    cmd.env("MERCHGEN_MODEL", model)
        .env("MERCHGEN_DEVICE", "cpu")
        .env("MERCHGEN_WEIGHTS", "quantized")
        .env("MERCHGEN_MIN_SIDE", "64")
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("MERCHGEN_OUTPUT")
        .env_remove("BUCKET_ENDPOINT_URL")
        .env_remove("RUNPOD_WEBHOOK_GET_JOB")
        .env_remove("MERCHGEN_API_KEY")
}

/// `merchgen` with the hub offline, for commands that load no model or name their own.
pub(crate) fn offline() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("HF_HUB_OFFLINE", "1");
    cmd
}
