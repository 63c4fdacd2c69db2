//! T5 encoder tensor names: llama.cpp / city96 GGUF naming (`enc.blk.0.attn_q.weight`) to and
//! from Hugging Face naming (`encoder.block.0.layer.0.SelfAttention.q.weight`), which candle's
//! quantized T5 expects. One table, used in both directions, proved by a round trip.

/// (llama.cpp fragment, Hugging Face fragment) inside `enc.blk.{i}.` / `encoder.block.{i}.`.
const BLOCK_MAP: [(&str, &str); 10] = [
    ("attn_q.weight", "layer.0.SelfAttention.q.weight"),
    ("attn_k.weight", "layer.0.SelfAttention.k.weight"),
    ("attn_v.weight", "layer.0.SelfAttention.v.weight"),
    ("attn_o.weight", "layer.0.SelfAttention.o.weight"),
    (
        "attn_rel_b.weight",
        "layer.0.SelfAttention.relative_attention_bias.weight",
    ),
    ("attn_norm.weight", "layer.0.layer_norm.weight"),
    ("ffn_gate.weight", "layer.1.DenseReluDense.wi_0.weight"),
    ("ffn_up.weight", "layer.1.DenseReluDense.wi_1.weight"),
    ("ffn_down.weight", "layer.1.DenseReluDense.wo.weight"),
    ("ffn_norm.weight", "layer.1.layer_norm.weight"),
];

const TOP_MAP: [(&str, &str); 2] = [
    ("token_embd.weight", "shared.weight"),
    ("enc.output_norm.weight", "encoder.final_layer_norm.weight"),
];

/// llama.cpp name to Hugging Face name; names already in HF form pass through.
pub fn to_hf(name: &str) -> Option<String> {
    if name.starts_with("encoder.") || name == "shared.weight" {
        return Some(name.to_owned());
    }
    if let Some((_, hf)) = TOP_MAP.iter().find(|(l, _)| *l == name) {
        return Some((*hf).to_owned());
    }
    let rest = name.strip_prefix("enc.blk.")?;
    let (idx, tail) = rest.split_once('.')?;
    let idx: usize = idx.parse().ok()?;
    let (_, hf) = BLOCK_MAP.iter().find(|(l, _)| *l == tail)?;
    Some(format!("encoder.block.{idx}.{hf}"))
}

/// Hugging Face name to llama.cpp name (for writing city96-style files).
pub fn to_llama(name: &str) -> Option<String> {
    if let Some((l, _)) = TOP_MAP.iter().find(|(_, h)| *h == name) {
        return Some((*l).to_owned());
    }
    let rest = name.strip_prefix("encoder.block.")?;
    let (idx, tail) = rest.split_once('.')?;
    let idx: usize = idx.parse().ok()?;
    let (l, _) = BLOCK_MAP.iter().find(|(_, h)| *h == tail)?;
    Some(format!("enc.blk.{idx}.{l}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t5_names_round_trip_every_entry() {
        for i in [0, 7, 23] {
            for (l, _) in BLOCK_MAP {
                let llama = format!("enc.blk.{i}.{l}");
                let hf = to_hf(&llama).unwrap();
                assert_eq!(to_llama(&hf).as_deref(), Some(llama.as_str()));
            }
        }
        for (l, h) in TOP_MAP {
            assert_eq!(to_hf(l).as_deref(), Some(h));
            assert_eq!(to_llama(h).as_deref(), Some(l));
        }
        assert_eq!(to_hf("enc.blk.x.attn_q.weight"), None);
        assert_eq!(to_hf("decoder.block.0.x"), None);
    }
}
