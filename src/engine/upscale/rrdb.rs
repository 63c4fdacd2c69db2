//! RRDBNet, the ESRGAN / Real-ESRGAN x4plus and x2plus network: residual-in-residual dense
//! blocks at low resolution, then two nearest ×2 upsamplings with convolutions. The x2 (x1)
//! variants pixel-unshuffle the input by 2 (4) first, so every variant upsamples by 4 inside.
//! Sizes come from the weight shapes; this file builds and runs the layers, nothing else.

use super::load::StateDict;
use anyhow::{bail, Context, Result};
use candle_core::{Module, Tensor};
use candle_nn::Conv2d;

const LRELU_SLOPE: f64 = 0.2;
/// Residual scaling of each dense block and of each RRDB.
const RESIDUAL_SCALE: f64 = 0.2;
/// Convolutions on the longest path through one residual dense block.
const CONVS_PER_RDB: usize = 5;
/// Input and output channels (RGB).
const RGB: usize = 3;

/// Sizes of one RRDBNet, read from its weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RrdbConfig {
    pub(crate) num_feat: usize,
    pub(crate) num_block: usize,
    pub(crate) num_grow_ch: usize,
    /// 1 for x4, 2 for x2, 4 for x1: the input is pixel-unshuffled by this factor.
    pub(crate) unshuffle: usize,
}

impl RrdbConfig {
    /// Infer the sizes from the shapes of `conv_first` and the first dense block.
    pub(super) fn infer(sd: &StateDict) -> Result<Self> {
        let first = sd.dims("conv_first.weight")?;
        let &[num_feat, in_ch, 3, 3] = first else {
            bail!("tensor `conv_first.weight` has shape {first:?}, expected [F, C, 3, 3]");
        };
        let unshuffle = match in_ch {
            3 => 1,
            12 => 2,
            48 => 4,
            _ => {
                bail!("conv_first takes {in_ch} channels; RRDBNet takes 3 (x4), 12 (x2) or 48 (x1)")
            }
        };
        let num_block = sd.count(|i| format!("body.{i}.rdb1.conv1.weight"));
        if num_block == 0 {
            bail!("RRDBNet weights without `body.0.rdb1.conv1.weight`");
        }
        let num_grow_ch = *sd.dims("body.0.rdb1.conv1.weight")?.first().unwrap_or(&0);
        Ok(RrdbConfig {
            num_feat,
            num_block,
            num_grow_ch,
            unshuffle,
        })
    }

    /// Output size over input size.
    pub(super) fn scale(&self) -> u32 {
        4 / self.unshuffle as u32
    }

    /// How far (input pixels) an output pixel sees: one pixel per low-resolution convolution
    /// (conv_first, 5 per dense block, conv_body), plus the high-resolution convolutions and the
    /// unshuffle cell, rounded up to whole low-resolution pixels.
    #[cfg(test)]
    pub(super) fn receptive_radius(&self) -> u32 {
        let lr_convs = 2 + 3 * CONVS_PER_RDB * self.num_block;
        ((lr_convs + 2) * self.unshuffle) as u32
    }
}

/// One residual dense block: five convolutions, each seeing all earlier features.
struct Rdb {
    /// conv1..conv4, each followed by leaky ReLU and appended to the features.
    grow: Vec<Conv2d>,
    /// conv5, back to `num_feat` channels.
    fuse: Conv2d,
}

impl Rdb {
    fn load(sd: &StateDict, prefix: &str, cfg: &RrdbConfig) -> Result<Self> {
        let (f, g) = (cfg.num_feat, cfg.num_grow_ch);
        let grow = (0..CONVS_PER_RDB - 1)
            .map(|i| sd.conv3(&format!("{prefix}.conv{}", i + 1), f + i * g, g))
            .collect::<Result<_>>()?;
        let fuse = sd.conv3(
            &format!("{prefix}.conv{CONVS_PER_RDB}"),
            f + (CONVS_PER_RDB - 1) * g,
            f,
        )?;
        Ok(Rdb { grow, fuse })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut feats = vec![x.clone()];
        for conv in &self.grow {
            let out = conv.forward(&Tensor::cat(&feats, 1)?)?;
            feats.push(lrelu(&out)?);
        }
        let out = self.fuse.forward(&Tensor::cat(&feats, 1)?)?;
        (out * RESIDUAL_SCALE)? + x
    }
}

