//! Super-resolution upscaling: the Real-ESRGAN family (RRDBNet x4/x2 and the compact SRVGG
//! net), with tiled inference. Runs on the engine thread that owns the device.

use std::path::Path;

/// Run the raw network of the upscaler weights at `weights` on the tensor `input` of the
/// safetensors file `input` and write its raw output as tensor `output` (parity runs).
pub fn dump_raw(weights: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    let _ = (weights, input, output);
    anyhow::bail!("upscaling is not built yet")
}
