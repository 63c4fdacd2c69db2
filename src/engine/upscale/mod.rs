//! Super-resolution upscaling: the Real-ESRGAN family (RRDBNet x4/x2 and the compact SRVGG
//! net), with tiled inference. Runs on the engine thread that owns the device. Architectures
//! (`rrdb`, `srvgg`) and sizes are told from the weights (`load`); `tile` does the tiling,
//! `tiny` writes random-weight models in the release formats. Nothing here does I/O beyond
//! reading weight files.
//!
//! Alpha: a fully opaque image skips it. Otherwise alpha is upscaled with a bicubic
//! (Catmull-Rom) filter rather than through the network: the nets are trained on photos, and a
//! mask run through them grows halos and noise where it should stay exactly 0 or 255; the
//! filter keeps flat transparent and opaque regions exact and costs nothing next to the net.

mod load;
mod rrdb;
mod srvgg;
mod tile;
mod tiny;

pub(crate) use tile::TileOptions;
pub use tiny::write_tiny;

use super::EngineError;
use anyhow::{bail, Context};
use candle_core::{Device, Tensor};
use image::RgbaImage;
use load::StateDict;
use rrdb::RrdbNet;
use srvgg::SrvggNet;
use std::path::Path;
use std::sync::atomic::AtomicBool;

enum Net {
    Rrdb(Box<RrdbNet>),
    Srvgg(SrvggNet),
}

/// A loaded Real-ESRGAN-family upscaler, computing in f32 on one device.
pub(crate) struct Upscaler {
    net: Net,
    device: Device,
}

impl Upscaler {
    /// Load `.safetensors` or PyTorch `.pth` weights (state dict bare or under `params_ema` /
    /// `params`, optional `module.` prefix), telling RRDBNet from SRVGGNetCompact and their
    /// sizes from the tensors.
    pub(crate) fn load(path: &Path, device: &Device) -> anyhow::Result<Self> {
        let what = || format!("loading upscaler weights {}", path.display());
        let sd = StateDict::read(path, device).with_context(what)?;
        let net = Self::build(&sd).with_context(what)?;
        Ok(Upscaler {
            net,
            device: device.clone(),
        })
    }

    fn build(sd: &StateDict) -> anyhow::Result<Net> {
        if sd.has("conv_first.weight") {
            return Ok(Net::Rrdb(Box::new(
                RrdbNet::load(sd).context("as RRDBNet")?,
            )));
        }
        if sd.has("body.0.weight") {
            return Ok(Net::Srvgg(
                SrvggNet::load(sd).context("as SRVGGNetCompact")?,
            ));
        }
        if sd.has("model.0.weight") {
            bail!("old-architecture ESRGAN checkpoints (`model.N.*` names) are not supported");
        }
        bail!(
            "not a Real-ESRGAN model: no `conv_first.weight` (RRDBNet) or `body.0.weight` \
             (SRVGGNetCompact); it holds {}",
            sd.sample_names()
        )
    }

    /// Output size over input size: 4 or 2 (1 for the rare x1 RRDBNet).
    pub(crate) fn scale(&self) -> u32 {
        match &self.net {
            Net::Rrdb(n) => n.config().scale(),
            Net::Srvgg(n) => n.config().scale as u32,
        }
    }