/// Residual in residual: three dense blocks, scaled and added to the input.
struct Rrdb {
    rdbs: [Rdb; 3],
}

impl Rrdb {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut out = x.clone();
        for rdb in &self.rdbs {
            out = rdb.forward(&out)?;
        }
        (out * RESIDUAL_SCALE)? + x
    }
}

/// The loaded network.
pub(crate) struct RrdbNet {
    cfg: RrdbConfig,
    conv_first: Conv2d,
    body: Vec<Rrdb>,
    conv_body: Conv2d,
    conv_up1: Conv2d,
    conv_up2: Conv2d,
    conv_hr: Conv2d,
    conv_last: Conv2d,
}

impl RrdbNet {
    pub(super) fn load(sd: &StateDict) -> Result<Self> {
        let cfg = RrdbConfig::infer(sd)?;
        let f = cfg.num_feat;
        let in_ch = RGB * cfg.unshuffle * cfg.unshuffle;
        let body = (0..cfg.num_block)
            .map(|i| {
                let rdb = |j: usize| Rdb::load(sd, &format!("body.{i}.rdb{j}"), &cfg);
                Ok(Rrdb {
                    rdbs: [rdb(1)?, rdb(2)?, rdb(3)?],
                })
            })
            .collect::<Result<_>>()
            .context("in the RRDB body")?;
        Ok(RrdbNet {
            cfg,
            conv_first: sd.conv3("conv_first", in_ch, f)?,
            body,
            conv_body: sd.conv3("conv_body", f, f)?,
            conv_up1: sd.conv3("conv_up1", f, f)?,
            conv_up2: sd.conv3("conv_up2", f, f)?,
            conv_hr: sd.conv3("conv_hr", f, f)?,
            conv_last: sd.conv3("conv_last", f, RGB)?,
        })
    }

    pub(super) fn config(&self) -> &RrdbConfig {
        &self.cfg
    }

    /// `(N, 3, H, W)` → `(N, 3, sH, sW)`; H and W must be multiples of the unshuffle factor.
    pub(super) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let u = self.cfg.unshuffle;
        let (_, _, h, w) = x.dims4()?;
        if h % u != 0 || w % u != 0 {
            candle_core::bail!("RRDBNet x{}: input {h}x{w} is not a multiple of {u}", 4 / u);
        }
        let x = if u > 1 {
            candle_nn::ops::pixel_unshuffle(x, u)?
        } else {
            x.clone()
        };
        let feat = self.conv_first.forward(&x)?;
        let mut body = feat.clone();
        for block in &self.body {
            body = block.forward(&body)?;
        }
        let feat = (feat + self.conv_body.forward(&body)?)?;
        let feat = up2_conv(&feat, &self.conv_up1)?;
        let feat = up2_conv(&feat, &self.conv_up2)?;
        let feat = lrelu(&self.conv_hr.forward(&feat)?)?;
        self.conv_last.forward(&feat)
    }
}

fn lrelu(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::leaky_relu(x, LRELU_SLOPE)
}

/// Nearest-neighbour ×2, then a convolution and leaky ReLU.
fn up2_conv(x: &Tensor, conv: &Conv2d) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    lrelu(&conv.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)?)
}

#[cfg(test)]
mod tests {
    use super::super::tiny;
    use super::*;
    use candle_core::Device;

    #[test]
    fn infer_tiny_x2_reads_sizes_from_shapes() {
        let sd = StateDict::from_tensors(tiny::rrdb_tensors(2, 1).unwrap());
        let cfg = RrdbConfig::infer(&sd).unwrap();
        assert_eq!(cfg.unshuffle, 2);
        assert_eq!(cfg.scale(), 2);
        assert_eq!(
            (cfg.num_feat, cfg.num_block, cfg.num_grow_ch),
            tiny::RRDB_SIZES
        );
    }

    #[test]
    fn forward_x2_odd_size_fails_clearly() {
        let net = RrdbNet::load(&StateDict::from_tensors(tiny::rrdb_tensors(2, 1).unwrap()));
        let x = Tensor::zeros((1, 3, 7, 8), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = net.unwrap().forward(&x).err().unwrap().to_string();
        assert!(err.contains("not a multiple of 2"), "{err}");
    }
}
