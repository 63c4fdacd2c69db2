//! The residual U-blocks both families are built of: RSU-L (L = 4..7: an L-level U-Net of
//! REBNCONV layers — 3×3 dilated conv, eval BatchNorm, ReLU — whose output is added to its input
//! conv) and RSU-4F (the same without pooling, dilations 1, 2, 4, 8). Also the two resampling
//! steps of the references: max-pool 2 with `ceil_mode=True` and bilinear resizing with
//! `align_corners=False`. Channel widths come from the weights; only heights and dilations are
//! fixed here.

use super::load::{Conv, ConvGeom, LoadError, Weights};
use candle_core::{Result, Tensor};

/// The kind of one RSU stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RsuKind {
    /// RSU-L with pooling between levels (L = 4..7).
    Pooled(usize),
    /// RSU-4F: dilated instead of pooled.
    Dilated,
}

/// One REBNCONV: convolution with BatchNorm folded in, then ReLU.
#[derive(Debug, Clone)]
struct ReBnConv(Conv);

impl ReBnConv {
    fn load(
        w: &Weights,
        prefix: &str,
        in_ch: usize,
        dilation: usize,
    ) -> std::result::Result<Self, LoadError> {
        let conv = w.conv_bn(
            &format!("{prefix}.conv_s1"),
            &format!("{prefix}.bn_s1"),
            in_ch,
            ConvGeom::dilated3(dilation),
        )?;
        Ok(ReBnConv(conv))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.0.forward(x)?.relu()
    }

    fn out_channels(&self) -> usize {
        self.0.out_channels()
    }
}

/// One residual U-block.
#[derive(Debug, Clone)]
pub(super) struct Rsu {
    kind: RsuKind,
    conv_in: ReBnConv,
    /// `rebnconv1 ..= rebnconvL`.
    enc: Vec<ReBnConv>,
    /// `rebnconv1d ..= rebnconv{L-1}d`.
    dec: Vec<ReBnConv>,
}

impl Rsu {
    /// Load the block under `prefix` taking `in_ch` channels.
    pub(super) fn load(
        w: &Weights,
        prefix: &str,
        kind: RsuKind,
        in_ch: usize,
    ) -> std::result::Result<Self, LoadError> {
        let height = match kind {
            RsuKind::Pooled(l) => l,
            RsuKind::Dilated => 4,
        };
        let conv_in = ReBnConv::load(w, &format!("{prefix}.rebnconvin"), in_ch, 1)?;
        let out_ch = conv_in.out_channels();
        let mid = w.out_channels(&format!("{prefix}.rebnconv1.conv_s1.weight"))?;
        let mut enc = Vec::with_capacity(height);
        for i in 1..=height {
            let c_in = if i == 1 { out_ch } else { mid };
            let name = format!("{prefix}.rebnconv{i}");
            enc.push(ReBnConv::load(w, &name, c_in, enc_dilation(kind, i))?);
        }
        let mut dec = Vec::with_capacity(height - 1);
        for i in 1..height {
            let name = format!("{prefix}.rebnconv{i}d");
            dec.push(ReBnConv::load(w, &name, 2 * mid, dec_dilation(kind, i))?);
        }
        if dec[0].out_channels() != out_ch {
            return Err(LoadError::Shape {
                name: format!("{prefix}.rebnconv1d.conv_s1.weight"),
                got: vec![dec[0].out_channels()],
                expected: format!("{out_ch} output channels, as {prefix}.rebnconvin"),
            });
        }
        Ok(Rsu {
            kind,
            conv_in,
            enc,
            dec,
        })
    }

    pub(super) fn out_channels(&self) -> usize {
        self.conv_in.out_channels()
    }

    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hx_in = self.conv_in.forward(x)?;
        let last = self.enc.len() - 1;
        // Encoder: keep every level's output for the skip connections.
        let mut skips = Vec::with_capacity(last);
        let mut h = hx_in.clone();
        for (i, conv) in self.enc[..last].iter().enumerate() {
            let hi = conv.forward(&h)?;
            h = match self.kind {
                RsuKind::Pooled(_) if i + 1 < last => pool2_ceil(&hi)?,
                _ => hi.clone(),
            };
            skips.push(hi);
        }
        let mut d = self.enc[last].forward(&h)?;
        for (conv, skip) in self.dec.iter().zip(&skips).rev() {
            let up = upsample_like(&d, skip)?;
            d = conv.forward(&Tensor::cat(&[&up, skip], 1)?)?;
        }
        d + hx_in
    }
}

/// Dilation of `rebnconv{i}`: RSU-L dilates only its innermost level.
fn enc_dilation(kind: RsuKind, i: usize) -> usize {
    match kind {
        RsuKind::Pooled(l) if i == l => 2,
        RsuKind::Pooled(_) => 1,
        RsuKind::Dilated => 1 << (i - 1),
    }
}

/// Dilation of `rebnconv{i}d`.
fn dec_dilation(kind: RsuKind, i: usize) -> usize {
    match kind {
        RsuKind::Pooled(_) => 1,
        RsuKind::Dilated => 1 << (i - 1),
    }
}

/// `nn.MaxPool2d(2, stride=2, ceil_mode=True)`: an odd last row or column forms a window of its
/// own, which replicating it once reproduces exactly.
pub(super) fn pool2_ceil(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let x = if h % 2 == 1 {
        x.pad_with_same(2, 0, 1)?
    } else {
        x.clone()
    };
    let x = if w % 2 == 1 {
        x.pad_with_same(3, 0, 1)?
    } else {
        x
    };
    x.max_pool2d(2)
}

/// `F.interpolate(src, size=tar.shape[2:], mode="bilinear", align_corners=False)`; the
/// identity when the sizes already agree (as PyTorch's is).
pub(super) fn upsample_like(src: &Tensor, tar: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = tar.dims4()?;
    resize_to(src, h, w)
}

/// Bilinear resize of an NCHW tensor to `h × w` with PyTorch's `align_corners=False`.
pub(super) fn resize_to(src: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, _, sh, sw) = src.dims4()?;
    if (sh, sw) == (h, w) {
        return Ok(src.clone());
    }
    src.contiguous()?.upsample_bilinear2d(h, w, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pool2_ceil_odd_size_keeps_last_row() {
        let x = Tensor::arange(0f32, 9.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap();
        let y = pool2_ceil(&x).unwrap();
        assert_eq!(y.dims(), &[1, 1, 2, 2]);
        let v: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(v, vec![4.0, 5.0, 7.0, 8.0]);
    }

    #[test]
    fn upsample_like_double_size_matches_pytorch_half_pixel() {
        let x = Tensor::new(&[[[[0f32, 1.0]]]], &Device::Cpu).unwrap();
        let tar = Tensor::zeros((1, 1, 1, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
        let v: Vec<f32> = upsample_like(&x, &tar)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // PyTorch: [0, 0.25, 0.75, 1] for align_corners=False.
        assert_eq!(v, vec![0.0, 0.25, 0.75, 1.0]);
    }
}
