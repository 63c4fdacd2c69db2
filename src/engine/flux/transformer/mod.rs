//! The FLUX.1 transformer, merchgen's own, over quantized GGUF blocks or dense weights (one code
//! path for both weight modes). candle 0.11's quantized FLUX hands a quantized matmul a strided
//! view of the joint attention output (the text and image tokens sliced apart), which the
//! quantized kernels refuse for batches above one image; here every matmul gets contiguous rows,
//! so batches of any size run, and each row of a batch is computed exactly as it would be alone.
//! candle's dense FLUX keeps its layers private, so LoRAs (`linear.rs`, `engine::flux::lora`)
//! could not reach them; this one exposes each linear layer by its BFL name.
//!
//! The architecture (BFL's names, which the GGUF files use):
//! - embedders: `img_in`, `txt_in` (linear), `time_in`, `vector_in`, optional `guidance_in`
//!   (two-layer MLPs with SiLU); the conditioning vector is their sum;
//! - `double_blocks.N`: image and text streams, each modulated (shift, scale, gate twice) by the
//!   conditioning vector, joint attention over text then image tokens with rotary positions,
//!   then a GELU MLP per stream;
//! - `single_blocks.N`: one stream over text and image tokens, attention and MLP in parallel
//!   from one fused projection (`linear1`) and back through `linear2`;
//! - `final_layer`: adaptive layer norm and a projection of the image tokens only.

pub(crate) mod linear;

use crate::engine::gguf::QVars;
use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{LayerNorm, RmsNorm};
use candle_transformers::models::flux::model::{Config, EmbedNd};
use candle_transformers::models::flux::WithForward;
pub(crate) use linear::FluxLinear as Linear;

/// The weights and the dtype activations run in (f32 over quantized blocks; the dense dtype
/// over dense weights).
#[derive(Clone)]
struct VarBuilder {
    vars: QVars,
    act: DType,
}

impl VarBuilder {
    fn pp(&self, name: impl std::fmt::Display) -> Self {
        VarBuilder {
            vars: self.vars.pp(name),
            act: self.act,
        }
    }

    fn device(&self) -> &candle_core::Device {
        self.vars.device()
    }

    /// A stored vector (bias, norm scale) in the activation dtype.
    fn vector(&self, dim: usize, name: &str) -> Result<Tensor> {
        self.vars.dequantized(dim, name)?.to_dtype(self.act)
    }
}

fn linear_b(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.vars.weight(in_dim, out_dim)?;
    let bias = if bias {
        Some(vb.vector(out_dim, "bias")?)
    } else {
        None
    };
    Ok(Linear::new(weight, bias, in_dim, out_dim))
}

fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Linear> {
    linear_b(in_dim, out_dim, true, vb)
}

/// Layer norm without learned parameters (FLUX's `elementwise_affine=False`).
fn plain_norm(dim: usize, vb: &VarBuilder) -> Result<LayerNorm> {
    let ones = Tensor::ones(dim, vb.act, vb.device())?;
    Ok(LayerNorm::new_no_bias(ones, 1e-6))
}

/// An RMS norm whose `scale` is stored (quantized or not) in the weights.
fn rms_norm(dim: usize, vb: VarBuilder) -> Result<RmsNorm> {
    Ok(RmsNorm::new(vb.vector(dim, "scale")?, 1e-6))
}

/// Sinusoidal embedding of a timestep (or guidance) in [0, 1], as FLUX scales it (x1000).
fn sinusoid(t: &Tensor, dim: usize, dtype: DType) -> Result<Tensor> {
    let half = dim / 2;
    let exponent = -(10_000f64.ln()) / half as f64;
    let freqs =
        (Tensor::arange(0u32, half as u32, t.device())?.to_dtype(DType::F32)? * exponent)?.exp()?;
    let angles = (t.to_dtype(DType::F32)? * 1000.0)?
        .unsqueeze(1)?
        .broadcast_mul(&freqs.unsqueeze(0)?)?;
    Tensor::cat(&[angles.cos()?, angles.sin()?], D::Minus1)?.to_dtype(dtype)
}

