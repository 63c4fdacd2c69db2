//! Reading a FLUX LoRA file into low-rank pieces of merchgen's (BFL-named) linear layers,
//! whatever naming it was saved in:
//! - diffusers / PEFT: `transformer.<diffusers module>.lora_A.weight` / `lora_B.weight`, an
//!   optional `<module>.alpha`; diffusers modules map to BFL ones through `names` (q, k and v
//!   land in thirds of a fused `qkv`, single blocks' q, k, v and MLP input in `linear1`);
//! - kohya (sd-scripts, ai-toolkit exports): `lora_unet_<BFL module, dots as underscores>` with
//!   `lora_down` / `lora_up` / `alpha`;
//! - XLabs: `double_blocks.N.processor.{qkv,proj}_lora{1,2}.{down,up}.weight` (1 is the image
//!   stream, 2 the text stream) and `single_blocks.N.processor.{qkv,proj}_lora.*`;
//! - BFL names with PEFT suffixes: `[diffusion_model.]double_blocks.0.img_attn.qkv.lora_A.weight`.
//!
//! Text-encoder keys (`text_encoder.`, `lora_te1_`, ...) are counted, never applied silently.
//! Pure: tensors in, pieces out; shapes are checked against the model by `lora::apply`.

use crate::engine::flux::names::{self, Placement};
use candle_core::{DType, Tensor};
use std::collections::{BTreeMap, HashMap};

/// The naming a LoRA file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Peft,
    Kohya,
    Xlabs,
    BflPeft,
}

/// One low-rank delta on rows `row..row + up.rows` of a BFL linear layer: `scale · up · down`.
#[derive(Debug, Clone)]
pub(crate) struct Piece {
    pub row: usize,
    /// `(rank, in)`, f32 on the CPU.
    pub down: Tensor,
    /// `(rows, rank)`, f32 on the CPU.
    pub up: Tensor,
    /// `alpha / rank` (1 when the file stores no alpha).
    pub scale: f64,
}

/// Where an (unsplit) delta goes before rows are placed.
enum Target {
    Bfl(String),
    Diffusers(String, Placement),
}

/// A LoRA file as pieces per BFL module.
#[derive(Debug, Clone)]
pub(crate) struct ParsedLora {
    pub format: Format,
    pub(crate) pieces: BTreeMap<String, Vec<Piece>>,
    /// Keys of text-encoder LoRA weights (CLIP or T5), which merchgen does not apply.
    pub(crate) text_encoder_keys: usize,
}

/// Why a LoRA file cannot be used (the message names what did not match).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct FormatError(pub String);

fn err(message: impl Into<String>) -> FormatError {
    FormatError(message.into())
}