    /// `"rrdbnet"` or `"srvgg"`.
    pub(crate) fn arch(&self) -> &'static str {
        match &self.net {
            Net::Rrdb(_) => "rrdbnet",
            Net::Srvgg(_) => "srvgg",
        }
    }

    /// Input pixels an output pixel can depend on, on each side: a tile overlap of at least
    /// this makes tiled output equal to untiled output.
    #[cfg(test)]
    pub(crate) fn receptive_radius(&self) -> u32 {
        match &self.net {
            Net::Rrdb(n) => n.config().receptive_radius(),
            Net::Srvgg(n) => n.config().receptive_radius(),
        }
    }

    /// Input sides must be multiples of this (the pixel-unshuffle factor of x2/x1 RRDBNet).
    pub(crate) fn alignment(&self) -> u32 {
        match &self.net {
            Net::Rrdb(n) => n.config().unshuffle as u32,
            Net::Srvgg(_) => 1,
        }
    }

    /// The raw network: `(N, 3, H, W)` f32 in [0, 1] → `(N, 3, sH, sW)`, not clamped.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.net {
            Net::Rrdb(n) => n.forward(x),
            Net::Srvgg(n) => n.forward(x),
        }
    }

    /// Upscale `img` tile by tile (see [`TileOptions`]); checks `cancel` between tiles.
    pub(crate) fn upscale(
        &self,
        img: &RgbaImage,
        tiles: &TileOptions,
        cancel: &AtomicBool,
    ) -> Result<RgbaImage, EngineError> {
        let s = self.scale();
        let (w, h) = output_size(img, s)?;
        if tiles.tile == 0 {
            return Err(invalid("tile", "the tile size must be at least 1"));
        }
        let mut out = RgbaImage::new(w, h);
        let input = tile::Planes::colour(img, self.alignment() as usize);
        let geometry = (tiles, self.alignment() as usize, s as usize);
        let net = |x: &Tensor| self.forward(x);
        tile::run(&net, &input, geometry, cancel, &mut out, &self.device)?;
        upscale_alpha(img, &mut out);
        Ok(out)
    }
}

fn invalid(field: &str, message: &str) -> EngineError {
    EngineError::Invalid {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// The upscaled size, refusing empty images and sizes past what an image can hold.
fn output_size(img: &RgbaImage, s: u32) -> Result<(u32, u32), EngineError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(invalid("image", "the image is empty"));
    }
    let (w, h) = (img.width().checked_mul(s), img.height().checked_mul(s));
    match (w, h) {
        (Some(w), Some(h)) if u64::from(w) * u64::from(h) <= u64::from(u32::MAX / 4) => Ok((w, h)),
        _ => Err(invalid("image", "the upscaled image would be too large")),
    }
}