/// Rotate pairs of `x` `(b, heads, tokens, head_dim)` by the rotary table `pe`
/// `(b, 1, tokens, head_dim/2, 2, 2)` from [`EmbedNd`].
fn rotate(x: &Tensor, pe: &Tensor) -> Result<Tensor> {
    let (b, h, l, d) = x.dims4()?;
    let pairs = x.reshape((b, h, l, d / 2, 2))?;
    let (even, odd) = (
        pairs.narrow(D::Minus1, 0, 1)?,
        pairs.narrow(D::Minus1, 1, 1)?,
    );
    // Output element i of a pair is pe[.., i, 0] * even + pe[.., i, 1] * odd.
    let on_even = pe.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
    let on_odd = pe.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
    (on_even.broadcast_mul(&even)? + on_odd.broadcast_mul(&odd)?)?.reshape((b, h, l, d))
}

/// Attention over `q, k, v` `(b, heads, tokens, head_dim)` with rotary positions; returns
/// `(b, tokens, heads * head_dim)`, contiguous.
fn attend(q: &Tensor, k: &Tensor, v: &Tensor, pe: &Tensor) -> Result<Tensor> {
    let (q, k) = (rotate(q, pe)?, rotate(k, pe)?);
    let (b, h, l, d) = q.dims4()?;
    let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?;
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    weights
        .matmul(&v.contiguous()?)?
        .transpose(1, 2)?
        .reshape((b, l, h * d))
}

/// `(b, tokens, 3 * hidden)` from a fused projection to q, k, v `(b, heads, tokens, head_dim)`.
fn split_qkv(qkv: &Tensor, heads: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, l, three_hidden) = qkv.dims3()?;
    let head_dim = three_hidden / 3 / heads;
    let qkv = qkv
        .reshape((b, l, 3, heads, head_dim))?
        .permute((2, 0, 3, 1, 4))?;
    Ok((qkv.get(0)?, qkv.get(1)?, qkv.get(2)?))
}

/// A two-layer MLP with SiLU between (`in_layer`, `out_layer`).
struct Embedder {
    inner: Linear,
    outer: Linear,
}

impl Embedder {
    fn new(input: usize, hidden: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            inner: linear(input, hidden, vb.pp("in_layer"))?,
            outer: linear(hidden, hidden, vb.pp("out_layer"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.outer.forward(&self.inner.forward(x)?.silu()?)
    }
}

/// Shift, scale and gate for one sub-layer, each `(b, 1, hidden)`.
struct Modulated {
    shift: Tensor,
    scale: Tensor,
    gate: Tensor,
}

impl Modulated {
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_mul(&(&self.scale + 1.0)?)?
            .broadcast_add(&self.shift)
    }

    fn gated(&self, x: &Tensor) -> Result<Tensor> {
        self.gate.broadcast_mul(x)
    }
}

/// The conditioning vector to `sets` triples of (shift, scale, gate).
struct Modulation {
    lin: Linear,
    sets: usize,
}

impl Modulation {
    fn new(hidden: usize, sets: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            lin: linear(hidden, 3 * sets * hidden, vb.pp("lin"))?,
            sets,
        })
    }

    fn forward(&self, vec: &Tensor) -> Result<Vec<Modulated>> {
        let chunks = self
            .lin
            .forward(&vec.silu()?)?
            .unsqueeze(1)?
            .chunk(3 * self.sets, D::Minus1)?;
        Ok(chunks
            .chunks_exact(3)
            .map(|c| Modulated {
                shift: c[0].clone(),
                scale: c[1].clone(),
                gate: c[2].clone(),
            })
            .collect())
    }
}

/// One stream of a double block: its modulation, attention projections and MLP.
struct Stream {
    modulation: Modulation,
    norm1: LayerNorm,
    norm2: LayerNorm,
    qkv: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    proj: Linear,
    mlp_in: Linear,
    mlp_out: Linear,
}

