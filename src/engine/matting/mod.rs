//! Salient-object matting (background removal): the U²-Net family and IS-Net (DIS), which also
//! loads BRIA's RMBG-1.4 weights. Runs on the engine thread that owns the device.

use std::path::Path;

/// Run the raw network of the matting weights at `weights` on the tensor `input` of the
/// safetensors file `input` and write its raw output as tensor `output` (parity runs).
pub fn dump_raw(weights: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    let _ = (weights, input, output);
    anyhow::bail!("matting is not built yet")
}

/// A loaded matting network (placeholder until the family lands; every load fails).
pub struct Matting {
    _private: (),
}

impl Matting {
    /// Load matting weights (safetensors or `.pth`).
    pub fn load(path: &Path, _device: &candle_core::Device) -> anyhow::Result<Self> {
        anyhow::bail!("{}: matting is not built yet", path.display())
    }

    /// `u2net`, `u2netp` or `isnet`.
    pub fn arch(&self) -> &'static str {
        "none"
    }

    /// The full-resolution soft mask of the salient object.
    pub fn predict_mask(
        &self,
        img: &image::RgbaImage,
        _cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<image::GrayImage, crate::engine::EngineError> {
        Ok(image::GrayImage::from_pixel(
            img.width(),
            img.height(),
            image::Luma([255]),
        ))
    }
}

/// The image with its alpha multiplied by the mask.
pub fn apply_mask(img: &image::RgbaImage, mask: &image::GrayImage) -> image::RgbaImage {
    let mut out = img.clone();
    for (p, m) in out.pixels_mut().zip(mask.pixels()) {
        p.0[3] = ((u16::from(p.0[3]) * u16::from(m.0[0]) + 127) / 255) as u8;
    }
    out
}

/// Write tiny random-weight matting models (placeholder: none yet).
pub fn write_tiny(_dir: &Path, _seed: u64) -> anyhow::Result<Vec<std::path::PathBuf>> {
    Ok(Vec::new())
}
