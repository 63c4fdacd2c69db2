//! Salient-object matting (background removal): the U²-Net family (U²-Net, U²-NetP) and IS-Net
//! (DIS), whose code also loads BRIA's RMBG-1.4 weights. [`Matting::load`] reads `.pth` or
//! `.safetensors` weights and tells the architecture from the tensor names and shapes;
//! [`Matting::predict_mask`] turns a photo into a full-resolution soft mask and [`apply_mask`]
//! cuts it out. Runs on the engine thread that owns the device; knows nothing of jobs or doors.

mod body;
mod isnet;
mod load;
mod mask;
mod rsu;
mod tiny;
mod u2net;

pub(crate) use load::LoadError;
pub(crate) use mask::apply_mask;
pub use tiny::write_tiny;

use crate::engine::EngineError;
use candle_core::{Device, Tensor};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// The network family of a set of weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arch {
    U2Net,
    U2NetP,
    /// IS-Net (DIS) and BRIA RMBG-1.4.
    IsNet,
}

impl Arch {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Arch::U2Net => "u2net",
            Arch::U2NetP => "u2netp",
            Arch::IsNet => "isnet",
        }
    }

    /// The square input size the released weights were trained at.
    pub(crate) fn default_input_size(self) -> u32 {
        match self {
            Arch::U2Net | Arch::U2NetP => 320,
            Arch::IsNet => 1024,
        }
    }

    /// Tell the family from the tensor names (IS-Net has `conv_in`, U²-Net a fusing `outconv`)
    /// and U²-Net from U²-NetP by widths: U²-NetP keeps one width through the encoder, U²-Net
    /// widens `stage2`.
    fn detect(w: &load::Weights) -> Result<Self, LoadError> {
        if w.has("conv_in.weight") {
            return Ok(Arch::IsNet);
        }
        if !(w.has("outconv.weight") && w.has("stage1.rebnconvin.conv_s1.weight")) {
            return Err(LoadError::UnknownArch(w.sample_names()));
        }
        let stage1 = w.out_channels("stage1.rebnconvin.conv_s1.weight")?;
        let stage2 = w.out_channels("stage2.rebnconvin.conv_s1.weight")?;
        Ok(if stage1 == stage2 {
            Arch::U2NetP
        } else {
            Arch::U2Net
        })
    }
}

#[derive(Debug, Clone)]
enum Net {
    U2(u2net::U2Net),
    Is(isnet::IsNet),
}

/// A loaded matting network.
#[derive(Debug, Clone)]
pub(crate) struct Matting {
    net: Net,
    arch: Arch,
    input_size: u32,
    device: Device,
}

impl Matting {
    /// Load `.pth` or `.safetensors` weights of U²-Net, U²-NetP, IS-Net or RMBG-1.4.
    pub(crate) fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let tensors = load::read_tensors(path, device)?;
        let w = load::Weights::new(tensors, path);
        let bad = |e: LoadError| {
            anyhow::anyhow!(
                "{}: not U²-Net / IS-Net matting weights: {e}",
                w.source.display()
            )
        };
        let arch = Arch::detect(&w).map_err(bad)?;
        let net = match arch {
            Arch::IsNet => Net::Is(isnet::IsNet::load(&w).map_err(bad)?),
            Arch::U2Net | Arch::U2NetP => Net::U2(u2net::U2Net::load(&w).map_err(bad)?),
        };
        Ok(Matting {
            net,
            arch,
            input_size: arch.default_input_size(),
            device: device.clone(),
        })
    }

    /// Run at `size × size` instead of the family's default (tiny models, experiments).
    #[cfg(test)]
    pub(crate) fn with_input_size(mut self, size: u32) -> Self {
        self.input_size = size.max(1);
        self
    }

    /// The square size images are resized to before the network.
    #[cfg(test)]
    pub(crate) fn input_size(&self) -> u32 {
        self.input_size
    }

    /// `"u2net"`, `"u2netp"` or `"isnet"`.
    pub(crate) fn arch(&self) -> &'static str {
        self.arch.name()
    }

    /// The raw network: a normalised `(N, 3, S, S)` batch to the first (finest) output
    /// `(N, 1, S, S)` in [0, 1], as the references return it (U²-Net's fused `d0`, IS-Net's `d1`).
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.net {
            Net::U2(n) => n.forward(x),
            Net::Is(n) => n.forward(x),
        }
    }

    /// A soft mask of the salient object at the full size of `img`: predicted at the input
    /// size, min-max normalised as the references' post-processing does, resized smoothly.
    pub(crate) fn predict_mask(
        &self,
        img: &image::RgbaImage,
        cancel: &AtomicBool,
    ) -> Result<image::GrayImage, EngineError> {
        if img.width() == 0 || img.height() == 0 {
            return Err(EngineError::Invalid {
                field: "image".to_owned(),
                message: "the image is empty".to_owned(),
            });
        }
        let norm = match self.arch {
            Arch::U2Net | Arch::U2NetP => mask::Normalize::ImageNet,
            Arch::IsNet => mask::Normalize::Centered,
        };
        let x = mask::to_input(img, self.input_size, norm, &self.device)
            .map_err(EngineError::from_candle)?;
        check(cancel)?;
        let pred = self.forward(&x).map_err(EngineError::from_candle)?;
        check(cancel)?;
        mask::to_mask(&pred, img.width(), img.height()).map_err(EngineError::from_candle)
    }
}

