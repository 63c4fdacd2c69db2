//! CLIP's byte-level BPE tokenizer built from `vocab.json` and `merges.txt`, the only tokenizer
//! files a hub diffusers folder's `tokenizer/` holds. Built exactly as transformers 5's
//! `CLIPTokenizer` builds it from those files (`models/clip/tokenization_clip.py`): NFC, whitespace
//! runs to one space, lowercase; CLIP's split regex, then byte-level; BPE with `</w>` word ends and
//! the end token as unknown; start and end tokens around the sequence. Reads two files, nothing else.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::Path;
use tokenizers::Tokenizer;

const BOS: &str = "<|startoftext|>";
const EOS: &str = "<|endoftext|>";
const SPLIT: &str =
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+";

/// The tokenizer of `vocab.json` and the `merges.txt` beside it.
pub(crate) fn from_vocab_merges(vocab_path: &Path) -> Result<Tokenizer> {
    let vocab: serde_json::Map<String, Value> = serde_json::from_slice(&std::fs::read(vocab_path)?)
        .with_context(|| format!("reading {}", vocab_path.display()))?;
    let merges_path = vocab_path.with_file_name("merges.txt");
    let merges: Vec<String> = std::fs::read_to_string(&merges_path)
        .with_context(|| format!("reading {}", merges_path.display()))?
        .lines()
        .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let id = |token: &str| {
        vocab
            .get(token)
            .and_then(Value::as_u64)
            .with_context(|| format!("{} has no `{token}`", vocab_path.display()))
    };
    let (bos, eos) = (id(BOS)?, id(EOS)?);
    let special = |token: &str, id: u64| {
        json!({"id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
               "normalized": false, "special": true})
    };
    let spec = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(BOS, bos), special(EOS, eos)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "NFC"},
            {"type": "Replace", "pattern": {"Regex": r"\s+"}, "content": " "},
            {"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": SPLIT}, "behavior": "Removed", "invert": true},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
        "post_processor": {"type": "RobertaProcessing", "sep": [EOS, eos], "cls": [BOS, bos],
                           "trim_offsets": false, "add_prefix_space": false},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": EOS, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "</w>", "fuse_unk": false, "byte_fallback": false,
                  "vocab": vocab, "merges": merges}
    });
    spec.to_string().parse::<Tokenizer>().map_err(|e| {
        anyhow::anyhow!(
            "building the CLIP tokenizer from {}: {e}",
            vocab_path.display()
        )
    })
}
