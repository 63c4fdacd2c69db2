//! Reading an upscaler's state dict from `.safetensors` or a PyTorch `.pth` zip checkpoint, and
//! the shape-checked accessors the architectures build their layers with. It knows the wrappers
//! Real-ESRGAN's releases use (`params_ema`, `params`) and the `module.` prefix of
//! DataParallel checkpoints; it does not know any architecture.

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{Conv2d, Conv2dConfig};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Wrapper keys tried in order on a `.pth` file before reading it as a bare state dict.
const PTH_WRAPPERS: [&str; 2] = ["params_ema", "params"];

/// The tensors of one checkpoint, in f32 on the device they will run on.
pub(crate) struct StateDict {
    tensors: HashMap<String, Tensor>,
}

impl StateDict {
    /// Read `path`, telling the format from its first bytes rather than its name.
    pub(super) fn read(path: &Path, device: &Device) -> Result<Self> {
        let raw = match sniff(path)? {
            Format::Zip => read_pth(path)?,
            Format::Safetensors => candle_core::safetensors::load(path, &Device::Cpu)
                .context("not a readable safetensors file")?
                .into_iter()
                .collect(),
        };
        if raw.is_empty() {
            bail!(
                "the file holds no tensors (a .pth state dict must be bare or under \
                 `params_ema` or `params`)"
            );
        }
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, t) in raw {
            let name = name.strip_prefix("module.").unwrap_or(&name).to_owned();
            let t = t
                .to_dtype(DType::F32)
                .and_then(|t| t.to_device(device))
                .with_context(|| format!("tensor `{name}`"))?;
            tensors.insert(name, t);
        }
        Ok(StateDict { tensors })
    }

    /// A state dict from tensors in memory (tests, tiny models).
    #[cfg(test)]
    pub(super) fn from_tensors(tensors: HashMap<String, Tensor>) -> Self {
        StateDict { tensors }
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A few tensor names, sorted, for error messages.
    pub(super) fn sample_names(&self) -> String {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        let shown: Vec<&str> = names.iter().take(4).copied().collect();
        format!("{} tensors, such as {}", names.len(), shown.join(", "))
    }

    /// The dims of tensor `name`, or an error naming it.
    pub(super) fn dims(&self, name: &str) -> Result<&[usize]> {
        Ok(self.get(name)?.dims())
    }

    fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors
            .get(name)
            .with_context(|| format!("missing tensor `{name}`"))
    }

    /// Tensor `name`, which must have exactly `dims`.
    pub(super) fn tensor(&self, name: &str, dims: &[usize]) -> Result<Tensor> {
        let t = self.get(name)?;
        if t.dims() != dims {
            bail!(
                "tensor `{name}` has shape {:?}, expected {dims:?}",
                t.dims()
            );
        }
        Ok(t.clone())
    }

    /// The 3×3, padding-1 convolution `{prefix}.weight` / `{prefix}.bias` from `cin` to `cout`
    /// channels.
    pub(super) fn conv3(&self, prefix: &str, cin: usize, cout: usize) -> Result<Conv2d> {
        let weight = self.tensor(&format!("{prefix}.weight"), &[cout, cin, 3, 3])?;
        let bias = self.tensor(&format!("{prefix}.bias"), &[cout])?;
        let config = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Conv2d::new(weight, Some(bias), config))
    }

    /// How many consecutive indices `i` from 0 have a tensor named `format(i)`.
    pub(super) fn count(&self, format: impl Fn(usize) -> String) -> usize {
        (0..).take_while(|&i| self.has(&format(i))).count()
    }
}

enum Format {
    Zip,
    Safetensors,
}

/// Tell a PyTorch zip checkpoint from a safetensors file by their first bytes.
fn sniff(path: &Path) -> Result<Format> {
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).context("cannot open the file")?;
    let n = file.read(&mut head).context("cannot read the file")?;
    if n >= 4 && head[..4] == *b"PK\x03\x04" {
        return Ok(Format::Zip);
    }
    // safetensors: an 8-byte little-endian header length, then a JSON object.
    if n == 9 && head[8] == b'{' {
        return Ok(Format::Safetensors);
    }
    bail!(
        "not a model file: neither a safetensors file nor a PyTorch zip checkpoint \
         (legacy non-zip .pth files are not supported)"
    )
}

/// Read a `.pth` state dict, unwrapping `params_ema` or `params` when present.
fn read_pth(path: &Path) -> Result<Vec<(String, Tensor)>> {
    for key in PTH_WRAPPERS {
        match candle_core::pickle::read_all_with_key(path, Some(key)) {
            Ok(tensors) if !tensors.is_empty() => return Ok(tensors),
            Ok(_) => {}
            // candle reports a missing wrapper as "key ... not found"; anything else is a real
            // failure to read the file.
            Err(e) if e.to_string().contains("not found") => {}
            Err(e) => return Err(e).context("not a readable PyTorch checkpoint"),
        }
    }
    candle_core::pickle::read_all(path).context("not a readable PyTorch checkpoint")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::files::torch_pth::write_state_dict;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn read_random_bytes_fails_naming_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "x.pth", b"\x13\x37 this is not a model at all");
        let err = StateDict::read(&path, &Device::Cpu).err().unwrap();
        assert!(format!("{err:#}").contains("not a model file"), "{err:#}");
    }

    #[test]
    fn read_safetensors_strips_module_prefix_and_converts_to_f32() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let t = Tensor::ones((2, 3), DType::F64, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&HashMap::from([("module.a.weight", t)]), &path).unwrap();
        let sd = StateDict::read(&path, &Device::Cpu).unwrap();
        let a = sd.tensor("a.weight", &[2, 3]).unwrap();
        assert_eq!(a.dtype(), DType::F32);
    }

    #[test]
    fn read_pth_unwraps_params_ema_and_params_and_bare() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::arange(0f32, 6., &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        for wrapper in [Some("params_ema"), Some("params"), None] {
            let path = dir.path().join("m.pth");
            let tensors = [("module.conv.weight".to_owned(), t.clone())];
            write_state_dict(&path, wrapper, &tensors).unwrap();
            let sd = StateDict::read(&path, &Device::Cpu).unwrap();
            let got = sd.tensor("conv.weight", &[2, 3]).unwrap();
            assert_eq!(got.to_vec2::<f32>().unwrap(), t.to_vec2::<f32>().unwrap());
        }
    }

    #[test]
    fn read_pth_other_wrapper_fails_naming_the_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.pth");
        let t = Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap();
        write_state_dict(&path, Some("generator"), &[("w".to_owned(), t)]).unwrap();
        let err = format!("{:#}", StateDict::read(&path, &Device::Cpu).err().unwrap());
        assert!(err.contains("params_ema"), "{err}");
    }

    #[test]
    fn tensor_wrong_shape_names_tensor_and_shapes() {
        let t = Tensor::zeros((4, 3, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let sd = StateDict::from_tensors(HashMap::from([("c.weight".to_owned(), t)]));
        let err = sd.conv3("c", 3, 8).err().unwrap().to_string();
        assert!(
            err.contains("`c.weight`") && err.contains("[4, 3, 3, 3]"),
            "{err}"
        );
        assert!(sd
            .conv3("d", 3, 4)
            .err()
            .unwrap()
            .to_string()
            .contains("missing"));
    }
}
