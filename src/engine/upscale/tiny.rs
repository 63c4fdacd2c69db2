//! Tiny random-weight upscalers under the real release names and key layouts
//! (`RealESRGAN_x4plus`, `RealESRGAN_x2plus`, `realesr-general-x4v3`), so tests and parity runs
//! drive the same loading code as the real files (`.pth`, read by candle's pickle reader).
//! Their images are noise around the input.

use crate::engine::files::torch_pth::write_state_dict;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// RRDBNet sizes of the tiny models: (num_feat, num_block, num_grow_ch). 32 grow channels
/// because spandrel (the parity reference) builds every RRDBNet with 32.
pub(super) const RRDB_SIZES: (usize, usize, usize) = (8, 1, 32);
/// SRVGGNetCompact sizes of the tiny model: (num_feat, num_conv, scale).
pub(super) const SRVGG_SIZES: (usize, usize, usize) = (8, 4, 4);

/// Write the three tiny models into `dir` as PyTorch `.pth` files wrapped the way the releases
/// are (`params_ema` for the RRDBNets, `params` for the compact net); returns their paths
/// (x4plus, x2plus, general-x4v3).
pub fn write_tiny(dir: &Path, seed: u64) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let models = [
        (
            "RealESRGAN_x4plus.pth",
            "params_ema",
            rrdb_tensors(4, seed)?,
        ),
        (
            "RealESRGAN_x2plus.pth",
            "params_ema",
            rrdb_tensors(2, seed.wrapping_add(1))?,
        ),
        (
            "realesr-general-x4v3.pth",
            "params",
            srvgg_tensors(seed.wrapping_add(2))?,
        ),
    ];
    let mut paths = Vec::with_capacity(models.len());
    for (name, wrapper, tensors) in models {
        let path = dir.join(name);
        let mut sorted: Vec<(String, Tensor)> = tensors.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        write_state_dict(&path, Some(wrapper), &sorted)
            .with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Names and shapes of one layer, in the order the random values are drawn.
struct Spec {
    name: String,
    dims: Vec<usize>,
    /// Standard deviation, and the mean the values are drawn around.
    std: f32,
    mean: f32,
}

fn conv(out: &mut Vec<Spec>, prefix: &str, cin: usize, cout: usize, gain: f32) {
    out.push(Spec {
        name: format!("{prefix}.weight"),
        dims: vec![cout, cin, 3, 3],
        std: gain / ((cin * 9) as f32).sqrt(),
        mean: 0.0,
    });
    out.push(Spec {
        name: format!("{prefix}.bias"),
        dims: vec![cout],
        std: 0.02,
        mean: 0.0,
    });
}

/// Random RRDBNet weights (basicsr names) for scale 4, 2 or 1.
pub(crate) fn rrdb_tensors(scale: u32, seed: u64) -> Result<HashMap<String, Tensor>> {
    let (f, blocks, g) = RRDB_SIZES;
    let unshuffle = (4 / scale.max(1)) as usize;
    let mut specs = Vec::new();
    conv(&mut specs, "conv_first", 3 * unshuffle * unshuffle, f, 1.0);
    for b in 0..blocks {
        for r in 1..=3 {
            for c in 0..5 {
                let cout = if c == 4 { f } else { g };
                conv(
                    &mut specs,
                    &format!("body.{b}.rdb{r}.conv{}", c + 1),
                    f + c * g,
                    cout,
                    1.0,
                );
            }
        }
    }
    for name in ["conv_body", "conv_up1", "conv_up2", "conv_hr"] {
        conv(&mut specs, name, f, f, 1.0);
    }
    conv(&mut specs, "conv_last", f, 3, 0.5);
    // Centre the output on mid-grey so images are not clipped to black.
    if let Some(bias) = specs.last_mut() {
        bias.mean = 0.5;
    }
    draw(&specs, seed)
}

/// Random SRVGGNetCompact weights with PReLU activations.
pub(crate) fn srvgg_tensors(seed: u64) -> Result<HashMap<String, Tensor>> {
    let (f, num_conv, scale) = SRVGG_SIZES;
    let n = num_conv + 2;
    let mut specs = Vec::new();
    for i in 0..n {
        let cin = if i == 0 { 3 } else { f };
        let last = i + 1 == n;
        let cout = if last { 3 * scale * scale } else { f };
        // A small last layer keeps the output near the upsampled input.
        conv(
            &mut specs,
            &format!("body.{}", 2 * i),
            cin,
            cout,
            if last { 0.3 } else { 1.0 },
        );
        if !last {
            specs.push(Spec {
                name: format!("body.{}.weight", 2 * i + 1),
                dims: vec![f],
                std: 0.05,
                mean: 0.25, // PyTorch's PReLU initial slope
            });
        }
    }
    draw(&specs, seed)
}

fn draw(specs: &[Spec], seed: u64) -> Result<HashMap<String, Tensor>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = HashMap::with_capacity(specs.len());
    for spec in specs {
        let n: usize = spec.dims.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let v: f32 = StandardNormal.sample(&mut rng);
                spec.mean + spec.std * v
            })
            .collect();
        let t = Tensor::from_vec(values, spec.dims.clone(), &Device::Cpu)?;
        out.insert(spec.name.clone(), t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_tiny_same_seed_same_bytes() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let pa = write_tiny(a.path(), 7).unwrap();
        let pb = write_tiny(b.path(), 7).unwrap();
        assert_eq!(pa.len(), 3);
        for (x, y) in pa.iter().zip(&pb) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
    }
}