fn is_text_encoder(key: &str) -> bool {
    [
        "text_encoder",
        "lora_te",
        "te1.",
        "te2.",
        "clip_l.",
        "t5xxl.",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

/// One (down, up, alpha) triple being gathered, keyed by module name as the file spells it.
#[derive(Default)]
struct Triple {
    down: Option<Tensor>,
    up: Option<Tensor>,
    alpha: Option<f64>,
}

/// The module a key belongs to and which part of the triple it is, in `format`'s naming.
fn split_key(key: &str) -> Option<(Format, String, &'static str)> {
    const SUFFIXES: [(&str, &str); 8] = [
        (".lora_A.weight", "down"),
        (".lora_B.weight", "up"),
        (".lora_down.weight", "down"),
        (".lora_up.weight", "up"),
        (".down.weight", "down"),
        (".up.weight", "up"),
        (".lora_A.alpha", "alpha"),
        (".alpha", "alpha"),
    ];
    for (suffix, part) in SUFFIXES {
        let Some(module) = key.strip_suffix(suffix) else {
            continue;
        };
        let format = if module.starts_with("lora_unet_") || module.starts_with("lora_te") {
            Format::Kohya
        } else if module.contains(".processor.") {
            Format::Xlabs
        } else if module.starts_with("transformer.") || module.starts_with("text_encoder") {
            Format::Peft
        } else {
            let bare = module.strip_prefix("diffusion_model.").unwrap_or(module);
            if is_bfl_module(bare) {
                Format::BflPeft
            } else if is_diffusers_module(bare) {
                Format::Peft
            } else {
                return None;
            }
        };
        return Some((format, module.to_owned(), part));
    }
    None
}

fn is_bfl_module(m: &str) -> bool {
    [
        "double_blocks.",
        "single_blocks.",
        "img_in",
        "txt_in",
        "time_in.",
        "vector_in.",
        "guidance_in.",
        "final_layer.",
    ]
    .iter()
    .any(|p| m.starts_with(p))
}

fn is_diffusers_module(m: &str) -> bool {
    [
        "transformer_blocks.",
        "single_transformer_blocks.",
        "x_embedder",
        "context_embedder",
        "time_text_embed.",
        "norm_out.",
        "proj_out",
    ]
    .iter()
    .any(|p| m.starts_with(p))
}

/// The model a LoRA is parsed for: its linear layers' BFL names, blocks and hidden size.
pub(crate) struct ModelShape<'a> {
    pub modules: &'a [String],
    pub(crate) double: usize,
    pub single: usize,
    pub(crate) hidden: usize,
}

/// Parse the tensors of a LoRA file for the model `shape`.
pub(crate) fn parse(
    tensors: HashMap<String, Tensor>,
    shape: &ModelShape<'_>,
) -> Result<ParsedLora, FormatError> {
    if tensors.is_empty() {
        return Err(err("holds no tensors"));
    }
    let mut triples: BTreeMap<String, Triple> = BTreeMap::new();
    let mut formats: BTreeMap<&'static str, Format> = BTreeMap::new();
    let mut text_encoder_keys = 0;
    let mut foreign = Vec::new();
    for (key, tensor) in tensors {
        if is_text_encoder(&key) {
            text_encoder_keys += 1;
            continue;
        }
        let Some((format, module, part)) = split_key(&key) else {
            foreign.push(key);
            continue;
        };
        formats.insert(format_name(format), format);
        let t = triples.entry(module).or_default();
        let f32 = tensor
            .to_dtype(DType::F32)
            .map_err(|e| err(format!("`{key}`: {e}")))?;
        match part {
            "down" => t.down = Some(f32),
            "up" => t.up = Some(f32),
            _ => {
                let alpha = f32
                    .flatten_all()
                    .and_then(|a| a.to_vec1::<f32>())
                    .map_err(|e| err(format!("`{key}`: {e}")))?;
                match alpha.as_slice() {
                    [a] if a.is_finite() => t.alpha = Some(f64::from(*a)),
                    _ => return Err(err(format!("`{key}` must be one finite number"))),
                }
            }
        }
    }
    if !foreign.is_empty() {
        foreign.sort();
        let family = if foreign.iter().any(|k| looks_like_unet(k)) {
            " (they look like a Stable Diffusion UNet LoRA)"
        } else if foreign
            .iter()
            .any(|k| k.contains("hada_") || k.contains("lokr_") || k.contains("dora_scale"))
        {
            " (LyCORIS LoHa/LoKr and DoRA weights are not supported; only plain LoRA)"
        } else {
            ""
        };
        return Err(err(format!(
            "is not a FLUX LoRA: {} keys match no FLUX LoRA naming{family}, e.g. `{}`",
            foreign.len(),
            foreign[0]
        )));
    }
    if formats.len() > 1 {
        return Err(err(format!(
            "mixes LoRA namings ({}); one file must use one",
            formats.keys().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    let Some(&format) = formats.values().next() else {
        return Err(err(
            "holds only text-encoder LoRA weights; nothing for the FLUX transformer",
        ));
    };
    let diffusers = names::diffusers_modules(shape.double, shape.single);
    let kohya: HashMap<String, &String> = shape
        .modules
        .iter()
        .map(|m| (format!("lora_unet_{}", m.replace('.', "_")), m))
        .collect();
    let mut pieces: BTreeMap<String, Vec<Piece>> = BTreeMap::new();
    for (module, triple) in triples {
        let (Some(down), Some(up)) = (triple.down, triple.up) else {
            return Err(err(format!(
                "`{module}` has only one of its two LoRA matrices (down/lora_A and up/lora_B)"
            )));
        };
        let rank = down.dim(0).map_err(|e| err(e.to_string()))?;
        let (down, up) = (matrix(&module, down)?, matrix(&module, up)?);
        if up.dim(1).map_err(|e| err(e.to_string()))? != rank || rank == 0 {
            return Err(err(format!(
                "`{module}`: the up matrix {:?} does not match the down matrix {:?} (rank {rank})",
                up.dims(),
                down.dims()
            )));
        }
        let scale = triple.alpha.map_or(1.0, |a| a / rank as f64);
        let target = match format {
            Format::Kohya => match kohya.get(&module) {
                Some(bfl) => Target::Bfl((*bfl).clone()),
                None => return Err(unknown(&module)),
            },
            Format::BflPeft => Target::Bfl(
                module
                    .strip_prefix("diffusion_model.")
                    .unwrap_or(&module)
                    .to_owned(),
            ),
            Format::Peft => {
                let bare = module.strip_prefix("transformer.").unwrap_or(&module);
                match diffusers.get(bare) {
                    Some((bfl, placement)) => Target::Diffusers(bfl.clone(), *placement),
                    None => return Err(unknown(&module)),
                }
            }
            Format::Xlabs => Target::Bfl(xlabs_target(&module).ok_or_else(|| unknown(&module))?),
        };
        place(&mut pieces, target, down, up, scale, shape.hidden)?;
    }
    Ok(ParsedLora {
        format,
        pieces,
        text_encoder_keys,
    })
}

pub(crate) fn format_name(f: Format) -> &'static str {
    match f {
        Format::Peft => "diffusers/PEFT",
        Format::Kohya => "kohya",
        Format::Xlabs => "XLabs",
        Format::BflPeft => "BFL",
    }
}

fn unknown(module: &str) -> FormatError {
    if looks_like_unet(module) {
        return err(format!(
            "is not a FLUX LoRA: `{module}` is a layer of a Stable Diffusion UNet"
        ));
    }
    err(format!(
        "`{module}` names no layer of this FLUX transformer (a LoRA for another model or a \
         FLUX with other blocks?)"
    ))
}

/// Stable Diffusion (1.x, 2.x, XL) UNet block names, in diffusers' or the original naming.
fn looks_like_unet(key: &str) -> bool {
    [
        "down_blocks",
        "up_blocks",
        "mid_block",
        "input_blocks",
        "output_blocks",
        "middle_block",
    ]
    .iter()
    .any(|p| key.contains(p))
}

/// A 2-D matrix (1x1 convolution kernels of some trainers are flattened).
fn matrix(module: &str, t: Tensor) -> Result<Tensor, FormatError> {
    match t.dims() {
        [_, _] => Ok(t),
        [o, i, 1, 1] => t.reshape((*o, *i)).map_err(|e| err(e.to_string())),
        d => Err(err(format!(
            "`{module}`: a LoRA matrix must be 2-D, this one is {d:?}"
        ))),
    }
}

/// XLabs `double_blocks.N.processor.qkv_lora1` → `double_blocks.N.img_attn.qkv`, and so on;
/// single blocks' `qkv_lora` is the q, k, v rows of `linear1` (from row 0), `proj_lora` is
/// `linear2`, as diffusers' converter reads them.
fn xlabs_target(module: &str) -> Option<String> {
    let module = module.strip_prefix("diffusion_model.").unwrap_or(module);
    let (block, layer) = module.split_once(".processor.")?;
    let bfl_layer = if block.starts_with("double_blocks.") {
        match layer {
            "qkv_lora1" => "img_attn.qkv",
            "proj_lora1" => "img_attn.proj",
            "qkv_lora2" => "txt_attn.qkv",
            "proj_lora2" => "txt_attn.proj",
            _ => return None,
        }
    } else if block.starts_with("single_blocks.") {
        match layer {
            "qkv_lora" => "linear1",
            "proj_lora" => "linear2",
            _ => return None,
        }
    } else {
        return None;
    };
    Some(format!("{block}.{bfl_layer}"))
}

/// Add the delta `up · down` to `pieces`, its rows placed where the BFL module holds them.
fn place(
    pieces: &mut BTreeMap<String, Vec<Piece>>,
    target: Target,
    down: Tensor,
    up: Tensor,
    scale: f64,
    hidden: usize,
) -> Result<(), FormatError> {
    let rows = up.dim(0).map_err(|e| err(e.to_string()))?;
    let (module, placed): (String, Vec<(usize, Tensor)>) = match target {
        Target::Bfl(m) => (m, vec![(0, up)]),
        Target::Diffusers(m, Placement::Whole) => (m, vec![(0, up)]),
        Target::Diffusers(m, Placement::Equal { index, .. }) => (m, vec![(index * rows, up)]),
        // q, k and v are `hidden` rows each; the MLP part (index 3) starts after all three.
        Target::Diffusers(m, Placement::Linear1 { index }) => (m, vec![(index * hidden, up)]),
        Target::Diffusers(m, Placement::SwappedHalves) => {
            let half = rows / 2;
            let halves = (up.narrow(0, 0, half), up.narrow(0, half, rows - half));
            let (a, b) = match halves {
                (Ok(a), Ok(b)) => (a, b),
                _ => return Err(err(format!("`{m}`: cannot split {rows} rows in halves"))),
            };
            (m, vec![(rows - half, a), (0, b)])
        }
    };
    let entry = pieces.entry(module).or_default();
    for (row, up) in placed {
        entry.push(Piece {
            row,
            down: down.clone(),
            up,
            scale,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_into_module_part_and_naming() {
        let k = split_key;
        assert_eq!(
            k("transformer.transformer_blocks.0.attn.to_q.lora_A.weight"),
            Some((
                Format::Peft,
                "transformer.transformer_blocks.0.attn.to_q".into(),
                "down"
            ))
        );
        assert_eq!(
            k("transformer.x_embedder.lora_A.alpha").map(|t| (t.1, t.2)),
            Some(("transformer.x_embedder".into(), "alpha"))
        );
        assert_eq!(
            k("lora_unet_single_blocks_3_linear2.alpha"),
            Some((
                Format::Kohya,
                "lora_unet_single_blocks_3_linear2".into(),
                "alpha"
            ))
        );
        assert_eq!(
            k("double_blocks.1.processor.qkv_lora2.up.weight").map(|t| t.0),
            Some(Format::Xlabs)
        );
        assert_eq!(
            k("diffusion_model.single_blocks.0.linear1.lora_B.weight").map(|t| t.0),
            Some(Format::BflPeft)
        );
        assert_eq!(k("model.embed.hada_w1_a"), None);
        assert_eq!(
            xlabs_target("single_blocks.2.processor.qkv_lora").as_deref(),
            Some("single_blocks.2.linear1")
        );
    }
}