impl Stream {
    fn new(cfg: &Config, prefix: &str, vb: &VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let mlp = (h as f64 * cfg.mlp_ratio) as usize;
        let head_dim = h / cfg.num_heads;
        let attn = vb.pp(format!("{prefix}_attn"));
        let qkv = linear_b(h, 3 * h, cfg.qkv_bias, attn.pp("qkv"))?;
        Ok(Self {
            modulation: Modulation::new(h, 2, vb.pp(format!("{prefix}_mod")))?,
            norm1: plain_norm(h, vb)?,
            norm2: plain_norm(h, vb)?,
            qkv,
            q_norm: rms_norm(head_dim, attn.pp("norm").pp("query_norm"))?,
            k_norm: rms_norm(head_dim, attn.pp("norm").pp("key_norm"))?,
            proj: linear(h, h, attn.pp("proj"))?,
            mlp_in: linear(h, mlp, vb.pp(format!("{prefix}_mlp.0")))?,
            mlp_out: linear(mlp, h, vb.pp(format!("{prefix}_mlp.2")))?,
        })
    }

    /// Modulations and normalised q, k, v of this stream's tokens.
    fn queries(
        &self,
        x: &Tensor,
        vec: &Tensor,
        heads: usize,
    ) -> Result<(Vec<Modulated>, (Tensor, Tensor, Tensor))> {
        let m = self.modulation.forward(vec)?;
        let normed = m[0].apply(&self.norm1.forward(x)?)?;
        let (q, k, v) = split_qkv(&self.qkv.forward(&normed)?, heads)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        Ok((m, (q, k, v)))
    }

    /// The stream after attention (`attn`: its own tokens' rows, contiguous) and its MLP.
    fn finish(&self, x: &Tensor, attn: &Tensor, m: &[Modulated]) -> Result<Tensor> {
        let x = (x + m[0].gated(&self.proj.forward(attn)?)?)?;
        let mlp_in = m[1].apply(&self.norm2.forward(&x)?)?;
        let mlp = self
            .mlp_out
            .forward(&self.mlp_in.forward(&mlp_in)?.gelu()?)?;
        x + m[1].gated(&mlp)?
    }
}

struct DoubleBlock {
    img: Stream,
    txt: Stream,
    heads: usize,
}

impl DoubleBlock {
    fn forward(
        &self,
        img: &Tensor,
        txt: &Tensor,
        vec: &Tensor,
        pe: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (img_m, (iq, ik, iv)) = self.img.queries(img, vec, self.heads)?;
        let (txt_m, (tq, tk, tv)) = self.txt.queries(txt, vec, self.heads)?;
        let q = Tensor::cat(&[tq, iq], 2)?;
        let k = Tensor::cat(&[tk, ik], 2)?;
        let v = Tensor::cat(&[tv, iv], 2)?;
        let joint = attend(&q, &k, &v, pe)?;
        let text_tokens = txt.dim(1)?;
        let image_tokens = joint.dim(1)? - text_tokens;
        // Each stream's rows copied out contiguous: what the quantized projection needs.
        let txt_attn = joint.narrow(1, 0, text_tokens)?.contiguous()?;
        let img_attn = joint.narrow(1, text_tokens, image_tokens)?.contiguous()?;
        Ok((
            self.img.finish(img, &img_attn, &img_m)?,
            self.txt.finish(txt, &txt_attn, &txt_m)?,
        ))
    }
}

struct SingleBlock {
    modulation: Modulation,
    norm: LayerNorm,
    linear1: Linear,
    linear2: Linear,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    hidden: usize,
    heads: usize,
}

