//! The nested U-structure U²-Net and IS-Net share: six encoder stages (`stage1..stage6`, pooled
//! between), five decoder stages (`stage5d..stage1d`, each on the upsampled stage below
//! concatenated with its encoder skip) and the side convolutions `side1..side6`, which give one
//! logit map per level at that level's resolution. What the families do around it (IS-Net's
//! strided input conv, U²-Net's fusing `outconv`, sigmoid, final resizing) is theirs.

use super::load::{Conv, ConvGeom, LoadError, Weights};
use super::rsu::{pool2_ceil, upsample_like, Rsu, RsuKind};
use candle_core::{Result, Tensor};

/// Encoder stages 1..=6.
const ENCODER: [RsuKind; 6] = [
    RsuKind::Pooled(7),
    RsuKind::Pooled(6),
    RsuKind::Pooled(5),
    RsuKind::Pooled(4),
    RsuKind::Dilated,
    RsuKind::Dilated,
];

/// Decoder stages 1d..=5d.
const DECODER: [RsuKind; 5] = [
    RsuKind::Pooled(7),
    RsuKind::Pooled(6),
    RsuKind::Pooled(5),
    RsuKind::Pooled(4),
    RsuKind::Dilated,
];

/// The stages and side convolutions.
#[derive(Debug, Clone)]
pub(super) struct Body {
    enc: Vec<Rsu>,
    /// `stage1d ..= stage5d`.
    dec: Vec<Rsu>,
    /// `side1 ..= side6`.
    sides: Vec<Conv>,
}

impl Body {
    /// Load `stage*`, `stage*d` and `side*`, the first stage taking `in_ch` channels.
    pub(super) fn load(w: &Weights, in_ch: usize) -> std::result::Result<Self, LoadError> {
        let mut enc: Vec<Rsu> = Vec::with_capacity(6);
        for (i, kind) in ENCODER.into_iter().enumerate() {
            let c_in = enc.last().map_or(in_ch, Rsu::out_channels);
            enc.push(Rsu::load(w, &format!("stage{}", i + 1), kind, c_in)?);
        }
        // Built from the bottom up: stage5d takes stage6 and stage5.
        let mut dec_rev: Vec<Rsu> = Vec::with_capacity(5);
        for i in (0..5).rev() {
            let below = dec_rev.last().unwrap_or(&enc[5]).out_channels();
            let c_in = below + enc[i].out_channels();
            dec_rev.push(Rsu::load(w, &format!("stage{}d", i + 1), DECODER[i], c_in)?);
        }
        let dec: Vec<Rsu> = dec_rev.into_iter().rev().collect();
        let mut sides = Vec::with_capacity(6);
        for i in 0..6 {
            let c_in = dec.get(i).unwrap_or(&enc[5]).out_channels();
            let side = w.conv(&format!("side{}", i + 1), c_in, ConvGeom::dilated3(1))?;
            if side.out_channels() != 1 {
                return Err(LoadError::Shape {
                    name: format!("side{}.weight", i + 1),
                    got: vec![side.out_channels()],
                    expected: "1 output channel (one mask)".to_owned(),
                });
            }
            sides.push(side);
        }
        Ok(Body { enc, dec, sides })
    }

    /// The side logits `side1..side{levels}` of `x`, each at its own level's resolution
    /// (`levels` in 1..=6: IS-Net needs only the first).
    pub(super) fn forward(&self, x: &Tensor, levels: usize) -> Result<Vec<Tensor>> {
        let mut skips = Vec::with_capacity(6);
        let mut h = x.clone();
        for (i, stage) in self.enc.iter().enumerate() {
            let hi = stage.forward(&h)?;
            if i < 5 {
                h = pool2_ceil(&hi)?;
            }
            skips.push(hi);
        }
        // Decoder outputs hx1d..hx5d, then hx6 (the level-6 side reads the encoder).
        let mut levels_out = vec![skips[5].clone()];
        for (stage, skip) in self.dec.iter().zip(&skips).rev() {
            let below = levels_out.last().expect("starts with hx6");
            let up = upsample_like(below, skip)?;
            levels_out.push(stage.forward(&Tensor::cat(&[&up, skip], 1)?)?);
        }
        levels_out.rotate_left(1); // [hx6, hx5d, .., hx1d] -> [hx5d, .., hx1d, hx6]
        let (decoded, hx6) = levels_out.split_at(5);
        let by_level: Vec<&Tensor> = decoded.iter().rev().chain(hx6).collect();
        by_level
            .into_iter()
            .zip(&self.sides)
            .take(levels)
            .map(|(h, side)| side.forward(h))
            .collect()
    }
}
