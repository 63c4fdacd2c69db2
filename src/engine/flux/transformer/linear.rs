//! One linear layer of the FLUX transformer, over quantized GGUF blocks or a dense `(out, in)`
//! weight, with room for the LoRA set of the job at hand (`engine::flux::lora`):
//! - on dense weights the LoRA deltas are merged: a second weight `W + Σ scale·B·A` is computed
//!   once and used instead of `W`, which stays untouched, so removing the LoRAs is exact;
//! - on quantized weights (a delta cannot be added to GGUF blocks) they run as a low-rank side
//!   path: `y = W x + up (down x)`, with every adapter of the layer stacked into one `down`
//!   `(R, in)` and one `up` `(out, R)`.

use candle_core::quantized::QMatMul;
use candle_core::{DType, Module, Result, Tensor};

/// The adapters of one layer, in the form its weight needs.
pub(crate) enum Adapted {
    /// Dense: the merged weight, used in place of the base.
    Merged(QMatMul),
    /// Quantized: the stacked low-rank factors, in the activation dtype.
    Side { down: Tensor, up: Tensor },
}

pub(crate) struct FluxLinear {
    weight: QMatMul,
    bias: Option<Tensor>,
    in_dim: usize,
    out_dim: usize,
    adapted: Option<Adapted>,
}

impl FluxLinear {
    pub(crate) fn new(
        weight: QMatMul,
        bias: Option<Tensor>,
        in_dim: usize,
        out_dim: usize,
    ) -> Self {
        FluxLinear {
            weight,
            bias,
            in_dim,
            out_dim,
            adapted: None,
        }
    }

    pub(crate) fn in_dim(&self) -> usize {
        self.in_dim
    }

    pub(crate) fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// Bytes a merged copy of this layer's weight takes (0 over quantized blocks, which are
    /// never merged).
    pub(crate) fn merge_bytes(&self) -> u64 {
        match &self.weight {
            QMatMul::Tensor(w) | QMatMul::TensorF16(w) => {
                (w.elem_count() * w.dtype().size_in_bytes()) as u64
            }
            QMatMul::QTensor(_) => 0,
        }
    }

    /// Adapt this layer by `delta = up · down` (`up` `(out, R)` with every scale folded in,
    /// `down` `(R, in)`, both f32 on the layer's device): merged into a copy of a dense weight
    /// when `merge` (the caller checked there is room for the copy), else kept as a side path in
    /// `act_dtype` (always, next to quantized blocks).
    pub(crate) fn adapt(
        &mut self,
        down: &Tensor,
        up: &Tensor,
        act_dtype: DType,
        merge: bool,
    ) -> Result<()> {
        let adapted = match &self.weight {
            QMatMul::Tensor(w) | QMatMul::TensorF16(w) if merge => {
                let merged = (w.to_dtype(DType::F32)? + up.matmul(down)?)?.to_dtype(w.dtype())?;
                Adapted::Merged(QMatMul::Tensor(merged))
            }
            _ => Adapted::Side {
                down: down.to_dtype(act_dtype)?,
                up: up.to_dtype(act_dtype)?,
            },
        };
        self.adapted = Some(adapted);
        Ok(())
    }

    /// Back to the base weight, exactly (it was never changed).
    pub(crate) fn clear(&mut self) {
        self.adapted = None;
    }
}

impl Module for FluxLinear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = match &self.adapted {
            Some(Adapted::Merged(w)) => w.forward(x)?,
            _ => self.weight.forward(x)?,
        };
        if let Some(Adapted::Side { down, up }) = &self.adapted {
            let low = x.broadcast_matmul(&down.t()?)?;
            y = (y + low.broadcast_matmul(&up.t()?)?)?;
        }
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a - b).and_then(|d| d.abs()).and_then(|d| d.max_all());
        d.and_then(|d| d.to_scalar()).unwrap()
    }

    #[test]
    fn a_merged_delta_and_a_side_path_agree_and_clearing_restores_the_base() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (8, 6), &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 6), &dev).unwrap();
        let (down, up) = (
            Tensor::randn(0f32, 1.0, (2, 6), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (8, 2), &dev).unwrap(),
        );
        let mut l = FluxLinear::new(QMatMul::Tensor(w), None, 6, 8);
        let base = l.forward(&x).unwrap();
        l.adapt(&down, &up, DType::F32, true).unwrap();
        let merged = l.forward(&x).unwrap();
        l.adapt(&down, &up, DType::F32, false).unwrap();
        let side = l.forward(&x).unwrap();
        let diff = max_abs(&merged, &side);
        assert!(diff < 1e-4, "{diff}");
        let moved = max_abs(&merged, &base);
        assert!(moved > 1e-2);
        l.clear();
        let back = l.forward(&x).unwrap();
        assert_eq!(
            back.to_vec3::<f32>().unwrap(),
            base.to_vec3::<f32>().unwrap()
        );
    }
}
