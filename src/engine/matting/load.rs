//! Reading matting weights: a PyTorch `.pth` (zip) or a `.safetensors` file into named f32
//! tensors on the device, with the `module.` prefix of `DataParallel` checkpoints stripped and a
//! `state_dict` / `model` wrapper unwrapped. [`Weights`] hands out convolutions, checking each
//! shape against what the layer before it produces, so a file of the wrong network fails with
//! the tensor at fault. Knows nothing of the network topologies.

use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// BatchNorm epsilon of every `nn.BatchNorm2d` in these networks (PyTorch's default).
pub(super) const BN_EPS: f64 = 1e-5;

/// What is wrong with a set of weights.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("tensor `{0}` is missing")]
    Missing(String),
    #[error("tensor `{name}` has shape {got:?}, expected {expected}")]
    Shape {
        name: String,
        got: Vec<usize>,
        expected: String,
    },
    #[error("no U²-Net or IS-Net tensors (found {0})")]
    UnknownArch(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Wrapper keys of training checkpoints that hold the state dict.
const WRAPPER_KEYS: [&str; 2] = ["state_dict", "model"];

/// Read every tensor of `path` as f32 on `device`.
pub(super) fn read_tensors(
    path: &Path,
    device: &Device,
) -> anyhow::Result<HashMap<String, Tensor>> {
    let head = read_head(path)?;
    let raw = if head.starts_with(b"PK\x03\x04") {
        read_pth(path)?
    } else if head.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        // The legacy format opens with a pickled magic number.
        return Err(anyhow::anyhow!(
            "{}: a legacy (pre-1.6, not zip) PyTorch pickle, which is not supported; re-save it \
             with torch.save(state_dict, path) from a recent PyTorch",
            path.display()
        ));
    } else {
        candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}: neither a PyTorch .pth (zip) nor a safetensors file: {e}",
                    path.display()
                )
            })?
            .into_iter()
            .collect()
    };
    let mut out = HashMap::with_capacity(raw.len());
    for (name, t) in raw {
        if !t.dtype().is_float() {
            continue; // `num_batches_tracked` counters
        }
        let name = name.strip_prefix("module.").unwrap_or(&name).to_owned();
        out.insert(name, t.to_dtype(DType::F32)?.to_device(device)?);
    }
    Ok(out)
}

fn read_head(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open matting weights {}: {e}", path.display()))?;
    let mut head = Vec::with_capacity(8);
    file.take(8).read_to_end(&mut head)?;
    Ok(head)
}

/// A bare state dict, or one under a wrapper key.
fn read_pth(path: &Path) -> anyhow::Result<Vec<(String, Tensor)>> {
    let read = |key: Option<&str>| {
        candle_core::pickle::read_all_with_key(path, key).map_err(|e| {
            anyhow::anyhow!("{}: not a readable PyTorch checkpoint: {e}", path.display())
        })
    };
    let bare = read(None)?;
    if !bare.is_empty() {
        return Ok(bare);
    }
    for key in WRAPPER_KEYS {
        if let Ok(wrapped) = read(Some(key)) {
            if !wrapped.is_empty() {
                return Ok(wrapped);
            }
        }
    }
    anyhow::bail!(
        "{}: a PyTorch checkpoint without tensors (no state dict, nor one under {WRAPPER_KEYS:?})",
        path.display()
    )
}

/// A 2-D convolution with its (BatchNorm-folded) bias, ready to run.
#[derive(Debug, Clone)]
pub(super) struct Conv {
    weight: Tensor,
    /// `(1, C, 1, 1)`.
    bias: Option<Tensor>,
    padding: usize,
    stride: usize,
    dilation: usize,
}

/// How a convolution is applied (not stored in the weights).
#[derive(Debug, Clone, Copy)]
pub(super) struct ConvGeom {
    pub kernel: usize,
    pub(crate) padding: usize,
    pub(crate) stride: usize,
    pub(crate) dilation: usize,
}

impl ConvGeom {
    /// A 3×3 convolution whose padding equals its dilation (size-preserving at stride 1).
    pub(super) const fn dilated3(dilation: usize) -> Self {
        ConvGeom {
            kernel: 3,
            padding: dilation,
            stride: 1,
            dilation,
        }
    }
}

