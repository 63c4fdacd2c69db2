//! `tokenizer.json` files for the tiny model: word-level vocabularies with the same special-token
//! conventions as the real ones (T5 appends `</s>`, pad id 0; CLIP wraps in start/end tokens and
//! its end token has the highest id, because CLIP pools at the argmax of the ids).

use serde_json::{json, Value};

/// Words the tiny tokenizers know; anything else becomes `<unk>`.
const WORDS: &str = "a an the and of with in on at to for from by is are this that it its \
    cat dog corgi astronaut pet portrait logo badge shirt mug poster design style art bold outlines \
    pop halftone watercolor anime line flat vector minimalist vintage retro grunge sticker metal \
    abstract black white red blue green yellow orange purple pink gold silver colorful bright dark \
    soft clean simple detailed illustration painting drawing sketch photo cute happy funny cool \
    mountain sun moon star sky sea ocean wave tree flower forest city night day space rocket planet \
    skull rose heart fire lightning dragon tiger lion wolf bear fox owl eagle robot cactus coffee \
    cup pizza taco cake lettering text typography retro 1970s screen print distressed texture \
    high contrast negative space shapes colors palette background border thick die cut isolated \
    plain centered geometric gradients comic book look primary vivid muted paper washes gentle \
    expressive eyes cel shading single continuous no shading gothic band merch heavy splatter edges";

fn vocab_words() -> Vec<String> {
    let mut words: Vec<String> = WORDS.split_whitespace().map(str::to_owned).collect();
    words.sort();
    words.dedup();
    for c in ['.', ',', '!', '?', '-', '\'', '"', ':', '(', ')'] {
        words.push(c.to_string());
    }
    for d in 0..10 {
        words.push(d.to_string());
    }
    words
}

fn common(model: Value, post_processor: Value) -> Value {
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": post_processor,
        "decoder": null,
        "model": model
    })
}

/// A T5-like tokenizer: `<pad>`=0, `</s>`=1, `<unk>`=2, `</s>` appended.
pub(crate) fn t5() -> (Value, usize) {
    let mut vocab = serde_json::Map::new();
    for (i, tok) in ["<pad>", "</s>", "<unk>"].iter().enumerate() {
        vocab.insert((*tok).to_owned(), json!(i));
    }
    for w in vocab_words() {
        let id = vocab.len();
        vocab.entry(w).or_insert(json!(id));
    }
    let size = vocab.len();
    let post = json!({
        "type": "TemplateProcessing",
        "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
        "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}
    });
    let model = json!({"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"});
    (common(model, post), size)
}

/// A CLIP-like tokenizer: start token second-highest id, end token highest.
pub(crate) fn clip() -> (Value, usize) {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<unk>".to_owned(), json!(0));
    for w in vocab_words() {
        let id = vocab.len();
        vocab.entry(w).or_insert(json!(id));
    }
    let bos = vocab.len();
    vocab.insert("<|startoftext|>".to_owned(), json!(bos));
    vocab.insert("<|endoftext|>".to_owned(), json!(bos + 1));
    let post = json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<|startoftext|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}},
                 {"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}}],
        "special_tokens": {
            "<|startoftext|>": {"id": "<|startoftext|>", "ids": [bos], "tokens": ["<|startoftext|>"]},
            "<|endoftext|>": {"id": "<|endoftext|>", "ids": [bos + 1], "tokens": ["<|endoftext|>"]}
        }
    });
    let model = json!({"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"});
    (common(model, post), bos + 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_tokenizers_load_and_mark_sequences() {
        let (t5, _) = t5();
        let tok = t5.to_string().parse::<tokenizers::Tokenizer>().unwrap();
        let ids = tok
            .encode("A corgi, astronaut", true)
            .unwrap()
            .get_ids()
            .to_vec();
        assert_eq!(*ids.last().unwrap(), 1, "T5 ends with </s>");
        assert!(!ids.contains(&2), "known words are not <unk>: {ids:?}");

        let (clip, size) = clip();
        let tok = clip.to_string().parse::<tokenizers::Tokenizer>().unwrap();
        let ids = tok.encode("a corgi", true).unwrap().get_ids().to_vec();
        assert_eq!(*ids.last().unwrap() as usize, size - 1);
        assert_eq!(ids[0] as usize, size - 2);
    }
}
