//! The rule table of `names`: how each Black Forest Labs tensor of the FLUX transformer and VAE is
//! made of diffusers tensors (renamed, concatenated, halves swapped, reshaped), generated for a
//! given number of blocks. Data only; `names` applies it in both directions.

/// How one BFL tensor is made of its diffusers tensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Join {
    /// The same tensor under another name.
    Same,
    /// Equal parts concatenated along the output dimension (fused q, k, v).
    Cat3,
    /// q, k, v (each `hidden` rows) and the MLP input, concatenated (single-block `linear1`).
    CatLinear1,
    /// The two halves swapped: BFL stores (shift, scale), diffusers (scale, shift).
    SwapHalves,
    /// A 1x1 convolution in BFL, a linear layer in diffusers (VAE mid attention).
    Conv1x1,
}

#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub bfl: String,
    pub diffusers: Vec<String>,
    pub join: Join,
}

/// Rules for a layer with `.weight` and `.bias`; `join` applies to the weight and, except for a
/// 1x1 convolution, to the bias too.
fn layer(rules: &mut Vec<Rule>, bfl: &str, diffusers: &[String], join: Join) {
    for suffix in ["weight", "bias"] {
        let join = if join == Join::Conv1x1 && suffix == "bias" {
            Join::Same
        } else {
            join
        };
        rules.push(Rule {
            bfl: format!("{bfl}.{suffix}"),
            diffusers: diffusers.iter().map(|d| format!("{d}.{suffix}")).collect(),
            join,
        });
    }
}

fn same(rules: &mut Vec<Rule>, bfl: &str, diffusers: &str) {
    layer(rules, bfl, &[diffusers.to_owned()], Join::Same);
}

/// QK-norm: BFL `*.scale`, diffusers `*.weight`.
fn qk_norm(rules: &mut Vec<Rule>, bfl: &str, diffusers: &str) {
    rules.push(Rule {
        bfl: format!("{bfl}.scale"),
        diffusers: vec![format!("{diffusers}.weight")],
        join: Join::Same,
    });
}

