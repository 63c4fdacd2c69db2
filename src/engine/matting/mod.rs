//! Salient-object matting (background removal): the U²-Net family and IS-Net (DIS), which also
//! loads BRIA's RMBG-1.4 weights. Runs on the engine thread that owns the device.

use std::path::Path;

/// Run the raw network of the matting weights at `weights` on the tensor `input` of the
/// safetensors file `input` and write its raw output as tensor `output` (parity runs).
pub fn dump_raw(weights: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    let _ = (weights, input, output);
    anyhow::bail!("matting is not built yet")
}
