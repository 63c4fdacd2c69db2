//! Super-resolution upscaling: the Real-ESRGAN family (RRDBNet x4/x2 and the compact SRVGG
//! net), with tiled inference. Runs on the engine thread that owns the device.

use std::path::Path;

/// Run the raw network of the upscaler weights at `weights` on the tensor `input` of the
/// safetensors file `input` and write its raw output as tensor `output` (parity runs).
pub fn dump_raw(weights: &Path, input: &Path, output: &Path) -> anyhow::Result<()> {
    let _ = (weights, input, output);
    anyhow::bail!("upscaling is not built yet")
}

/// Tiling of the upscaler's input, so memory stays bounded at any size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileOptions {
    pub tile: u32,
    pub overlap: u32,
}

impl Default for TileOptions {
    fn default() -> Self {
        TileOptions {
            tile: 256,
            overlap: 16,
        }
    }
}

/// A loaded upscaler (placeholder until the family lands; every load fails).
pub struct Upscaler {
    _private: (),
}

impl Upscaler {
    /// Load upscaler weights (safetensors or `.pth`).
    pub fn load(path: &Path, _device: &candle_core::Device) -> anyhow::Result<Self> {
        anyhow::bail!("{}: upscaling is not built yet", path.display())
    }

    /// 2 or 4.
    pub fn scale(&self) -> u32 {
        4
    }

    /// `rrdbnet` or `srvgg`.
    pub fn arch(&self) -> &'static str {
        "none"
    }

    /// Upscale by `scale()`, tile by tile.
    pub fn upscale(
        &self,
        img: &image::RgbaImage,
        _tiles: &TileOptions,
        _cancel: &std::sync::atomic::AtomicBool,
    ) -> Result<image::RgbaImage, crate::engine::EngineError> {
        Ok(img.clone())
    }
}

/// Write tiny random-weight upscalers (placeholder: none yet).
pub fn write_tiny(_dir: &Path, _seed: u64) -> anyhow::Result<Vec<std::path::PathBuf>> {
    Ok(Vec::new())
}
