//! The two text encoders FLUX conditions on: CLIP-L (pooled vector) and T5-XXL (hidden states),
//! with their tokenizers. Here: loading and encoding; `clip_bpe` builds CLIP's tokenizer from a
//! hub folder's vocab and merges, `t5_names` maps llama.cpp's T5 tensor names to Hugging Face's,
//! `t5_quantized` is merchgen's quantized T5 encoder. T5 loads from a GGUF in llama.cpp naming
//! (city96) or HF naming, or from dense safetensors (a diffusers folder's `text_encoder_2/`,
//! possibly sharded).

pub(crate) mod clip_bpe;
pub mod t5_names;
pub mod t5_quantized;

use crate::engine::gguf::QVars;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_transformers::models::{clip, t5};
use serde::Deserialize;
use std::path::Path;
use t5_quantized::QuantizedT5;
use tokenizers::Tokenizer;

/// The keys of a Hugging Face `CLIPTextConfig` that candle's CLIP needs.
#[derive(Debug, Deserialize)]
struct HfClipConfig {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    max_position_embeddings: usize,
    #[serde(default)]
    projection_dim: Option<usize>,
    #[serde(default = "quick_gelu")]
    hidden_act: String,
}

fn quick_gelu() -> String {
    "quick_gelu".to_owned()
}

/// A `tokenizer.json`, or CLIP's BPE from a `vocab.json` with `merges.txt` beside it.
fn load_tokenizer(path: &Path) -> Result<Tokenizer> {
    if path.file_name().is_some_and(|n| n == "vocab.json") {
        return clip_bpe::from_vocab_merges(path);
    }
    Tokenizer::from_file(path)
        .map_err(|e| anyhow::anyhow!("cannot read tokenizer {}: {e}", path.display()))
}

/// CLIP-L text encoder returning the pooled vector (the end token's final hidden state).
pub(crate) struct ClipEncoder {
    model: clip::text_model::ClipTextTransformer,
    tokenizer: Tokenizer,
    max_tokens: usize,
    device: Device,
}

impl ClipEncoder {
    /// Load from `model.safetensors` (names `text_model.*`, or without that prefix as
    /// transformers 5 saves them), `config.json` and `tokenizer.json`.
    pub(crate) fn load(
        weights: &Path,
        config: &Path,
        tokenizer: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let hf: HfClipConfig = serde_json::from_slice(&std::fs::read(config)?)
            .with_context(|| format!("reading CLIP config {}", config.display()))?;
        if hf.hidden_act != "quick_gelu" {
            bail!(
                "CLIP activation {} is not supported (quick_gelu only)",
                hf.hidden_act
            );
        }
        let cfg = clip::text_model::ClipTextConfig {
            vocab_size: hf.vocab_size,
            embed_dim: hf.hidden_size,
            activation: clip::text_model::Activation::QuickGelu,
            intermediate_size: hf.intermediate_size,
            max_position_embeddings: hf.max_position_embeddings,
            pad_with: None,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            projection_dim: hf.projection_dim.unwrap_or(hf.hidden_size),
        };
        let vb = crate::engine::flux::weights::mmap_safetensors(weights, dtype, device)?;
        // transformers 5 saves CLIPTextModel without the `text_model.` prefix older files have.
        let vb = if vb.contains_tensor("text_model.embeddings.token_embedding.weight") {
            vb.pp("text_model")
        } else {
            vb
        };
        let model = clip::text_model::ClipTextTransformer::new(vb, &cfg)
            .with_context(|| format!("loading CLIP from {}", weights.display()))?;
        Ok(ClipEncoder {
            model,
            tokenizer: load_tokenizer(tokenizer)?,
            max_tokens: hf.max_position_embeddings,
            device: device.clone(),
        })
    }

    /// Token ids, truncated to the position limit with the end token kept last.
    pub(crate) fn tokens(&self, prompt: &str) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|e| anyhow::anyhow!("CLIP tokenizer: {e}"))?;
        Ok(truncate_keep_last(enc.get_ids(), self.max_tokens))
    }

    /// Pooled embedding `(1, embed_dim)`.
    pub(crate) fn encode(&self, prompt: &str) -> Result<Tensor> {
        let ids = self.tokens(prompt)?;
        let ids = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
        Ok(self.model.forward(&ids)?)
    }
}

