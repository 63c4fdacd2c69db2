//! SRVGGNetCompact, Real-ESRGAN's compact net (realesr-general-x4v3, realesr-animevideov3): a
//! plain stack of 3×3 convolutions with PReLU at low resolution, a pixel shuffle, and the
//! nearest-upsampled input added back. Sizes and scale come from the weights; this file builds
//! and runs the layers, nothing else.

use super::load::StateDict;
use anyhow::{bail, Result};
use candle_core::{Module, Tensor};
use candle_nn::Conv2d;

/// Input and output channels (RGB).
const RGB: usize = 3;

/// Sizes of one SRVGGNetCompact, read from its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SrvggConfig {
    pub(crate) num_feat: usize,
    /// Convolutions between the first and the last one.
    pub(crate) num_conv: usize,
    pub scale: usize,
}

impl SrvggConfig {
    /// `body.{2k}` are convolutions and `body.{2k+1}` PReLUs; the last convolution has
    /// `3·scale²` outputs.
    pub(super) fn infer(sd: &StateDict) -> Result<Self> {
        let layers = sd.count(|i| format!("body.{i}.weight"));
        if layers < 3 || layers.is_multiple_of(2) {
            bail!("SRVGGNetCompact weights need body.0 .. body.2k (conv, PReLU, ..., conv); found {layers} layers");
        }
        if sd.dims("body.1.weight")?.len() != 1 {
            bail!(
                "tensor `body.1.weight` is not a PReLU weight; only PReLU SRVGGNetCompact \
                 models are supported (ReLU and leaky-ReLU ones cannot be told apart)"
            );
        }
        let first = sd.dims("body.0.weight")?;
        let num_feat = *first.first().unwrap_or(&0);
        let last = sd.dims(&format!("body.{}.weight", layers - 1))?;
        let out_ch = *last.first().unwrap_or(&0);
        let scale = (1..=8).find(|s| RGB * s * s == out_ch).ok_or_else(|| {
            anyhow::anyhow!(
                "the last convolution has {out_ch} outputs, not 3·scale² for a scale in 1..=8"
            )
        })?;
        Ok(SrvggConfig {
            num_feat,
            num_conv: (layers - 3) / 2,
            scale,
        })
    }

    /// Every convolution runs at input resolution and widens the view by one pixel.
    #[cfg(test)]
    pub(super) fn receptive_radius(&self) -> u32 {
        (self.num_conv + 2) as u32
    }
}

/// The loaded network.
pub(crate) struct SrvggNet {
    cfg: SrvggConfig,
    convs: Vec<Conv2d>,
    /// One PReLU slope per channel, `(1, F, 1, 1)`, after every convolution but the last.
    slopes: Vec<Tensor>,
}

impl SrvggNet {
    pub(super) fn load(sd: &StateDict) -> Result<Self> {
        let cfg = SrvggConfig::infer(sd)?;
        let f = cfg.num_feat;
        let n = cfg.num_conv + 2;
        let mut convs = Vec::with_capacity(n);
        let mut slopes = Vec::with_capacity(n - 1);
        for i in 0..n {
            let cin = if i == 0 { RGB } else { f };
            let cout = if i + 1 == n {
                RGB * cfg.scale * cfg.scale
            } else {
                f
            };
            convs.push(sd.conv3(&format!("body.{}", 2 * i), cin, cout)?);
            if i + 1 < n {
                let slope = sd.tensor(&format!("body.{}.weight", 2 * i + 1), &[f])?;
                slopes.push(slope.reshape((1, f, 1, 1))?);
            }
        }
        Ok(SrvggNet { cfg, convs, slopes })
    }

    pub(super) fn config(&self) -> &SrvggConfig {
        &self.cfg
    }

    /// `(N, 3, H, W)` → `(N, 3, sH, sW)`.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut out = x.clone();
        for (i, conv) in self.convs.iter().enumerate() {
            out = conv.forward(&out)?;
            if let Some(slope) = self.slopes.get(i) {
                out = prelu(&out, slope)?;
            }
        }
        let s = self.cfg.scale;
        let (_, _, h, w) = x.dims4()?;
        candle_nn::ops::pixel_shuffle(&out, s)? + x.upsample_nearest2d(h * s, w * s)?
    }
}

/// `max(0, x) + slope · min(0, x)`, PyTorch's PReLU.
fn prelu(x: &Tensor, slope: &Tensor) -> candle_core::Result<Tensor> {
    x.relu()? + x.minimum(0f32)?.broadcast_mul(slope)?
}

#[cfg(test)]
mod tests {
    use super::super::tiny;
    use super::*;
    use candle_core::Device;

    #[test]
    fn infer_tiny_reads_sizes_from_shapes() {
        let sd = StateDict::from_tensors(tiny::srvgg_tensors(1).unwrap());
        let cfg = SrvggConfig::infer(&sd).unwrap();
        assert_eq!((cfg.num_feat, cfg.num_conv, cfg.scale), tiny::SRVGG_SIZES);
    }

    #[test]
    fn prelu_negative_values_scaled_per_channel() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[-1f32, 2., -3., 4.], &dev).unwrap();
        let x = x.reshape((1, 2, 1, 2)).unwrap();
        let slope = Tensor::new(&[0.5f32, 0.25], &dev).unwrap();
        let y = prelu(&x, &slope.reshape((1, 2, 1, 1)).unwrap()).unwrap();
        let y: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(y, vec![-0.5, 2., -0.75, 4.]);
    }
}