/// Fill the alpha channel of `out` from `img`'s (see the module header).
fn upscale_alpha(img: &RgbaImage, out: &mut RgbaImage) {
    if img.pixels().all(|p| p[3] == 255) {
        out.pixels_mut().for_each(|p| p[3] = 255);
        return;
    }
    let alpha = image::GrayImage::from_fn(img.width(), img.height(), |x, y| {
        image::Luma([img.get_pixel(x, y)[3]])
    });
    let filter = image::imageops::FilterType::CatmullRom;
    let big = image::imageops::resize(&alpha, out.width(), out.height(), filter);
    for (p, a) in out.pixels_mut().zip(big.pixels()) {
        p[3] = a[0];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tiny_models() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_tiny(dir.path(), 11).unwrap();
        (dir, paths)
    }

    fn load(path: &Path) -> Upscaler {
        Upscaler::load(path, &Device::Cpu).unwrap()
    }

    /// Gradients and a square, with alpha 0 at the corners and 255 in the middle.
    fn picture(w: u32, h: u32) -> RgbaImage {
        RgbaImage::from_fn(w, h, |x, y| {
            let inside = (w / 4..3 * w / 4).contains(&x) && (h / 4..3 * h / 4).contains(&y);
            let edge = x.min(w - 1 - x).min(y.min(h - 1 - y));
            // 0 within 4 pixels of the border, 255 from 8 pixels in, a ramp between.
            let a = (edge.saturating_sub(3) * 51).min(255) as u8;
            let r = (x * 255 / w) as u8;
            image::Rgba([r, (y * 255 / h) as u8, if inside { 230 } else { 40 }, a])
        })
    }

    fn upscale(up: &Upscaler, img: &RgbaImage, tile: u32, overlap: u32) -> RgbaImage {
        let opts = TileOptions { tile, overlap };
        up.upscale(img, &opts, &AtomicBool::new(false)).unwrap()
    }

    fn max_diff(a: &RgbaImage, b: &RgbaImage) -> u8 {
        let d = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y));
        d.max().unwrap_or(0)
    }

    #[test]
    fn load_each_tiny_file_infers_arch_and_scale() {
        let (_dir, paths) = tiny_models();
        let found: Vec<_> = paths
            .iter()
            .map(|p| (load(p).arch(), load(p).scale()))
            .collect();
        assert_eq!(found, [("rrdbnet", 4), ("rrdbnet", 2), ("srvgg", 4)]);
    }

    #[test]
    fn upscale_64px_gives_scale_times_size() {
        let (_dir, paths) = tiny_models();
        let img = picture(64, 64);
        for (path, side) in paths.iter().zip([256, 128, 256]) {
            let out = upscale(&load(path), &img, 256, 16);
            assert_eq!(out.dimensions(), (side, side), "{}", path.display());
        }
    }

    #[test]
    fn upscale_odd_size_x2_pads_and_crops() {
        let (_dir, paths) = tiny_models();
        let out = upscale(&load(&paths[1]), &picture(33, 17), 8, 4);
        assert_eq!(out.dimensions(), (66, 34));
    }

    #[test]
    fn upscale_tiles_of_any_size_match_untiled_within_1_lsb() {
        let (_dir, paths) = tiny_models();
        let img = picture(64, 48);
        for path in &paths {
            let up = load(path);
            let whole = upscale(&up, &img, 64, 0);
            let grey = whole.pixels().filter(|p| p[0] > 0 && p[0] < 255).count();
            assert!(grey > whole.len() / 8, "tiny outputs should not be clipped");
            for tile in [16, 24, 40] {
                let tiled = upscale(&up, &img, tile, up.receptive_radius());
                assert!(
                    max_diff(&whole, &tiled) <= 1,
                    "{} tile {tile}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn upscale_alpha_keeps_transparent_corners_and_opaque_centre() {
        let (_dir, paths) = tiny_models();
        let out = upscale(&load(&paths[2]), &picture(32, 32), 256, 16);
        assert_eq!(out.get_pixel(0, 0)[3], 0);
        assert_eq!(out.get_pixel(127, 127)[3], 0);
        assert_eq!(out.get_pixel(64, 64)[3], 255);
    }

    #[test]
    fn upscale_cancelled_before_first_tile_returns_cancelled() {
        let (_dir, paths) = tiny_models();
        let opts = TileOptions::default();
        let res = load(&paths[2]).upscale(&picture(16, 16), &opts, &AtomicBool::new(true));
        assert!(matches!(res, Err(EngineError::Cancelled)));
    }

    #[test]
    fn upscale_zero_tile_is_invalid() {
        let (_dir, paths) = tiny_models();
        let opts = TileOptions {
            tile: 0,
            overlap: 0,
        };
        let res = load(&paths[2]).upscale(&picture(8, 8), &opts, &AtomicBool::new(false));
        assert!(matches!(res, Err(EngineError::Invalid { field, .. }) if field == "tile"));
    }

    #[test]
    fn load_not_a_model_fails_naming_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("RealESRGAN_x4plus.pth");
        std::fs::write(&path, vec![0x5a; 300]).unwrap();
        let err = format!("{:#}", Upscaler::load(&path, &Device::Cpu).err().unwrap());
        assert!(
            err.contains("RealESRGAN_x4plus.pth") && err.contains("not a model"),
            "{err}"
        );
    }

    #[test]
    fn load_safetensors_without_upscaler_keys_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.safetensors");
        let t = Tensor::zeros(4, candle_core::DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&std::collections::HashMap::from([("w", t)]), &path)
            .unwrap();
        let err = format!("{:#}", Upscaler::load(&path, &Device::Cpu).err().unwrap());
        assert!(
            err.contains("other.safetensors") && err.contains("not a Real-ESRGAN"),
            "{err}"
        );
    }

    #[test]
    fn load_wrong_shape_fails_naming_tensor() {
        let dir = tempfile::tempdir().unwrap();
        let mut tensors = tiny::rrdb_tensors(4, 3).unwrap();
        let bad = Tensor::zeros((4, 9, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        tensors.insert("body.0.rdb2.conv2.weight".to_owned(), bad);
        let path = dir.path().join("bad.safetensors");
        candle_core::safetensors::save(&tensors, &path).unwrap();
        let err = format!("{:#}", Upscaler::load(&path, &Device::Cpu).err().unwrap());
        assert!(err.contains("bad.safetensors"), "{err}");
        assert!(
            err.contains("body.0.rdb2.conv2.weight") && err.contains("[4, 9, 3, 3]"),
            "{err}"
        );
    }
}
