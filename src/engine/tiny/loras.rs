//! Tiny random LoRAs for the tiny FLUX transformer, one file per naming merchgen reads
//! (`loras/tiny-peft.safetensors`, `tiny-kohya`, `tiny-xlabs`, `tiny-bfl`), written in exactly the
//! keys and shapes real trainers save: diffusers/PEFT `transformer.<module>.lora_A/B.weight`,
//! kohya `lora_unet_<module>.lora_down/up.weight` with `alpha`, XLabs
//! `double_blocks.0.processor.qkv_lora1.down.weight`, BFL names with `lora_A/B`.

use anyhow::Result;
use candle_core::{Device, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::HashMap;
use std::path::Path;

/// The LoRA files `write` makes, by naming.
pub const FILES: [&str; 4] = [
    "loras/tiny-peft.safetensors",
    "loras/tiny-kohya.safetensors",
    "loras/tiny-xlabs.safetensors",
    "loras/tiny-bfl.safetensors",
];

const RANK: usize = 4;

/// `(rank, in)` down and `(out, rank)` up matrices, random: large enough to change the image.
fn pair(rng: &mut impl Rng, input: usize, output: usize) -> Result<(Tensor, Tensor)> {
    let mut draw = |n: usize, scale: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                let v: f32 = StandardNormal.sample(&mut *rng);
                v * scale
            })
            .collect()
    };
    let down = Tensor::from_vec(
        draw(RANK * input, 1.0 / (input as f32).sqrt()),
        (RANK, input),
        &Device::Cpu,
    )?;
    let up = Tensor::from_vec(draw(output * RANK, 0.5), (output, RANK), &Device::Cpu)?;
    Ok((down, up))
}

/// A PEFT-suffixed pair for `module` (`lora_A` down, `lora_B` up).
fn add(
    rng: &mut impl Rng,
    map: &mut HashMap<String, Tensor>,
    module: &str,
    (i, o): (usize, usize),
) -> Result<()> {
    let (d, u) = pair(rng, i, o)?;
    map.insert(format!("{module}.lora_A.weight"), d);
    map.insert(format!("{module}.lora_B.weight"), u);
    Ok(())
}

/// Write the four files under `dir` for a transformer of `hidden` width, `mlp` MLP width and one
/// double and one single block.
pub fn write(dir: &Path, hidden: usize, mlp: usize, rng: &mut impl Rng) -> Result<()> {
    std::fs::create_dir_all(dir.join("loras"))?;
    let h = hidden;
    // diffusers/PEFT: attention and MLP of both block kinds, the final norm's modulation.
    let mut peft = HashMap::new();
    for m in [
        "to_q",
        "to_k",
        "to_v",
        "add_q_proj",
        "add_k_proj",
        "add_v_proj",
    ] {
        add(
            rng,
            &mut peft,
            &format!("transformer.transformer_blocks.0.attn.{m}"),
            (h, h),
        )?;
    }
    add(
        rng,
        &mut peft,
        "transformer.transformer_blocks.0.attn.to_out.0",
        (h, h),
    )?;
    add(
        rng,
        &mut peft,
        "transformer.transformer_blocks.0.ff.net.0.proj",
        (h, mlp),
    )?;
    add(
        rng,
        &mut peft,
        "transformer.transformer_blocks.0.ff_context.net.2",
        (mlp, h),
    )?;
    for m in ["attn.to_q", "attn.to_k", "attn.to_v"] {
        add(
            rng,
            &mut peft,
            &format!("transformer.single_transformer_blocks.0.{m}"),
            (h, h),
        )?;
    }
    add(
        rng,
        &mut peft,
        "transformer.single_transformer_blocks.0.proj_mlp",
        (h, mlp),
    )?;
    add(
        rng,
        &mut peft,
        "transformer.single_transformer_blocks.0.proj_out",
        (h + mlp, h),
    )?;
    add(rng, &mut peft, "transformer.norm_out.linear", (h, 2 * h))?;
    candle_core::safetensors::save(&peft, dir.join(FILES[0]))?;

    // kohya: BFL modules with underscores, alpha = rank / 2 (scale 0.5).
    let mut kohya = HashMap::new();
    for (module, io) in [
        ("double_blocks_0_img_attn_qkv", (h, 3 * h)),
        ("double_blocks_0_txt_attn_proj", (h, h)),
        ("double_blocks_0_img_mlp_0", (h, mlp)),
        ("single_blocks_0_linear1", (h, 3 * h + mlp)),
        ("single_blocks_0_linear2", (h + mlp, h)),
    ] {
        let (d, u) = pair(rng, io.0, io.1)?;
        kohya.insert(format!("lora_unet_{module}.lora_down.weight"), d);
        kohya.insert(format!("lora_unet_{module}.lora_up.weight"), u);
        kohya.insert(
            format!("lora_unet_{module}.alpha"),
            Tensor::new(RANK as f32 / 2.0, &Device::Cpu)?,
        );
    }
    candle_core::safetensors::save(&kohya, dir.join(FILES[1]))?;

    // XLabs: attention of the double block (1 image, 2 text) and the single block.
    let mut xlabs = HashMap::new();
    for (module, io) in [
        ("double_blocks.0.processor.qkv_lora1", (h, 3 * h)),
        ("double_blocks.0.processor.proj_lora1", (h, h)),
        ("double_blocks.0.processor.qkv_lora2", (h, 3 * h)),
        ("double_blocks.0.processor.proj_lora2", (h, h)),
        ("single_blocks.0.processor.qkv_lora", (h, 3 * h)),
    ] {
        let (d, u) = pair(rng, io.0, io.1)?;
        xlabs.insert(format!("{module}.down.weight"), d);
        xlabs.insert(format!("{module}.up.weight"), u);
    }
    candle_core::safetensors::save(&xlabs, dir.join(FILES[2]))?;

    // BFL names with PEFT suffixes (ComfyUI-style `diffusion_model.` prefix).
    let mut bfl = HashMap::new();
    for (module, io) in [
        ("diffusion_model.double_blocks.0.txt_attn.qkv", (h, 3 * h)),
        ("diffusion_model.single_blocks.0.linear2", (h + mlp, h)),
    ] {
        add(rng, &mut bfl, module, io)?;
    }
    candle_core::safetensors::save(&bfl, dir.join(FILES[3]))?;
    Ok(())
}
