//! IS-Net (`ISNetDIS`, Qin et al. 2022, "Highly Accurate Dichotomous Image Segmentation"), which
//! BRIA's RMBG-1.4 (`BriaRMBG`) repeats with the same tensor names: a plain stride-2 3×3
//! `conv_in`, then the nested U-structure at half resolution. Its first output is the finest
//! side logit upsampled to the input size, after sigmoid. The references define a `pool_in` but
//! never apply it, and have no `outconv`.

use super::body::Body;
use super::load::{Conv, ConvGeom, LoadError, Weights};
use super::rsu::upsample_like;
use candle_core::{Result, Tensor};

/// A loaded IS-Net or RMBG-1.4.
#[derive(Debug, Clone)]
pub(super) struct IsNet {
    conv_in: Conv,
    body: Body,
}

impl IsNet {
    pub(super) fn load(w: &Weights) -> std::result::Result<Self, LoadError> {
        let geom = ConvGeom {
            kernel: 3,
            padding: 1,
            stride: 2,
            dilation: 1,
        };
        let conv_in = w.conv("conv_in", 3, geom)?;
        let body = Body::load(w, conv_in.out_channels())?;
        Ok(IsNet { conv_in, body })
    }

    /// The first side output `d1` at the input size, after sigmoid: `(N, 1, H, W)` in [0, 1].
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hx_in = self.conv_in.forward(x)?;
        let sides = self.body.forward(&hx_in, 1)?;
        candle_nn::ops::sigmoid(&upsample_like(&sides[0], x)?)
    }
}