impl Conv {
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = x.conv2d(&self.weight, self.padding, self.stride, self.dilation, 1)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    pub(super) fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// Named tensors of one file.
#[derive(Debug)]
pub(super) struct Weights {
    tensors: HashMap<String, Tensor>,
    pub source: PathBuf,
}

impl Weights {
    pub(super) fn new(tensors: HashMap<String, Tensor>, source: &Path) -> Self {
        Weights {
            tensors,
            source: source.to_owned(),
        }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A few tensor names, for an error message.
    pub(super) fn sample_names(&self) -> String {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        let shown = names.iter().take(4).copied().collect::<Vec<_>>().join(", ");
        match names.len() {
            0 => "no tensors".to_owned(),
            n if n > 4 => format!("{n} tensors: {shown}, ..."),
            n => format!("{n} tensors: {shown}"),
        }
    }

    fn get(&self, name: &str) -> Result<&Tensor, LoadError> {
        self.tensors
            .get(name)
            .ok_or_else(|| LoadError::Missing(name.to_owned()))
    }

    /// The output channels of the conv weight `name` (any 4-D tensor).
    pub(super) fn out_channels(&self, name: &str) -> Result<usize, LoadError> {
        let t = self.get(name)?;
        match t.dims() {
            [out, _, _, _] => Ok(*out),
            got => Err(shape_error(name, got, "(out, in, k, k)".to_owned())),
        }
    }

    /// The vector `name`, checked to hold `len` values.
    fn vector(&self, name: &str, len: usize) -> Result<&Tensor, LoadError> {
        let t = self.get(name)?;
        if t.dims() != [len] {
            return Err(shape_error(name, t.dims(), format!("({len})")));
        }
        Ok(t)
    }

    /// The plain convolution `{prefix}.weight` / `{prefix}.bias` taking `in_ch` channels.
    pub(super) fn conv(
        &self,
        prefix: &str,
        in_ch: usize,
        geom: ConvGeom,
    ) -> Result<Conv, LoadError> {
        let name = format!("{prefix}.weight");
        let weight = self.get(&name)?;
        let out = match weight.dims() {
            [out, i, kh, kw] if *i == in_ch && *kh == geom.kernel && *kw == geom.kernel => *out,
            got => {
                let k = geom.kernel;
                return Err(shape_error(&name, got, format!("(out, {in_ch}, {k}, {k})")));
            }
        };
        let bias = match self.has(&format!("{prefix}.bias")) {
            true => Some(self.vector(&format!("{prefix}.bias"), out)?.clone()),
            false => None,
        };
        Ok(Conv {
            weight: weight.clone(),
            bias: bias.map(|b| b.reshape((1, out, 1, 1))).transpose()?,
            padding: geom.padding,
            stride: geom.stride,
            dilation: geom.dilation,
        })
    }

    /// The convolution `conv` followed by the eval-mode BatchNorm `bn`, folded into one
    /// convolution: `w·γ/√(var+ε)` and `(b − mean)·γ/√(var+ε) + β`.
    pub(super) fn conv_bn(
        &self,
        conv: &str,
        bn: &str,
        in_ch: usize,
        geom: ConvGeom,
    ) -> Result<Conv, LoadError> {
        let mut c = self.conv(conv, in_ch, geom)?;
        let out = c.out_channels();
        let gamma = self.vector(&format!("{bn}.weight"), out)?;
        let beta = self.vector(&format!("{bn}.bias"), out)?;
        let mean = self.vector(&format!("{bn}.running_mean"), out)?;
        let var = self.vector(&format!("{bn}.running_var"), out)?;
        let scale = gamma.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let bias = match &c.bias {
            Some(b) => b.flatten_all()?.sub(mean)?,
            None => mean.neg()?,
        };
        let bias = bias.mul(&scale)?.add(beta)?;
        c.weight = c.weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        c.bias = Some(bias.reshape((1, out, 1, 1))?);
        Ok(c)
    }
}

fn shape_error(name: &str, got: &[usize], expected: String) -> LoadError {
    LoadError::Shape {
        name: name.to_owned(),
        got: got.to_vec(),
        expected,
    }
}