impl SingleBlock {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let mlp = (h as f64 * cfg.mlp_ratio) as usize;
        let head_dim = h / cfg.num_heads;
        Ok(Self {
            modulation: Modulation::new(h, 1, vb.pp("modulation"))?,
            norm: plain_norm(h, &vb)?,
            linear1: linear(h, 3 * h + mlp, vb.pp("linear1"))?,
            linear2: linear(h + mlp, h, vb.pp("linear2"))?,
            q_norm: rms_norm(head_dim, vb.pp("norm").pp("query_norm"))?,
            k_norm: rms_norm(head_dim, vb.pp("norm").pp("key_norm"))?,
            hidden: h,
            heads: cfg.num_heads,
        })
    }

    fn forward(&self, x: &Tensor, vec: &Tensor, pe: &Tensor) -> Result<Tensor> {
        let m = self.modulation.forward(vec)?;
        let fused = self.linear1.forward(&m[0].apply(&self.norm.forward(x)?)?)?;
        let width = fused.dim(D::Minus1)?;
        let qkv = fused.narrow(D::Minus1, 0, 3 * self.hidden)?.contiguous()?;
        let mlp = fused.narrow(D::Minus1, 3 * self.hidden, width - 3 * self.hidden)?;
        let (q, k, v) = split_qkv(&qkv, self.heads)?;
        let q = self.q_norm.forward(&q.contiguous()?)?;
        let k = self.k_norm.forward(&k.contiguous()?)?;
        let attn = attend(&q, &k, &v, pe)?;
        let out = self
            .linear2
            .forward(&Tensor::cat(&[attn, mlp.gelu()?], 2)?)?;
        x + m[0].gated(&out)?
    }
}

/// The FLUX transformer. See the module documentation.
pub struct FluxTransformer {
    img_in: Linear,
    txt_in: Linear,
    time_in: Embedder,
    vector_in: Embedder,
    guidance_in: Option<Embedder>,
    positions: EmbedNd,
    double: Vec<DoubleBlock>,
    single: Vec<SingleBlock>,
    final_modulation: Linear,
    final_norm: LayerNorm,
    final_proj: Linear,
    act: DType,
}

