//! The T5 encoder over quantized GGUF blocks, merchgen's own (FLUX conditions on T5-XXL's
//! encoder only). Loaded through the memory-mapped GGUF reader with llama.cpp tensor names
//! (city96's files) renamed to Hugging Face names as each tensor comes in, so no renamed copy of
//! the file is ever built. The architecture, in Hugging Face's names:
//! - `shared`: token embedding;
//! - `encoder.block.N.layer.0`: RMS-style `layer_norm`, then self-attention (`SelfAttention.q/k/v/o`,
//!   no score scaling) with a learned bias per relative-position bucket, shared by every block and
//!   stored in block 0 (`relative_attention_bias`), added to the residual;
//! - `encoder.block.N.layer.1`: `layer_norm`, then the feed-forward (`DenseReluDense`: gated
//!   `wi_0`/`wi_1` with GELU for T5 v1.1, or `wi` with ReLU), added to the residual;
//! - `encoder.final_layer_norm`.
//!
//! Relative positions fall into buckets as Hugging Face's `_relative_position_bucket` puts them
//! (bidirectional): exact below half of each direction's buckets, logarithmic up to
//! `relative_attention_max_distance`, and every larger distance in the last bucket of its
//! direction. (candle 0.11's quantized T5 leaves out that last cap for keys before the query, so
//! at distances of 128 and more, which a 256- or 512-token FLUX prompt reaches, it looked up the
//! other direction's buckets.)

use crate::engine::gguf::QVars;
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_transformers::models::t5;

/// T5's layer norm: scale by the root mean square, no mean, no bias; computed in f32.
struct T5Norm {
    weight: Tensor,
    eps: f64,
}