fn check(cancel: &AtomicBool) -> Result<(), EngineError> {
    match cancel.load(Ordering::Relaxed) {
        true => Err(EngineError::Cancelled),
        false => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::files::torch_pth;
    use candle_core::DType;

    fn tiny() -> (tempfile::TempDir, Vec<std::path::PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_tiny(dir.path(), 7).unwrap();
        (dir, paths)
    }

    #[test]
    fn tiny_models_forward_one_channel_in_unit_range() {
        let (_dir, paths) = tiny();
        let archs: Vec<&str> = paths
            .iter()
            .map(|p| {
                let m = Matting::load(p, &Device::Cpu).unwrap().with_input_size(64);
                assert_eq!(m.input_size(), 64);
                let x = Tensor::randn(0f32, 1.0, (2, 3, 64, 64), &Device::Cpu).unwrap();
                let started = std::time::Instant::now();
                let y = m.forward(&x).unwrap();
                eprintln!("{} forward 2x64x64: {:?}", p.display(), started.elapsed());
                assert_eq!(y.dims(), &[2, 1, 64, 64]);
                let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
                assert!(v.iter().all(|v| (0.0..=1.0).contains(v)));
                m.arch()
            })
            .collect();
        assert_eq!(archs, ["u2net", "u2netp", "isnet", "isnet"]);
    }

    #[test]
    fn default_input_size_by_family() {
        let (_dir, paths) = tiny();
        let u2 = Matting::load(&paths[0], &Device::Cpu).unwrap();
        let is = Matting::load(&paths[3], &Device::Cpu).unwrap();
        assert_eq!((u2.input_size(), is.input_size()), (320, 1024));
    }

    #[test]
    fn predict_mask_tiny_full_image_size() {
        let (_dir, paths) = tiny();
        let img = image::RgbaImage::from_fn(150, 97, |x, y| {
            image::Rgba([(x % 256) as u8, (y * 2 % 256) as u8, 90, 255])
        });
        for path in [&paths[1], &paths[2]] {
            let m = Matting::load(path, &Device::Cpu)
                .unwrap()
                .with_input_size(64);
            let mask = m.predict_mask(&img, &AtomicBool::new(false)).unwrap();
            assert_eq!(mask.dimensions(), (150, 97));
            let (lo, hi) = mask
                .pixels()
                .fold((255, 0), |(lo, hi), p| (lo.min(p.0[0]), hi.max(p.0[0])));
            assert_eq!((lo, hi), (0, 255), "min-max normalised");
        }
    }

    #[test]
    fn predict_mask_cancelled_stops() {
        let (_dir, paths) = tiny();
        let m = Matting::load(&paths[1], &Device::Cpu)
            .unwrap()
            .with_input_size(32);
        let img = image::RgbaImage::new(40, 40);
        let err = m.predict_mask(&img, &AtomicBool::new(true)).unwrap_err();
        assert!(matches!(err, EngineError::Cancelled));
    }

    #[test]
    fn load_random_bytes_fails_naming_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("u2net.pth");
        let bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&path, bytes).unwrap();
        let err = format!("{:#}", Matting::load(&path, &Device::Cpu).unwrap_err());
        assert!(err.contains("u2net.pth"), "{err}");
        assert!(err.contains("neither a PyTorch .pth"), "{err}");
    }

    #[test]
    fn load_unrelated_tensors_fails_unknown_arch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.safetensors");
        let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&std::collections::HashMap::from([("fc.weight", t)]), &path)
            .unwrap();
        let err = format!("{:#}", Matting::load(&path, &Device::Cpu).unwrap_err());
        assert!(err.contains("other.safetensors"), "{err}");
        assert!(err.contains("no U²-Net or IS-Net tensors"), "{err}");
    }

    #[test]
    fn load_wrong_shape_fails_naming_tensor() {
        let (dir, paths) = tiny();
        let mut tensors: std::collections::HashMap<String, Tensor> =
            candle_core::pickle::read_all(&paths[0])
                .unwrap()
                .into_iter()
                .collect();
        let name = "stage3.rebnconv2.conv_s1.weight";
        tensors.insert(
            name.to_owned(),
            Tensor::zeros((4, 5, 3, 3), DType::F32, &Device::Cpu).unwrap(),
        );
        let path = dir.path().join("broken.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let err = format!("{:#}", Matting::load(&path, &Device::Cpu).unwrap_err());
        assert!(err.contains("broken.safetensors"), "{err}");
        assert!(err.contains(name) && err.contains("[4, 5, 3, 3]"), "{err}");
    }

    #[test]
    fn load_module_prefix_is_stripped() {
        let (dir, paths) = tiny();
        let prefixed: Vec<(String, Tensor)> = candle_core::pickle::read_all(&paths[1])
            .unwrap()
            .into_iter()
            .map(|(k, v)| (format!("module.{k}"), v))
            .collect();
        let path = dir.path().join("dp.pth");
        torch_pth::write_state_dict(&path, None, &prefixed).unwrap();
        assert_eq!(Matting::load(&path, &Device::Cpu).unwrap().arch(), "u2netp");
    }

    #[test]
    fn load_state_dict_wrapper_is_unwrapped() {
        let (dir, paths) = tiny();
        let tensors = candle_core::pickle::read_all(&paths[2]).unwrap();
        let path = dir.path().join("checkpoint.pth");
        torch_pth::write_state_dict(&path, Some("state_dict"), &tensors).unwrap();
        assert_eq!(Matting::load(&path, &Device::Cpu).unwrap().arch(), "isnet");
    }

    #[test]
    fn load_pickle_without_model_keys_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resnet.pth");
        let t = Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap();
        torch_pth::write_state_dict(&path, None, &[("fc.weight".to_owned(), t)]).unwrap();
        let err = format!("{:#}", Matting::load(&path, &Device::Cpu).unwrap_err());
        assert!(err.contains("resnet.pth"), "{err}");
        assert!(
            err.contains("no U²-Net or IS-Net tensors (found 1 tensors: fc.weight)"),
            "{err}"
        );
    }
}
