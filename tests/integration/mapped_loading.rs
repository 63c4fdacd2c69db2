//! Loading GGUF through the memory map (`engine::gguf`) gives the tensors candle's reader gives,
//! in every block type the tiny models use; a truncated file fails naming the tensor; and
//! merchgen's own quantized T5 encoder, loaded from llama.cpp or Hugging Face names, matches
//! candle's quantized T5 where that one is right (distances under 128) and candle's dense T5
//! everywhere, including the long distances of a 256-token FLUX prompt.

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{quantized_t5, t5};
use merchgen::engine::flux::text::t5_names;
use merchgen::engine::flux::text::t5_quantized::QuantizedT5;
use merchgen::engine::gguf::{MappedGguf, QVars};
use merchgen::engine::tiny::{self, TinyLayout};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Every tensor of `path` as candle's own reader builds it (read into a buffer), dequantized.
fn read_with_candle(path: &Path) -> BTreeMap<String, (GgmlDType, Vec<usize>, Vec<f32>)> {
    let mut file = std::fs::File::open(path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    content
        .tensor_infos
        .keys()
        .map(|name| {
            let q = content.tensor(&mut file, name, &Device::Cpu).unwrap();
            (name.clone(), flatten(&q))
        })
        .collect()
}

fn flatten(q: &QTensor) -> (GgmlDType, Vec<usize>, Vec<f32>) {
    let values = q
        .dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    (q.dtype(), q.shape().dims().to_vec(), values)
}

fn read_mapped(path: &Path) -> BTreeMap<String, (GgmlDType, Vec<usize>, Vec<f32>)> {
    let mut out = BTreeMap::new();
    MappedGguf::open(path)
        .unwrap()
        .for_each_tensor(&Device::Cpu, |name, q| {
            out.insert(name.to_owned(), flatten(&q));
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn mapped_tensors_equal_candles_reader_in_every_block_type() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 5, TinyLayout::Folder).unwrap();
    let mut types = std::collections::BTreeSet::new();
    for file in [
        "transformer-q8_0.gguf",
        "transformer-q4_k.gguf",
        "t5/model-q8_0.gguf",
    ] {
        let path = folder.join(file);
        let (ours, candles) = (read_mapped(&path), read_with_candle(&path));
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            candles.keys().collect::<Vec<_>>(),
            "{file}"
        );
        for (name, (dtype, dims, values)) in &ours {
            let (c_dtype, c_dims, c_values) = &candles[name];
            assert_eq!((dtype, dims), (c_dtype, c_dims), "{file}: {name}");
            assert!(values == c_values, "{file}: {name}: values differ");
            types.insert(format!("{dtype:?}"));
        }
    }
    for t in ["Q8_0", "Q4K", "F32"] {
        assert!(
            types.contains(t),
            "the tiny models hold no {t} tensor: {types:?}"
        );
    }
}

#[test]
fn a_truncated_gguf_fails_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 5, TinyLayout::Folder).unwrap();
    let full = std::fs::read(folder.join("transformer-q8_0.gguf")).unwrap();
    let cut = dir.path().join("cut.gguf");
    std::fs::write(&cut, &full[..full.len() - 100]).unwrap();
    let err = QVars::from_gguf(&cut, &Device::Cpu, |n| Some(n.to_owned()))
        .err()
        .expect("a truncated file must not load");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("runs past the end of the file") && msg.contains("tensor"),
        "{msg}"
    );
}

/// The tiny T5's dense weights (Hugging Face names) and config.
fn tiny_t5(dir: &Path) -> (HashMap<String, Tensor>, t5::Config, String) {
    let folder = tiny::write(dir, 11, TinyLayout::Folder).unwrap();
    let tensors =
        candle_core::safetensors::load(folder.join("t5/model.safetensors"), &Device::Cpu).unwrap();
    let config = std::fs::read_to_string(folder.join("t5/config.json")).unwrap();
    let cfg: t5::Config = serde_json::from_str(&config).unwrap();
    (tensors, cfg, config)
}