impl FluxTransformer {
    /// The transformer over `vars` (quantized blocks, or dense tensors: see
    /// [`QVars::from_dense`]), running activations in `act` (f32 over quantized blocks).
    pub fn new(cfg: &Config, vars: QVars, act: DType) -> Result<Self> {
        let vb = VarBuilder { vars, act };
        let h = cfg.hidden_size;
        let double = (0..cfg.depth)
            .map(|i| {
                let vb = vb.pp(format!("double_blocks.{i}"));
                Ok(DoubleBlock {
                    img: Stream::new(cfg, "img", &vb)?,
                    txt: Stream::new(cfg, "txt", &vb)?,
                    heads: cfg.num_heads,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let single = (0..cfg.depth_single_blocks)
            .map(|i| SingleBlock::new(cfg, vb.pp(format!("single_blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        let guidance_in = if cfg.guidance_embed {
            Some(Embedder::new(256, h, vb.pp("guidance_in"))?)
        } else {
            None
        };
        let last = vb.pp("final_layer");
        Ok(Self {
            img_in: linear(cfg.in_channels, h, vb.pp("img_in"))?,
            txt_in: linear(cfg.context_in_dim, h, vb.pp("txt_in"))?,
            time_in: Embedder::new(256, h, vb.pp("time_in"))?,
            vector_in: Embedder::new(cfg.vec_in_dim, h, vb.pp("vector_in"))?,
            guidance_in,
            positions: EmbedNd::new(h / cfg.num_heads, cfg.theta, cfg.axes_dim.clone()),
            double,
            single,
            final_modulation: linear(h, 2 * h, last.pp("adaLN_modulation.1"))?,
            final_norm: plain_norm(h, &last)?,
            final_proj: linear(h, cfg.in_channels, last.pp("linear"))?,
            act: vb.act,
        })
    }
}

impl FluxTransformer {
    /// Every linear layer under its BFL module name (`double_blocks.0.img_attn.qkv`), for LoRAs.
    pub(crate) fn linears_mut(&mut self) -> Vec<(String, &mut Linear)> {
        let mut out: Vec<(String, &mut Linear)> = vec![
            ("img_in".into(), &mut self.img_in),
            ("txt_in".into(), &mut self.txt_in),
            ("time_in.in_layer".into(), &mut self.time_in.inner),
            ("time_in.out_layer".into(), &mut self.time_in.outer),
            ("vector_in.in_layer".into(), &mut self.vector_in.inner),
            ("vector_in.out_layer".into(), &mut self.vector_in.outer),
            (
                "final_layer.adaLN_modulation.1".into(),
                &mut self.final_modulation,
            ),
            ("final_layer.linear".into(), &mut self.final_proj),
        ];
        if let Some(g) = &mut self.guidance_in {
            out.push(("guidance_in.in_layer".into(), &mut g.inner));
            out.push(("guidance_in.out_layer".into(), &mut g.outer));
        }
        for (i, block) in self.double.iter_mut().enumerate() {
            for (stream, s) in [("img", &mut block.img), ("txt", &mut block.txt)] {
                let p = format!("double_blocks.{i}.{stream}");
                out.push((format!("{p}_mod.lin"), &mut s.modulation.lin));
                out.push((format!("{p}_attn.qkv"), &mut s.qkv));
                out.push((format!("{p}_attn.proj"), &mut s.proj));
                out.push((format!("{p}_mlp.0"), &mut s.mlp_in));
                out.push((format!("{p}_mlp.2"), &mut s.mlp_out));
            }
        }
        for (i, block) in self.single.iter_mut().enumerate() {
            let p = format!("single_blocks.{i}");
            out.push((format!("{p}.modulation.lin"), &mut block.modulation.lin));
            out.push((format!("{p}.linear1"), &mut block.linear1));
            out.push((format!("{p}.linear2"), &mut block.linear2));
        }
        out
    }

    pub(crate) fn as_forward(&self) -> &dyn WithForward {
        self
    }

    /// A guidance embedding (FLUX.1-dev, Kontext).
    pub(crate) fn has_guidance_embed(&self) -> bool {
        self.guidance_in.is_some()
    }

    /// The hidden size (the width of the token streams).
    pub fn hidden_size(&self) -> usize {
        self.img_in.out_dim()
    }

    /// The activation dtype.
    pub(crate) fn act_dtype(&self) -> DType {
        self.act
    }

    /// Double and single blocks.
    pub fn depth(&self) -> (usize, usize) {
        (self.double.len(), self.single.len())
    }
}

impl WithForward for FluxTransformer {
    fn forward(
        &self,
        img: &Tensor,
        img_ids: &Tensor,
        txt: &Tensor,
        txt_ids: &Tensor,
        timesteps: &Tensor,
        y: &Tensor,
        guidance: Option<&Tensor>,
    ) -> Result<Tensor> {
        let dtype = img.dtype();
        let pe = self
            .positions
            .forward(&Tensor::cat(&[txt_ids, img_ids], 1)?)?;
        let mut vec = self.time_in.forward(&sinusoid(timesteps, 256, dtype)?)?;
        if let (Some(embed), Some(g)) = (&self.guidance_in, guidance) {
            vec = (vec + embed.forward(&sinusoid(g, 256, dtype)?)?)?;
        }
        let vec = (vec + self.vector_in.forward(y)?)?;
        let mut txt = self.txt_in.forward(txt)?;
        let mut img = self.img_in.forward(img)?;
        for block in &self.double {
            (img, txt) = block.forward(&img, &txt, &vec, &pe)?;
        }
        let text_tokens = txt.dim(1)?;
        let mut joint = Tensor::cat(&[&txt, &img], 1)?;
        for block in &self.single {
            joint = block.forward(&joint, &vec, &pe)?;
        }
        let image_tokens = joint.dim(1)? - text_tokens;
        let img = joint.narrow(1, text_tokens, image_tokens)?.contiguous()?;
        let shift_scale = self
            .final_modulation
            .forward(&vec.silu()?)?
            .chunk(2, D::Minus1)?;
        let (shift, scale) = (shift_scale[0].unsqueeze(1)?, shift_scale[1].unsqueeze(1)?);
        let img = self
            .final_norm
            .forward(&img)?
            .broadcast_mul(&(scale + 1.0)?)?
            .broadcast_add(&shift)?;
        self.final_proj.forward(&img)
    }
}
