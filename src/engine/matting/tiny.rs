//! Tiny random-weight matting models with the real tensor names, file names and formats of
//! U²-Net (`u2net`), U²-NetP (`u2netp`), IS-Net (`isnet-general-use`) and RMBG-1.4
//! (`RMBG-1.4/model.safetensors`; the others `.pth`, as released), narrow enough that a 64×64 forward runs well under a second
//! in a debug build. BatchNorm running statistics are random (positive variances), so the
//! folding is exercised. Their masks are noise.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};

/// One RSU stage: name, height (RSU-4F writes the same tensors as RSU-4), in, mid, out.
type Stage = (&'static str, usize, usize, usize, usize);

/// Tiny U²-Net: widths change between stages, as in the real one.
const U2NET: [Stage; 11] = [
    ("stage1", 7, 3, 4, 8),
    ("stage2", 6, 8, 4, 12),
    ("stage3", 5, 12, 4, 12),
    ("stage4", 4, 12, 4, 16),
    ("stage5", 4, 16, 4, 16),
    ("stage6", 4, 16, 4, 16),
    ("stage5d", 4, 32, 4, 16),
    ("stage4d", 4, 32, 4, 12),
    ("stage3d", 5, 24, 4, 12),
    ("stage2d", 6, 24, 4, 8),
    ("stage1d", 7, 16, 4, 8),
];

/// Tiny U²-NetP: one width throughout, as in the real one.
const U2NETP: [Stage; 11] = [
    ("stage1", 7, 3, 4, 8),
    ("stage2", 6, 8, 4, 8),
    ("stage3", 5, 8, 4, 8),
    ("stage4", 4, 8, 4, 8),
    ("stage5", 4, 8, 4, 8),
    ("stage6", 4, 8, 4, 8),
    ("stage5d", 4, 16, 4, 8),
    ("stage4d", 4, 16, 4, 8),
    ("stage3d", 5, 16, 4, 8),
    ("stage2d", 6, 16, 4, 8),
    ("stage1d", 7, 16, 4, 8),
];

/// Width of IS-Net's `conv_in`; its stages are the tiny U²-Net's on that many channels.
const ISNET_IN: usize = 8;

/// Side `k` reads stage `k`'s decoder (side 6: `stage6`): indices into the stage tables.
const SIDE_SOURCES: [usize; 6] = [10, 9, 8, 7, 6, 5];

/// File names of the released weights (U²-Net family and IS-Net as rembg names them).
pub(super) const FILES: [&str; 4] = [
    "u2net.pth",
    "u2netp.pth",
    "isnet-general-use.pth",
    "RMBG-1.4/model.safetensors",
];

/// Write the four tiny models under `dir`; returns their paths (u2net, u2netp, isnet, RMBG).
pub fn write_tiny(dir: &Path, seed: u64) -> Result<Vec<PathBuf>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let u2net = u2net_tensors(&U2NET, &mut rng)?;
    let u2netp = u2net_tensors(&U2NETP, &mut rng)?;
    let isnet = isnet_tensors(&mut rng)?;
    let rmbg = isnet_tensors(&mut rng)?;
    std::fs::create_dir_all(dir.join("RMBG-1.4"))?;
    let mut paths = Vec::with_capacity(FILES.len());
    for (name, tensors) in FILES.iter().zip([&u2net, &u2netp, &isnet, &rmbg]) {
        let path = dir.join(name);
        match name.ends_with(".pth") {
            true => crate::engine::files::torch_pth::write_state_dict(&path, None, tensors)?,
            false => save_safetensors(&path, tensors)?,
        }
        paths.push(path);
    }
    Ok(paths)
}

fn u2net_tensors(stages: &[Stage; 11], rng: &mut ChaCha8Rng) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    for stage in stages {
        rsu(&mut out, stage, rng)?;
    }
    sides(&mut out, stages, rng)?;
    conv(&mut out, "outconv", 1, 6, 1, rng)?;
    Ok(out)
}

fn isnet_tensors(rng: &mut ChaCha8Rng) -> Result<Vec<(String, Tensor)>> {
    let mut out = Vec::new();
    conv(&mut out, "conv_in", ISNET_IN, 3, 3, rng)?;
    let mut stages = U2NET;
    stages[0].2 = ISNET_IN;
    for stage in &stages {
        rsu(&mut out, stage, rng)?;
    }
    sides(&mut out, &stages, rng)?;
    Ok(out)
}

fn sides(
    out: &mut Vec<(String, Tensor)>,
    stages: &[Stage; 11],
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    for (k, &src) in SIDE_SOURCES.iter().enumerate() {
        conv(out, &format!("side{}", k + 1), 1, stages[src].4, 3, rng)?;
    }
    Ok(())
}

/// The tensors of one RSU stage, in the order PyTorch lists them.
fn rsu(out: &mut Vec<(String, Tensor)>, stage: &Stage, rng: &mut ChaCha8Rng) -> Result<()> {
    let &(name, height, c_in, mid, c_out) = stage;
    rebnconv(out, &format!("{name}.rebnconvin"), c_out, c_in, rng)?;
    for i in 1..=height {
        let c = if i == 1 { c_out } else { mid };
        rebnconv(out, &format!("{name}.rebnconv{i}"), mid, c, rng)?;
    }
    for i in (1..height).rev() {
        let c = if i == 1 { c_out } else { mid };
        rebnconv(out, &format!("{name}.rebnconv{i}d"), c, 2 * mid, rng)?;
    }
    Ok(())
}

fn rebnconv(
    out: &mut Vec<(String, Tensor)>,
    prefix: &str,
    c_out: usize,
    c_in: usize,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    conv(out, &format!("{prefix}.conv_s1"), c_out, c_in, 3, rng)?;
    let bn = format!("{prefix}.bn_s1");
    out.push((format!("{bn}.weight"), normal(&[c_out], 1.0, 0.1, rng)?));
    out.push((format!("{bn}.bias"), normal(&[c_out], 0.0, 0.1, rng)?));
    out.push((
        format!("{bn}.running_mean"),
        normal(&[c_out], 0.0, 0.1, rng)?,
    ));
    let var: Vec<f32> = (0..c_out).map(|_| rng.random_range(0.5..1.5)).collect();
    out.push((
        format!("{bn}.running_var"),
        Tensor::from_vec(var, c_out, &Device::Cpu)?,
    ));
    let tracked = Tensor::new(1000i64, &Device::Cpu)?;
    out.push((format!("{bn}.num_batches_tracked"), tracked));
    Ok(())
}

/// Conv weight He-scaled for the ReLU that follows, and a small bias.
fn conv(
    out: &mut Vec<(String, Tensor)>,
    prefix: &str,
    c_out: usize,
    c_in: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Result<()> {
    let std = (2.0 / (c_in * k * k) as f32).sqrt();
    out.push((
        format!("{prefix}.weight"),
        normal(&[c_out, c_in, k, k], 0.0, std, rng)?,
    ));
    out.push((format!("{prefix}.bias"), normal(&[c_out], 0.0, 0.05, rng)?));
    Ok(())
}

fn normal(dims: &[usize], mean: f32, std: f32, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let z: f32 = StandardNormal.sample(&mut *rng);
            mean + std * z
        })
        .collect();
    Ok(Tensor::from_vec(values, dims, &Device::Cpu)?)
}

fn save_safetensors(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let map: std::collections::HashMap<_, _> = tensors.iter().cloned().collect();
    candle_core::safetensors::save(&map, path)?;
    Ok(())
}