/// Write `tensors` as a GGUF, 2-D ones in `dtype`, under the names `rename` gives.
fn write_gguf(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
    dtype: GgmlDType,
    rename: impl Fn(&str) -> String,
) {
    let q: Vec<(String, QTensor)> = tensors
        .iter()
        .map(|(name, t)| {
            let inner = *t.dims().last().unwrap();
            let d = if t.rank() == 2 && inner % dtype.block_size() == 0 {
                dtype
            } else {
                GgmlDType::F32
            };
            (rename(name), QTensor::quantize(t, d).unwrap())
        })
        .collect();
    let refs: Vec<(&str, &QTensor)> = q.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut file, &[], &refs).unwrap();
}

fn ids(len: usize, vocab: usize) -> Tensor {
    let ids: Vec<u32> = (0..len as u32)
        .map(|i| 2 + (i * 7) % (vocab as u32 - 2))
        .collect();
    Tensor::new(ids.as_slice(), &Device::Cpu)
        .unwrap()
        .unsqueeze(0)
        .unwrap()
}

fn rel_l2(a: &Tensor, b: &Tensor) -> f32 {
    let d = (a - b).unwrap().sqr().unwrap().sum_all().unwrap();
    let n = b.sqr().unwrap().sum_all().unwrap();
    (d.to_scalar::<f32>().unwrap() / n.to_scalar::<f32>().unwrap()).sqrt()
}

#[test]
fn own_quantized_t5_matches_candles_where_candle_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let (tensors, cfg, config) = tiny_t5(dir.path());
    let hf = dir.path().join("t5-hf-q8_0.gguf");
    write_gguf(&hf, &tensors, GgmlDType::Q8_0, str::to_owned);
    let ours = QuantizedT5::new(
        &cfg,
        &QVars::from_gguf(&hf, &Device::Cpu, t5_names::to_hf).unwrap(),
    )
    .unwrap();
    let qcfg: quantized_t5::Config = serde_json::from_str(&config).unwrap();
    let vb = candle_transformers::quantized_var_builder::VarBuilder::from_gguf(&hf, &Device::Cpu)
        .unwrap();
    let mut candles = quantized_t5::T5EncoderModel::load(vb, &qcfg).unwrap();
    // 64 tokens: every distance is under 128, where candle's buckets are Hugging Face's.
    let x = ids(64, cfg.vocab_size);
    let (a, b) = (ours.forward(&x).unwrap(), candles.forward(&x).unwrap());
    assert_eq!(a.dims(), b.dims());
    let diff = rel_l2(&a, &b);
    assert!(diff < 1e-6, "relative L2 {diff}");
}

#[test]
fn own_quantized_t5_from_llama_names_matches_dense_t5_at_long_distances() {
    let dir = tempfile::tempdir().unwrap();
    let (tensors, cfg, _) = tiny_t5(dir.path());
    let llama = dir.path().join("t5-llama-f32.gguf");
    write_gguf(&llama, &tensors, GgmlDType::F32, |n| {
        t5_names::to_llama(n).unwrap_or_else(|| panic!("no llama.cpp name for {n}"))
    });
    let ours = QuantizedT5::new(
        &cfg,
        // The embedding dequantized as it loads, as the engine does.
        &QVars::from_gguf_dequantizing(
            &llama,
            &Device::Cpu,
            t5_names::to_hf,
            QuantizedT5::used_dequantized,
        )
        .unwrap(),
    )
    .unwrap();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let mut dense = t5::T5EncoderModel::load(vb, &cfg).unwrap();
    // 256 tokens, FLUX.1-schnell's T5 length: distances up to 255 (the last buckets).
    let x = ids(256, cfg.vocab_size);
    let (a, b) = (ours.forward(&x).unwrap(), dense.forward(&x).unwrap());
    let diff = rel_l2(&a, &b);
    assert!(diff < 1e-5, "relative L2 {diff}");
}
