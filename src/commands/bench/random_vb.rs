//! VarBuilder backends for the random-weight benchmark. `RandomWeights` makes each tensor on the
//! device from its init hint, drawn in f32 and then cast (candle's CUDA random generator has no
//! bf16). `ShapeProbe` only records names and shapes, handing out zero-cost broadcast views, so
//! the tensor list of a full-size model is known without allocating its 12 billion weights.

use crate::engine::flux::infer::Shapes;
use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::init::NormalOrUniform;
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::sync::{Arc, Mutex};

/// Fresh random tensors for every name, following the init hint a layer asks with.
pub(super) struct RandomWeights;

impl SimpleBackend for RandomWeights {
    fn get(&self, s: Shape, _name: &str, h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let t = match h {
            Init::Const(c) => (Tensor::ones(s, DType::F32, dev)? * c)?,
            Init::Randn { mean, stdev } => Tensor::randn(mean as f32, stdev as f32, s, dev)?,
            Init::Uniform { lo, up } => Tensor::rand(lo as f32, up as f32, s, dev)?,
            Init::Kaiming {
                dist,
                fan,
                non_linearity,
            } => {
                let std = non_linearity.gain() / (fan.for_shape(&s).max(1) as f64).sqrt();
                match dist {
                    NormalOrUniform::Normal => Tensor::randn(0f32, std as f32, s, dev)?,
                    NormalOrUniform::Uniform => {
                        let bound = (3f64.sqrt() * std) as f32;
                        Tensor::rand(-bound, bound, s, dev)?
                    }
                }
            }
        };
        t.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("random weights: `{name}` was asked for without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        false
    }
}

/// A VarBuilder of random weights in `dtype` on `device`.
pub(super) fn random(dtype: DType, device: &Device) -> VarBuilder<'static> {
    VarBuilder::from_backend(Box::new(RandomWeights), dtype, device.clone())
}

/// Records every tensor a model asks for. Claims to hold every name, so optional tensors are
/// taken the way a real checkpoint has them (T5's `shared.weight`).
#[derive(Clone, Default)]
struct ShapeProbe {
    seen: Arc<Mutex<Shapes>>,
}

impl SimpleBackend for ShapeProbe {
    fn get(&self, s: Shape, name: &str, _h: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        self.seen
            .lock()
            .map_err(|_| candle_core::Error::Msg("shape probe lock poisoned".into()))?
            .insert(name.to_owned(), s.dims().to_vec());
        Tensor::zeros((), dtype, dev)?.broadcast_as(s)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> Result<Tensor> {
        candle_core::bail!("shape probe: `{name}` was asked for without a shape")
    }

    fn contains_tensor(&self, _name: &str) -> bool {
        true
    }
}

/// Names and shapes of every tensor `build` asks its VarBuilder for.
pub(super) fn probe(build: impl FnOnce(VarBuilder<'_>) -> Result<()>) -> Result<Shapes> {
    let probe = ShapeProbe::default();
    build(VarBuilder::from_backend(
        Box::new(probe.clone()),
        DType::F32,
        Device::Cpu,
    ))?;
    let shapes = probe
        .seen
        .lock()
        .map_err(|_| candle_core::Error::Msg("shape probe lock poisoned".into()))?
        .clone();
    Ok(shapes)
}

/// Number of weights in `shapes`.
pub(super) fn param_count(shapes: &Shapes) -> u64 {
    shapes
        .values()
        .map(|d| d.iter().product::<usize>() as u64)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Module;
    use candle_transformers::models::flux;

    #[test]
    fn probe_full_schnell_counts_its_params_without_allocating() {
        let shapes =
            probe(|vb| flux::model::Flux::new(&flux::model::Config::schnell(), vb).map(drop))
                .unwrap();
        let params = param_count(&shapes);
        // FLUX.1-schnell has 11.9 billion parameters.
        assert!(
            (11_800_000_000..12_000_000_000).contains(&params),
            "{params}"
        );
        assert_eq!(shapes["img_in.weight"], vec![3072, 64]);
        assert_eq!(shapes["single_blocks.37.linear1.weight"], vec![21504, 3072]);
    }

    #[test]
    fn random_weights_follow_init_hints_in_the_asked_dtype() {
        let vb = random(DType::BF16, &Device::Cpu);
        let lin = candle_nn::linear(256, 8, vb.pp("l")).unwrap();
        assert_eq!(lin.weight().dtype(), DType::BF16);
        let w = lin.weight().to_dtype(DType::F32).unwrap();
        let std = w
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
            .sqrt();
        assert!(std > 0.01 && std < 0.2, "kaiming-like std {std}");
        let norm = candle_nn::layer_norm(8, 1e-6, vb.pp("n")).unwrap();
        let x = Tensor::ones((1, 8), DType::BF16, &Device::Cpu).unwrap();
        assert_eq!(norm.forward(&x).unwrap().dims(), &[1, 8]);
    }
}
