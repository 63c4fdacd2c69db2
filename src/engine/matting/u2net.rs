//! U²-Net and U²-NetP (Qin et al. 2020): the nested U-structure on the input itself, its six
//! side logits upsampled to the finest side's size and fused by a 1×1 `outconv`. The two
//! variants differ only in channel widths, which come from the weights.

use super::body::Body;
use super::load::{Conv, ConvGeom, LoadError, Weights};
use super::rsu::upsample_like;
use candle_core::{Result, Tensor};

/// A loaded U²-Net or U²-NetP.
#[derive(Debug, Clone)]
pub(super) struct U2Net {
    body: Body,
    outconv: Conv,
}

impl U2Net {
    pub(super) fn load(w: &Weights) -> std::result::Result<Self, LoadError> {
        let body = Body::load(w, 3)?;
        let geom = ConvGeom {
            kernel: 1,
            padding: 0,
            stride: 1,
            dilation: 1,
        };
        let outconv = w.conv("outconv", 6, geom)?;
        Ok(U2Net { body, outconv })
    }

    /// The fused output `d0`, after sigmoid: `(N, 1, H, W)` in [0, 1].
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let sides = self.body.forward(x, 6)?;
        let finest = &sides[0];
        let up = sides
            .iter()
            .map(|s| upsample_like(s, finest))
            .collect::<Result<Vec<_>>>()?;
        candle_nn::ops::sigmoid(&self.outconv.forward(&Tensor::cat(&up, 1)?)?)
    }
}