/// Distinct numbers following `prefix` in the names.
pub(super) fn transformer_rules(double: usize, single: usize) -> Vec<Rule> {
    let mut r = Vec::new();
    same(&mut r, "img_in", "x_embedder");
    same(&mut r, "txt_in", "context_embedder");
    for (bfl, d) in [
        ("time_in", "timestep"),
        ("vector_in", "text"),
        ("guidance_in", "guidance"),
    ] {
        same(
            &mut r,
            &format!("{bfl}.in_layer"),
            &format!("time_text_embed.{d}_embedder.linear_1"),
        );
        same(
            &mut r,
            &format!("{bfl}.out_layer"),
            &format!("time_text_embed.{d}_embedder.linear_2"),
        );
    }
    same(&mut r, "final_layer.linear", "proj_out");
    layer(
        &mut r,
        "final_layer.adaLN_modulation.1",
        &["norm_out.linear".to_owned()],
        Join::SwapHalves,
    );
    for i in 0..double {
        let (b, d) = (
            format!("double_blocks.{i}"),
            format!("transformer_blocks.{i}"),
        );
        let parts = |names: [&str; 3]| names.map(|n| format!("{d}.attn.{n}"));
        same(
            &mut r,
            &format!("{b}.img_mod.lin"),
            &format!("{d}.norm1.linear"),
        );
        same(
            &mut r,
            &format!("{b}.txt_mod.lin"),
            &format!("{d}.norm1_context.linear"),
        );
        layer(
            &mut r,
            &format!("{b}.img_attn.qkv"),
            &parts(["to_q", "to_k", "to_v"]),
            Join::Cat3,
        );
        layer(
            &mut r,
            &format!("{b}.txt_attn.qkv"),
            &parts(["add_q_proj", "add_k_proj", "add_v_proj"]),
            Join::Cat3,
        );
        same(
            &mut r,
            &format!("{b}.img_attn.proj"),
            &format!("{d}.attn.to_out.0"),
        );
        same(
            &mut r,
            &format!("{b}.txt_attn.proj"),
            &format!("{d}.attn.to_add_out"),
        );
        same(
            &mut r,
            &format!("{b}.img_mlp.0"),
            &format!("{d}.ff.net.0.proj"),
        );
        same(&mut r, &format!("{b}.img_mlp.2"), &format!("{d}.ff.net.2"));
        same(
            &mut r,
            &format!("{b}.txt_mlp.0"),
            &format!("{d}.ff_context.net.0.proj"),
        );
        same(
            &mut r,
            &format!("{b}.txt_mlp.2"),
            &format!("{d}.ff_context.net.2"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.img_attn.norm.query_norm"),
            &format!("{d}.attn.norm_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.img_attn.norm.key_norm"),
            &format!("{d}.attn.norm_k"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.txt_attn.norm.query_norm"),
            &format!("{d}.attn.norm_added_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.txt_attn.norm.key_norm"),
            &format!("{d}.attn.norm_added_k"),
        );
    }
    for i in 0..single {
        let (b, d) = (
            format!("single_blocks.{i}"),
            format!("single_transformer_blocks.{i}"),
        );
        let linear1 =
            ["attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp"].map(|n| format!("{d}.{n}"));
        layer(&mut r, &format!("{b}.linear1"), &linear1, Join::CatLinear1);
        same(&mut r, &format!("{b}.linear2"), &format!("{d}.proj_out"));
        same(
            &mut r,
            &format!("{b}.modulation.lin"),
            &format!("{d}.norm.linear"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.norm.query_norm"),
            &format!("{d}.attn.norm_q"),
        );
        qk_norm(
            &mut r,
            &format!("{b}.norm.key_norm"),
            &format!("{d}.attn.norm_k"),
        );
    }
    r
}

fn resnet(r: &mut Vec<Rule>, bfl: &str, d: &str) {
    for n in ["norm1", "conv1", "norm2", "conv2"] {
        same(r, &format!("{bfl}.{n}"), &format!("{d}.{n}"));
    }
    same(
        r,
        &format!("{bfl}.nin_shortcut"),
        &format!("{d}.conv_shortcut"),
    );
}

/// VAE rules for `levels` resolution levels with `enc`/`dec` resnets per level.
pub(super) fn vae_rules(levels: usize, enc: usize, dec: usize) -> Vec<Rule> {
    let mut r = Vec::new();
    for (side, blocks, down) in [("encoder", enc, true), ("decoder", dec, false)] {
        same(
            &mut r,
            &format!("{side}.conv_in"),
            &format!("{side}.conv_in"),
        );
        same(
            &mut r,
            &format!("{side}.conv_out"),
            &format!("{side}.conv_out"),
        );
        same(
            &mut r,
            &format!("{side}.norm_out"),
            &format!("{side}.conv_norm_out"),
        );
        for (i, n) in ["block_1", "block_2"].iter().enumerate() {
            resnet(
                &mut r,
                &format!("{side}.mid.{n}"),
                &format!("{side}.mid_block.resnets.{i}"),
            );
        }
        let attn = format!("{side}.mid_block.attentions.0");
        same(
            &mut r,
            &format!("{side}.mid.attn_1.norm"),
            &format!("{attn}.group_norm"),
        );
        for (bfl, d) in [
            ("q", "to_q"),
            ("k", "to_k"),
            ("v", "to_v"),
            ("proj_out", "to_out.0"),
        ] {
            layer(
                &mut r,
                &format!("{side}.mid.attn_1.{bfl}"),
                &[format!("{attn}.{d}")],
                Join::Conv1x1,
            );
        }
        for i in 0..levels {
            // diffusers numbers the decoder's up blocks from the lowest resolution.
            let (bfl, d) = if down {
                (
                    format!("encoder.down.{i}"),
                    format!("encoder.down_blocks.{i}"),
                )
            } else {
                (
                    format!("decoder.up.{i}"),
                    format!("decoder.up_blocks.{}", levels - 1 - i),
                )
            };
            for j in 0..blocks {
                resnet(
                    &mut r,
                    &format!("{bfl}.block.{j}"),
                    &format!("{d}.resnets.{j}"),
                );
            }
            let (bfl_sample, d_sample) = if down {
                ("downsample", "downsamplers")
            } else {
                ("upsample", "upsamplers")
            };
            same(
                &mut r,
                &format!("{bfl}.{bfl_sample}.conv"),
                &format!("{d}.{d_sample}.0.conv"),
            );
        }
    }
    r
}