impl T5Norm {
    fn new(vb: &QVars, cfg: &t5::Config) -> Result<Self> {
        Ok(T5Norm {
            weight: vb.dequantized(cfg.d_model, "weight")?,
            eps: cfg.layer_norm_epsilon,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?;
        let rms = (x.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?.sqrt()?;
        x.broadcast_div(&rms)?.broadcast_mul(&self.weight)
    }
}

enum FeedForward {
    /// T5 v1.1 (FLUX's T5-XXL): `act(wi_0 x) * wi_1 x`, then `wo`.
    Gated {
        wi_0: QMatMul,
        wi_1: QMatMul,
        wo: QMatMul,
    },
    /// Original T5: `wo(act(wi x))`.
    Plain { wi: QMatMul, wo: QMatMul },
}

struct Block {
    attn_norm: T5Norm,
    q: QMatMul,
    k: QMatMul,
    v: QMatMul,
    o: QMatMul,
    ff_norm: T5Norm,
    ff: FeedForward,
}

/// The encoder; `forward` takes token ids `(batch, tokens)` and gives hidden states in f32.
pub struct QuantizedT5 {
    embed: candle_nn::Embedding,
    blocks: Vec<Block>,
    final_norm: T5Norm,
    /// `(buckets, heads)`, from block 0.
    position_bias: Tensor,
    act: candle_nn::Activation,
    heads: usize,
    d_kv: usize,
    buckets: usize,
    max_distance: usize,
    device: Device,
}

impl QuantizedT5 {
    /// Tensors the encoder only uses dequantized, worth dequantizing as they load: the token
    /// embedding (0.5 GB in f32 for T5-XXL).
    pub fn used_dequantized(name: &str) -> bool {
        matches!(name, "shared.weight" | "encoder.embed_tokens.weight")
    }

    pub fn new(cfg: &t5::Config, vb: &QVars) -> Result<Self> {
        let embed_vb = if vb.contains("shared.weight") {
            vb.pp("shared")
        } else {
            vb.pp("encoder").pp("embed_tokens")
        };
        let embed = embed_vb.dequantized((cfg.vocab_size, cfg.d_model), "weight")?;
        let encoder = vb.pp("encoder");
        let inner = cfg.num_heads * cfg.d_kv;
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                let layer = encoder.pp(format!("block.{i}")).pp("layer");
                let attn = layer.pp("0").pp("SelfAttention");
                let dense = layer.pp("1").pp("DenseReluDense");
                let ff = if cfg.feed_forward_proj.gated {
                    FeedForward::Gated {
                        wi_0: dense.pp("wi_0").matmul(cfg.d_model, cfg.d_ff)?,
                        wi_1: dense.pp("wi_1").matmul(cfg.d_model, cfg.d_ff)?,
                        wo: dense.pp("wo").matmul(cfg.d_ff, cfg.d_model)?,
                    }
                } else {
                    FeedForward::Plain {
                        wi: dense.pp("wi").matmul(cfg.d_model, cfg.d_ff)?,
                        wo: dense.pp("wo").matmul(cfg.d_ff, cfg.d_model)?,
                    }
                };
                Ok(Block {
                    attn_norm: T5Norm::new(&layer.pp("0").pp("layer_norm"), cfg)?,
                    q: attn.pp("q").matmul(cfg.d_model, inner)?,
                    k: attn.pp("k").matmul(cfg.d_model, inner)?,
                    v: attn.pp("v").matmul(cfg.d_model, inner)?,
                    o: attn.pp("o").matmul(inner, cfg.d_model)?,
                    ff_norm: T5Norm::new(&layer.pp("1").pp("layer_norm"), cfg)?,
                    ff,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let position_bias = encoder
            .pp("block.0.layer.0.SelfAttention.relative_attention_bias")
            .dequantized(
                (cfg.relative_attention_num_buckets, cfg.num_heads),
                "weight",
            )?;
        Ok(QuantizedT5 {
            embed: candle_nn::Embedding::new(embed, cfg.d_model),
            blocks,
            final_norm: T5Norm::new(&encoder.pp("final_layer_norm"), cfg)?,
            position_bias,
            act: cfg.feed_forward_proj.activation,
            heads: cfg.num_heads,
            d_kv: cfg.d_kv,
            buckets: cfg.relative_attention_num_buckets,
            max_distance: cfg.relative_attention_max_distance,
            device: vb.device().clone(),
        })
    }

    /// Hidden states `(batch, tokens, d_model)` for token ids `(batch, tokens)`.
    pub fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let bias = self.bias(len)?;
        let mut x = self.embed.forward(ids)?;
        for block in &self.blocks {
            let h = block.attn_norm.forward(&x)?;
            x = (x + self.attend(block, &h, &bias)?)?;
            let h = block.ff_norm.forward(&x)?;
            x = (x + self.feed_forward(&block.ff, &h)?)?;
        }
        self.final_norm.forward(&x)
    }

    fn attend(&self, block: &Block, h: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, len, _) = h.dims3()?;
        let heads = |w: &QMatMul| -> Result<Tensor> {
            w.forward(h)?
                .reshape((b, len, self.heads, self.d_kv))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (heads(&block.q)?, heads(&block.k)?, heads(&block.v)?);
        let scores = q.matmul(&k.t()?)?.broadcast_add(bias)?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, len, self.heads * self.d_kv))?;
        block.o.forward(&out)
    }

    fn feed_forward(&self, ff: &FeedForward, h: &Tensor) -> Result<Tensor> {
        match ff {
            FeedForward::Gated { wi_0, wi_1, wo } => {
                let gate = self.act.forward(&wi_0.forward(h)?)?;
                wo.forward(&(gate * wi_1.forward(h)?)?)
            }
            FeedForward::Plain { wi, wo } => wo.forward(&self.act.forward(&wi.forward(h)?)?),
        }
    }

    /// The position bias `(1, heads, len, len)` every block adds to its attention scores.
    fn bias(&self, len: usize) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..len)
            .flat_map(|query| {
                (0..len).map(move |key| {
                    bucket(key as i64 - query as i64, self.buckets, self.max_distance)
                })
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (len, len), &self.device)?;
        candle_nn::Embedding::new(self.position_bias.clone(), self.heads)
            .forward(&buckets)?
            .permute((2, 0, 1))?
            .unsqueeze(0)?
            .contiguous()
    }
}

/// The bucket of a key at `relative = key - query` positions from the query (bidirectional).
fn bucket(relative: i64, buckets: usize, max_distance: usize) -> u32 {
    let half = (buckets / 2) as u32;
    let exact = half / 2;
    let side = if relative > 0 { half } else { 0 };
    let n = relative.unsigned_abs() as u32;
    if n < exact {
        return side + n;
    }
    let log = (n as f32 / exact as f32).ln() / (max_distance as f32 / exact as f32).ln();
    let far = exact + (log * (half - exact) as f32) as u32;
    side + far.min(half - 1)
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_follow_hugging_face() {
        // T5's defaults: 32 buckets, max distance 128: 16 per direction, 8 exact.
        let b = |r| bucket(r, 32, 128);
        assert_eq!(b(0), 0);
        assert_eq!(b(-7), 7);
        assert_eq!(b(7), 23);
        assert_eq!(b(-8), 8);
        assert_eq!(b(-16), 10);
        assert_eq!(b(-64), 14);
        // 128 and beyond: the last bucket of each direction, never the other direction's.
        assert_eq!(b(-128), 15);
        assert_eq!(b(-300), 15);
        assert_eq!(b(128), 31);
        assert_eq!(b(300), 31);
    }
}
