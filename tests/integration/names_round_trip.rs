//! The diffusers <-> Black Forest Labs name mapping (`engine::flux::names`), proved by round trips on
//! every tensor of candle's own FLUX transformer and VAE (BFL -> diffusers -> BFL gives identical
//! names and values), the final layer's scale/shift swap, and errors for unknown or partial
//! tensors; plus the sigma schedules (`engine::flux::schedule`). Fast: no files, no model runs.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::flux;
use merchgen::engine::files::manifest::Schedule;
use merchgen::engine::flux::names::*;
use merchgen::engine::flux::schedule::sigmas;

/// Every variable of a freshly built candle module, with distinct values per tensor.
fn built(build: impl FnOnce(VarBuilder) -> candle_core::Result<()>) -> Tensors {
    let vm = VarMap::new();
    build(VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let data = vm.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    names
        .into_iter()
        .enumerate()
        .map(|(k, n)| {
            let t = data[n].as_tensor();
            let v = Tensor::arange(0f32, t.elem_count() as f32, &Device::Cpu).unwrap();
            (
                n.clone(),
                ((v + k as f64 * 1e4).unwrap()).reshape(t.dims()).unwrap(),
            )
        })
        .collect()
}

fn assert_identical(a: &Tensors, b: &Tensors) {
    let (mut ka, mut kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
    ka.sort();
    kb.sort();
    assert_eq!(ka, kb);
    for (name, t) in a {
        let u = &b[name];
        assert_eq!(t.dims(), u.dims(), "{name}");
        let diff: f32 = (t - u)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        assert_eq!(diff, 0.0, "{name}");
    }
}

fn tiny_flux(guidance: bool) -> flux::model::Config {
    flux::model::Config {
        in_channels: 64,
        vec_in_dim: 32,
        context_in_dim: 48,
        hidden_size: 64,
        mlp_ratio: 4.0,
        num_heads: 2,
        depth: 2,
        depth_single_blocks: 3,
        axes_dim: vec![8, 12, 12],
        theta: 10_000,
        qkv_bias: true,
        guidance_embed: guidance,
    }
}

#[test]
fn names_transformer_round_trip_is_identical() {
    for guidance in [false, true] {
        let cfg = tiny_flux(guidance);
        let bfl = built(|vb| flux::model::Flux::new(&cfg, vb).map(|_| ()));
        let diffusers = transformer_to_diffusers(bfl.clone()).unwrap();
        assert!(diffusers.contains_key("single_transformer_blocks.2.proj_mlp.weight"));
        assert_eq!(
            diffusers["single_transformer_blocks.0.attn.to_q.weight"].dims(),
            [64, 64]
        );
        assert_eq!(
            diffusers["single_transformer_blocks.0.proj_mlp.weight"].dims(),
            [256, 64]
        );
        assert_eq!(
            diffusers.contains_key("time_text_embed.guidance_embedder.linear_1.weight"),
            guidance
        );
        assert!(
            is_diffusers_transformer(diffusers.keys()) && !is_diffusers_transformer(bfl.keys())
        );
        assert_identical(&transformer_to_bfl(diffusers).unwrap(), &bfl);
    }
}

#[test]
fn names_final_layer_scale_and_shift_are_swapped() {
    let bfl = built(|vb| flux::model::Flux::new(&tiny_flux(false), vb).map(|_| ()));
    let d = transformer_to_diffusers(bfl.clone()).unwrap();
    let w = &bfl["final_layer.adaLN_modulation.1.weight"];
    let first_bfl = w.narrow(0, 0, 64).unwrap();
    let second_d = d["norm_out.linear.weight"].narrow(0, 64, 64).unwrap();
    assert_identical(
        &[("x".to_owned(), first_bfl)].into(),
        &[("x".to_owned(), second_d)].into(),
    );
}

#[test]
fn names_vae_round_trip_reverses_up_blocks() {
    let cfg = flux::autoencoder::Config {
        resolution: 64,
        in_channels: 3,
        ch: 32,
        out_ch: 3,
        ch_mult: vec![1, 2, 2, 2],
        num_res_blocks: 1,
        z_channels: 16,
        scale_factor: 0.3611,
        shift_factor: 0.1159,
    };
    let bfl = built(|vb| flux::autoencoder::AutoEncoder::new(&cfg, vb).map(|_| ()));
    let d = vae_to_diffusers(bfl.clone()).unwrap();
    assert!(is_diffusers_vae(d.keys()) && !is_diffusers_vae(bfl.keys()));
    assert_eq!(
        d["decoder.up_blocks.3.resnets.0.conv1.weight"].dims(),
        bfl["decoder.up.0.block.0.conv1.weight"].dims()
    );
    assert!(d.contains_key("encoder.down_blocks.1.resnets.0.conv_shortcut.weight"));
    assert_eq!(
        d["encoder.mid_block.attentions.0.to_q.weight"].dims(),
        [64, 64]
    );
    assert_identical(&vae_to_bfl(d).unwrap(), &bfl);
}

#[test]
fn names_unknown_and_partial_tensors_are_errors() {
    let t = |n: &str| {
        (
            n.to_owned(),
            Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
        )
    };
    let err =
        transformer_to_bfl([t("x_embedder.weight"), t("pos_embed.weight")].into()).unwrap_err();
    assert!(err.to_string().contains("pos_embed.weight"), "{err}");
    let err = transformer_to_bfl([t("transformer_blocks.0.attn.to_q.weight")].into()).unwrap_err();
    assert!(err.to_string().contains("to_k"), "{err}");
}

#[test]
fn sigmas_schnell_and_dev_match_candle() {
    assert_eq!(
        sigmas(&Schedule::Schnell, 4, 4096),
        vec![1.0, 0.75, 0.5, 0.25, 0.0]
    );
    let ours = sigmas(&Schedule::Dev, 28, 1024);
    let candle = flux::sampling::get_schedule(28, Some((1024, 0.5, 1.15)));
    assert_eq!(ours.len(), candle.len());
    for (a, b) in ours.iter().zip(&candle) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}

#[test]
fn sigmas_fixed_shift_three() {
    let s = sigmas(&Schedule::Shifted { shift: 3.0 }, 2, 0);
    assert_eq!(s[0], 1.0);
    assert!(
        (s[1] - 0.75).abs() < 1e-12,
        "3*0.5/(1+2*0.5) = 0.75, got {}",
        s[1]
    );
    assert_eq!(s[2], 0.0);
}
