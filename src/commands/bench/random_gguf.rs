//! GGUF files of random weights at any size, written fast enough for a full-size FLUX (6.7 GB at
//! Q4_0): each tensor's blocks are drawn from a small pool of real quantized blocks of the right
//! spread (so the values look like a quantized checkpoint's), in parallel. Also drops a file from
//! the page cache so that loading it measures the disk, not memory.

use crate::engine::flux::infer::Shapes;
use anyhow::{Context, Result};
use candle_core::quantized::{ggml_file, gguf_file, GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use std::path::Path;

/// Blocks in each tensor's pool.
const POOL_BLOCKS: usize = 4096;

/// Write `shapes` as a GGUF of random values: tensors of two or more dimensions whose inner size
/// is a multiple of `quant`'s block in `quant`, the rest (biases, norms) in F32. Returns the size
/// of the file in bytes.
pub(super) fn write(path: &Path, shapes: &Shapes, quant: GgmlDType, seed: u64) -> Result<u64> {
    let tensors = shapes
        .iter()
        .enumerate()
        .map(|(i, (name, dims))| {
            let t = random_tensor(name, dims, quant, seed.wrapping_add(i as u64))
                .with_context(|| format!("making random tensor {name} {dims:?}"))?;
            Ok((name.as_str(), t))
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::with_capacity(8 << 20, file);
    gguf_file::write(&mut w, &[], &refs).with_context(|| format!("writing {}", path.display()))?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

/// The spread a freshly initialised layer would have: about 1 for norm gains, small for biases,
/// 1/sqrt(fan-in) for weights.
fn spread(name: &str, dims: &[usize]) -> (f32, f32) {
    if dims.len() < 2 {
        return if name.ends_with(".bias") {
            (0.0, 0.02)
        } else {
            (1.0, 0.1)
        };
    }
    let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
    (0.0, 1.0 / (fan_in as f32).sqrt())
}

fn random_tensor(name: &str, dims: &[usize], quant: GgmlDType, seed: u64) -> Result<QTensor> {
    let (mean, std) = spread(name, dims);
    let inner = *dims.last().unwrap_or(&0);
    let quantize = dims.len() >= 2 && inner.is_multiple_of(quant.block_size());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    if !quantize {
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| {
                let v: f32 = StandardNormal.sample(&mut rng);
                mean + std * v
            })
            .collect();
        return Ok(QTensor::quantize(
            &Tensor::from_vec(values, dims, &Device::Cpu)?,
            GgmlDType::F32,
        )?);
    }
    // A pool of real blocks: normal values of this spread, quantized by candle.
    let pool_values: Vec<f32> = (0..POOL_BLOCKS * quant.block_size())
        .map(|_| {
            let v: f32 = StandardNormal.sample(&mut rng);
            mean + std * v
        })
        .collect();
    let pool_tensor =
        Tensor::from_vec(pool_values, (POOL_BLOCKS, quant.block_size()), &Device::Cpu)?;
    let pool = QTensor::quantize(&pool_tensor, quant)?.data()?.into_owned();
    let block_bytes = quant.type_size();
    let blocks = dims.iter().product::<usize>() / quant.block_size();
    let mut raw = vec![0u8; blocks * block_bytes];
    let chunk_blocks = 1 << 16;
    let base = rng.next_u64();
    raw.par_chunks_mut(chunk_blocks * block_bytes)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(base ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            for block in chunk.chunks_exact_mut(block_bytes) {
                let k = rng.random_range(0..POOL_BLOCKS) * block_bytes;
                block.copy_from_slice(&pool[k..k + block_bytes]);
            }
        });
    Ok(ggml_file::qtensor_from_ggml(
        quant,
        &raw,
        dims.to_vec(),
        &Device::Cpu,
    )?)
}

/// How the file was taken out of the page cache before a timed read.
pub(super) fn drop_page_cache(path: &Path) -> &'static str {
    let Ok(file) = std::fs::File::open(path) else {
        return "warm";
    };
    // Dirty pages cannot be dropped: write them out first.
    let synced = file.sync_all().is_ok();
    if synced && rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).is_ok() {
        return "dropped (fadvise)";
    }
    // Only where fadvise failed: this empties the page cache of the whole machine.
    if std::fs::write("/proc/sys/vm/drop_caches", "1").is_ok() {
        return "dropped (drop_caches)";
    }
    "warm"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn write_random_gguf_reads_back_with_types_and_spread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.gguf");
        let shapes: Shapes = BTreeMap::from([
            ("a.weight".to_owned(), vec![64, 256]),
            ("a.bias".to_owned(), vec![64]),
            ("odd.weight".to_owned(), vec![4, 20]),
        ]);
        let bytes = write(&path, &shapes, GgmlDType::Q4_0, 3).unwrap();
        assert_eq!(bytes, std::fs::metadata(&path).unwrap().len());
        let mut f = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut f).unwrap();
        assert_eq!(content.tensor_infos["a.weight"].ggml_dtype, GgmlDType::Q4_0);
        assert_eq!(content.tensor_infos["a.bias"].ggml_dtype, GgmlDType::F32);
        assert_eq!(
            content.tensor_infos["odd.weight"].ggml_dtype,
            GgmlDType::F32
        );
        let w = content
            .tensor(&mut f, "a.weight", &Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap();
        assert_eq!(w.dims(), &[64, 256]);
        let std = w
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        assert!(
            (std - 1.0 / 16.0).abs() < 0.02,
            "std {std}, want about 1/sqrt(256)"
        );
        assert_ne!(drop_page_cache(&path), "");
    }
}
