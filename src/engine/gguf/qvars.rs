//! Quantized tensors by name, for models that keep their GGUF blocks (merchgen's quantized FLUX
//! transformer and T5 encoder). Plays the part of candle's quantized `VarBuilder`, which can only
//! be built by reading a file or a buffer itself; this one is built from tensors, so loading can
//! go through the memory-mapped reader (`map.rs`) and rename tensors on the way in (the T5 GGUFs
//! on the hub use llama.cpp names) without a second copy of anything.

use super::map::MappedGguf;
use anyhow::Result;
use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Shape, Tensor};
use candle_transformers::quantized_nn::Linear;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Named quantized tensors under a name prefix (`pp` descends, as candle's builders do).
#[derive(Clone)]
pub struct QVars {
    data: Arc<HashMap<String, Arc<QTensor>>>,
    /// Tensors dequantized as they were loaded (see `from_gguf_dequantizing`).
    dense: Arc<HashMap<String, Tensor>>,
    prefix: String,
    device: Device,
}

impl QVars {
    pub fn from_tensors(data: HashMap<String, Arc<QTensor>>, device: &Device) -> Self {
        QVars {
            data: Arc::new(data),
            dense: Arc::default(),
            prefix: String::new(),
            device: device.clone(),
        }
    }

    /// Dense tensors only (a dense transformer: every `weight` is a plain matmul).
    pub(crate) fn from_dense(dense: HashMap<String, Tensor>, device: &Device) -> Self {
        QVars {
            data: Arc::default(),
            dense: Arc::new(dense),
            prefix: String::new(),
            device: device.clone(),
        }
    }

    /// Every tensor of the GGUF at `path`, under the name `rename` gives it (tensors it maps to
    /// `None` are left out).
    pub fn from_gguf(
        path: &Path,
        device: &Device,
        rename: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        Self::from_gguf_dequantizing(path, device, rename, |_| false)
    }

    /// As `from_gguf`, with the tensors `dense` picks (by new name) dequantized to f32 as they
    /// come in and their quantized form dropped at once: a large table the model only ever uses
    /// dequantized (T5's token embedding) never exists twice while the rest loads.
    pub fn from_gguf_dequantizing(
        path: &Path,
        device: &Device,
        rename: impl Fn(&str) -> Option<String>,
        dense: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        let gguf = MappedGguf::open(path)?;
        let mut data = HashMap::with_capacity(gguf.content().tensor_infos.len());
        let mut dequantized = HashMap::new();
        gguf.for_each_tensor(device, |name, tensor| {
            match rename(name) {
                Some(new) if dense(&new) => {
                    dequantized.insert(new, tensor.dequantize(device)?);
                }
                Some(new) => {
                    data.insert(new, Arc::new(tensor));
                }
                None => tracing::debug!(tensor = %name, path = %path.display(), "tensor not used"),
            }
            Ok(())
        })?;
        let mut vars = Self::from_tensors(data, device);
        vars.dense = Arc::new(dequantized);
        Ok(vars)
    }

    /// The same tensors under `prefix.name`.
    pub(crate) fn pp(&self, name: impl std::fmt::Display) -> Self {
        QVars {
            data: self.data.clone(),
            dense: self.dense.clone(),
            prefix: self.full(&name.to_string()),
            device: self.device.clone(),
        }
    }

    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn contains(&self, name: &str) -> bool {
        let full = self.full(name);
        self.data.contains_key(&full) || self.dense.contains_key(&full)
    }

    /// The tensor `name`, which must have `shape`.
    pub fn get(&self, shape: impl Into<Shape>, name: &str) -> candle_core::Result<Arc<QTensor>> {
        let full = self.full(name);
        let tensor = self
            .data
            .get(&full)
            .ok_or_else(|| candle_core::Error::Msg(format!("cannot find tensor {full}")))?;
        let shape = shape.into();
        if tensor.shape() != &shape {
            candle_core::bail!(
                "shape mismatch for {full}: the file has {:?}, the model needs {shape:?}",
                tensor.shape()
            );
        }
        Ok(tensor.clone())
    }

    /// The tensor `name` dequantized to f32.
    pub fn dequantized(&self, shape: impl Into<Shape>, name: &str) -> candle_core::Result<Tensor> {
        let shape = shape.into();
        match self.dense.get(&self.full(name)) {
            Some(t) if t.shape() == &shape => Ok(t.clone()),
            Some(t) => candle_core::bail!(
                "shape mismatch for {}: the file has {:?}, the model needs {shape:?}",
                self.full(name),
                t.shape()
            ),
            None => self.get(shape, name)?.dequantize(&self.device),
        }
    }

    /// A linear layer `in_dim -> out_dim`: quantized `weight`, f32 `bias`.
    pub fn linear(&self, in_dim: usize, out_dim: usize) -> candle_core::Result<Linear> {
        let bias = self.dequantized(out_dim, "bias")?;
        Linear::from_arc(self.get((out_dim, in_dim), "weight")?, Some(bias))
    }

    /// The matmul by `weight` (`in_dim -> out_dim`): over its dense tensor when it has one (as
    /// loaded), else over its quantized blocks.
    pub fn weight(&self, in_dim: usize, out_dim: usize) -> candle_core::Result<QMatMul> {
        let shape = Shape::from((out_dim, in_dim));
        match self.dense.get(&self.full("weight")) {
            Some(t) if t.shape() == &shape => Ok(QMatMul::Tensor(t.clone())),
            Some(t) => candle_core::bail!(
                "shape mismatch for {}: the file has {:?}, the model needs {shape:?}",
                self.full("weight"),
                t.shape()
            ),
            None => QMatMul::from_arc(self.get(shape, "weight")?),
        }
    }

    /// A quantized matmul by `weight` (`in_dim -> out_dim`), no bias.
    pub(crate) fn matmul(&self, in_dim: usize, out_dim: usize) -> candle_core::Result<QMatMul> {
        QMatMul::from_arc(self.get((out_dim, in_dim), "weight")?)
    }
}
