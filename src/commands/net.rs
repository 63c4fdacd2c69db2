//! `merchgen net`: run one network's raw forward pass on tensors from a file (parity runs with
//! independent reference implementations; not part of any job path). Always on the CPU, in f32.

use crate::cli::NetFamily;
use crate::engine::matting::Matting;
use crate::engine::upscale::Upscaler;
use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Run the raw network and write its output; exit code 0 or 1.
pub fn run(family: NetFamily, weights: &Path, input: &Path, output: &Path) -> i32 {
    match run_raw(family, weights, input, output) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("merchgen net: {e:#}");
            1
        }
    }
}

/// Load the weights, read tensor `input` from `input`, write the network's raw output as
/// tensor `output` to `output`.
fn run_raw(family: NetFamily, weights: &Path, input: &Path, output: &Path) -> Result<()> {
    let device = Device::Cpu;
    let mut tensors = candle_core::safetensors::load(input, &device)
        .with_context(|| format!("reading {}", input.display()))?;
    let x = tensors
        .remove("input")
        .with_context(|| format!("{} has no tensor named `input`", input.display()))?
        .to_dtype(DType::F32)?;
    let y: Tensor = match family {
        NetFamily::Matting => Matting::load(weights, &device)?
            .forward(&x)
            .context("matting forward")?,
        NetFamily::Upscale => Upscaler::load(weights, &device)?
            .forward(&x)
            .context("upscaler forward")?,
    };
    candle_core::safetensors::save(&HashMap::from([("output", y)]), output)
        .with_context(|| format!("writing {}", output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_raw_upscale_writes_network_output() {
        let dir = tempfile::tempdir().unwrap();
        let paths = crate::engine::upscale::write_tiny(dir.path(), 3).unwrap();
        let x2 = paths
            .iter()
            .find(|p| p.ends_with("RealESRGAN_x2plus.pth"))
            .unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 3, 8, 6), &Device::Cpu).unwrap();
        let input = dir.path().join("in.safetensors");
        let output = dir.path().join("out.safetensors");
        candle_core::safetensors::save(&HashMap::from([("input", x)]), &input).unwrap();
        run_raw(NetFamily::Upscale, x2, &input, &output).unwrap();
        let y = candle_core::safetensors::load(&output, &Device::Cpu).unwrap();
        assert_eq!(y["output"].dims(), &[2, 3, 16, 12]);
    }

    #[test]
    fn run_raw_input_without_tensor_fails_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.safetensors");
        let x = Tensor::zeros((1, 3, 4, 4), DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([("x", x)]), &input).unwrap();
        let err = run_raw(NetFamily::Matting, &input, &input, &dir.path().join("o")).unwrap_err();
        assert!(
            format!("{err:#}").contains("no tensor named `input`"),
            "{err:#}"
        );
    }
}