/// T5 encoder: quantized weights with f32 activations, or dense weights in the compute dtype.
pub(crate) struct T5Encoder {
    model: T5Model,
    tokenizer: Tokenizer,
    device: Device,
}

enum T5Model {
    Quantized(QuantizedT5),
    Dense(t5::T5EncoderModel),
}

impl T5Encoder {
    /// Load from a GGUF (llama.cpp or HF tensor names) or safetensors (HF names; a
    /// `*.safetensors.index.json` for shards), `config.json` and `tokenizer.json`. Dense weights
    /// use `dtype` (keep T5 out of f16: it overflows).
    pub(crate) fn load(
        weights: &Path,
        config: &Path,
        tokenizer: &Path,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let config_bytes = std::fs::read(config)?;
        let model = if crate::engine::files::safetensors::is_safetensors(weights) {
            let cfg: t5::Config = serde_json::from_slice(&config_bytes)
                .with_context(|| format!("reading T5 config {}", config.display()))?;
            let files = crate::engine::files::safetensors::weight_files(weights)?;
            #[allow(unsafe_code)]
            // SAFETY: model files are read-only inputs that nothing modifies while merchgen maps them.
            let vb =
                unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&files, dtype, device) }
                    .with_context(|| format!("mapping {}", weights.display()))?;
            T5Model::Dense(
                t5::T5EncoderModel::load(vb, &cfg)
                    .with_context(|| format!("loading T5 from {}", weights.display()))?,
            )
        } else {
            let cfg: t5::Config = serde_json::from_slice(&config_bytes)
                .with_context(|| format!("reading T5 config {}", config.display()))?;
            // llama.cpp names (city96's files) become Hugging Face names as tensors come in.
            let vb = QVars::from_gguf_dequantizing(
                weights,
                device,
                t5_names::to_hf,
                QuantizedT5::used_dequantized,
            )
            .with_context(|| format!("reading T5 weights {}", weights.display()))?;
            T5Model::Quantized(
                QuantizedT5::new(&cfg, &vb)
                    .with_context(|| format!("loading T5 from {}", weights.display()))?,
            )
        };
        Ok(T5Encoder {
            model,
            tokenizer: load_tokenizer(tokenizer)?,
            device: device.clone(),
        })
    }

    /// Ids padded with 0 to `max_len`; a longer prompt is truncated with `</s>` kept last, as
    /// diffusers' tokenizer call does.
    pub(crate) fn tokens(&self, prompt: &str, max_len: usize) -> Result<Vec<u32>> {
        let enc = self
            .tokenizer
            .encode(prompt, true)
            .map_err(|e| anyhow::anyhow!("T5 tokenizer: {e}"))?;
        let mut ids = truncate_keep_last(enc.get_ids(), max_len);
        ids.resize(max_len, 0);
        Ok(ids)
    }

    /// Hidden states `(1, max_len, d_model)` in f32.
    pub(crate) fn encode(&mut self, prompt: &str, max_len: usize) -> Result<Tensor> {
        let ids = self.tokens(prompt, max_len)?;
        let ids = Tensor::new(ids.as_slice(), &self.device)?.unsqueeze(0)?;
        let hidden = match &mut self.model {
            T5Model::Quantized(m) => m.forward(&ids)?,
            T5Model::Dense(m) => m.forward(&ids)?,
        };
        Ok(hidden.to_dtype(DType::F32)?)
    }
}

fn truncate_keep_last(ids: &[u32], max: usize) -> Vec<u32> {
    if ids.len() <= max || max == 0 {
        return ids.to_vec();
    }
    let mut out = ids[..max - 1].to_vec();
    out.push(*ids.last().expect("longer than max, so not empty"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_keep_last_keeps_end_token() {
        assert_eq!(truncate_keep_last(&[5, 6, 7, 1], 3), vec![5, 6, 1]);
        assert_eq!(truncate_keep_last(&[5, 1], 3), vec![5, 1]);
    }
}
