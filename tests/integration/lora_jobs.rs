//! LoRAs per job on the tiny model: every naming changes the images, scale 0 is no LoRA, the
//! weights come back exactly afterwards (byte-identical to a fresh process), in both weight modes;
//! the volume cache fetches a LoRA once (counted at a real HTTP server); private addresses are
//! refused; bad LoRA files fail alone with `invalid_input` naming `loras[i]`. Also FLUX.1-dev on
//! the tiny dev-style model: guidance changes the image, true CFG runs with a negative prompt.

use crate::support;
use crate::support::http::{Reply, TestServer};

use merchgen::app::Door;
use merchgen::engine::files::hub::HubSettings;
use merchgen::engine::files::lora_cache::file_sha256;
use merchgen::engine::flux::weights::WeightsMode;
use merchgen::engine::flux::FluxPipeline;
use merchgen::engine::tiny::{self, loras, TinyLayout};
use merchgen::engine::LoraInput;
use merchgen::engine::{GenerateRequest, Generator, TrueCfg};
use merchgen::worker::JobRequest;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn request() -> GenerateRequest {
    GenerateRequest {
        prompt: "a corgi astronaut, bold outlines".into(),
        width: 64,
        height: 64,
        steps: 2,
        seed: 3,
        num_images: 1,
        max_sequence_length: 32,
        ..GenerateRequest::default()
    }
}

fn lora(dir: &Path, file: &str, index: usize, scale: f64) -> LoraInput {
    let path = dir.join(file);
    LoraInput {
        index,
        sha256: file_sha256(&path).unwrap(),
        path,
        scale,
        skip_text_encoder: false,
    }
}

fn load(model: &Path, manifest: Option<&str>, weights: WeightsMode) -> FluxPipeline {
    let target = match manifest {
        Some(m) => model.join(m),
        None => model.to_owned(),
    };
    let hub = HubSettings {
        cache_dir: model.to_owned(),
        offline: true,
        token: None,
    };
    support::workers::pipeline(target.to_str().unwrap(), &hub, weights)
}

fn pixels(p: &mut FluxPipeline, req: &GenerateRequest) -> Vec<u8> {
    let out = p
        .generate(req, &AtomicBool::new(false), &mut |_, _| {})
        .expect("generates");
    out.images[0].image.as_raw().clone()
}

fn with(loras: Vec<LoraInput>) -> GenerateRequest {
    GenerateRequest { loras, ..request() }
}

/// Each naming changes the image; scale 0 is none; after LoRA jobs the weights are exactly the
/// loaded ones again. `weights` picks merge (dense f32) or side path (Q8_0 blocks).
fn loras_apply_and_come_off_exactly(weights: WeightsMode) {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(dir.path(), 21, TinyLayout::Folder).unwrap();
    let mut p = load(&model, None, weights);
    let base = pixels(&mut p, &request());
    let mut seen = vec![base.clone()];
    for file in loras::FILES {
        let img = pixels(&mut p, &with(vec![lora(&model, file, 0, 1.0)]));
        assert!(
            !seen.contains(&img),
            "{file} changes the image, and differently from the others"
        );
        seen.push(img);
    }
    let peft = &seen[1];
    let half = pixels(&mut p, &with(vec![lora(&model, loras::FILES[0], 0, 0.5)]));
    assert!(&half != peft && half != base, "the scale matters");
    let both = pixels(
        &mut p,
        &with(vec![
            lora(&model, loras::FILES[0], 0, 1.0),
            lora(&model, loras::FILES[1], 1, 1.0),
        ]),
    );
    assert!(!seen.contains(&both), "two LoRAs at once are neither alone");
    let again = pixels(&mut p, &with(vec![lora(&model, loras::FILES[0], 0, 1.0)]));
    assert_eq!(&again, peft, "the same LoRA set gives the same image");
    // Back and forth between the last two sets (their stacked factors kept on the device).
    let two = || {
        with(vec![
            lora(&model, loras::FILES[0], 0, 1.0),
            lora(&model, loras::FILES[1], 1, 1.0),
        ])
    };
    assert!(
        pixels(&mut p, &two()) == both,
        "a kept set gives the same image"
    );
    let peft_req = with(vec![lora(&model, loras::FILES[0], 0, 1.0)]);
    assert_eq!(&pixels(&mut p, &peft_req), peft, "and so does the other");
    let zero = pixels(&mut p, &with(vec![lora(&model, loras::FILES[0], 0, 0.0)]));
    assert!(zero == base, "scale 0 equals no LoRA");
    let after = pixels(&mut p, &request());
    assert!(
        after == base,
        "no LoRA after LoRA jobs: the loaded weights, exactly"
    );
    let mut fresh = load(&model, None, weights);
    assert!(
        pixels(&mut fresh, &request()) == after,
        "as a fresh process gives"
    );
}

#[test]
fn loras_on_quantized_weights_run_as_a_side_path_and_come_off_exactly() {
    loras_apply_and_come_off_exactly(WeightsMode::Quantized);
}

#[test]
fn loras_on_dense_weights_merge_and_unmerge_exactly() {
    loras_apply_and_come_off_exactly(WeightsMode::Bf16);
}

#[test]
fn dev_style_model_uses_guidance_and_true_cfg() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(dir.path(), 22, TinyLayout::Folder).unwrap();
    let mut p = load(
        &model,
        Some(tiny::TINY_MANIFEST_DEV),
        WeightsMode::Quantized,
    );
    let report = p.load_report().clone();
    assert!(
        report.defaults.true_cfg,
        "a guidance embedding allows true CFG"
    );
    assert_eq!((report.defaults.steps, report.defaults.guidance), (28, 3.5));
    let at = |g: f64| GenerateRequest {
        guidance: g,
        ..request()
    };
    let g35 = pixels(&mut p, &at(3.5));
    assert!(
        g35 != pixels(&mut p, &at(1.0)),
        "distilled guidance matters"
    );
    let cfg = |scale: f64| GenerateRequest {
        true_cfg: Some(TrueCfg {
            negative_prompt: "blurry, watermark".into(),
            scale,
        }),
        ..at(3.5)
    };
    let neg = pixels(&mut p, &cfg(2.5));
    assert!(
        neg != g35,
        "a negative prompt with true CFG changes the image"
    );
    assert!(neg == pixels(&mut p, &cfg(2.5)), "deterministic");
    assert!(neg != pixels(&mut p, &cfg(4.0)), "the scale matters");
    // The schnell-style model has no guidance embedding: no true CFG.
    let schnell = load(&model, None, WeightsMode::Quantized);
    assert!(!schnell.load_report().defaults.true_cfg);
}

/// A worker on the tiny model with `extra` flags, writing under `dir/out`.
async fn worker(dir: &Path, extra: &[&str]) -> (merchgen::worker::Worker, std::path::PathBuf) {
    let model = tiny::write(&dir.join("model"), 23, TinyLayout::Folder).unwrap();
    let cache = dir.join("lora-cache");
    let mut args = vec!["--lora-cache", cache.to_str().unwrap()];
    args.extend_from_slice(extra);
    let cli = support::workers::cli(&model, &args);
    let out = dir.join("out");
    let w = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
    (w, model)
}

fn job(id: &str, loras: serde_json::Value) -> serde_json::Value {
    json!({"id": id, "prompt": "a corgi astronaut", "width": 64, "height": 64,
           "num_inference_steps": 2, "seed": 9, "loras": loras})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lora_url_is_fetched_once_per_volume_and_private_addresses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (w, model) = worker(dir.path(), &["--fetch-allow", "127.0.0.0/8"]).await;
    let file = std::fs::read(model.join(loras::FILES[1])).unwrap();
    let server = TestServer::script(vec![Reply::ok(file)]).await;
    let url = server.url("/loras/brand.safetensors");
    let first = w
        .handle(JobRequest::new(
            job("lora-1", json!([{"source": {"url": url}, "scale": 0.8}])),
            "d1",
        ))
        .await;
    assert!(first.succeeded(), "{first:?}");
    let t = first.timings_ms.clone().unwrap();
    assert!(t.lora_load.is_some() && t.lora_apply.is_some(), "{t:?}");
    let second = w
        .handle(JobRequest::new(
            job("lora-2", json!([{"source": {"url": url}, "scale": 0.8}])),
            "d2",
        ))
        .await;
    assert!(second.succeeded(), "{second:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "the second job read the volume's copy"
    );
    assert_eq!(
        second.timings_ms.unwrap().lora_load,
        Some(0),
        "the same set on the weights costs nothing"
    );
    let plain = w
        .handle(JobRequest::new(job("plain", json!([])), "d3"))
        .await;
    assert!(plain.succeeded(), "{plain:?}");

    // Without the loopback allowance the same URL is refused before anything is fetched.
    let dir2 = tempfile::tempdir().unwrap();
    let (strict, _) = worker(dir2.path(), &[]).await;
    let refused = strict
        .handle(JobRequest::new(
            job("lora-3", json!([{"source": {"url": url}}])),
            "d4",
        ))
        .await;
    let e = refused.error.expect("refused");
    assert_eq!(e.code.as_str(), "invalid_input", "{e:?}");
    assert_eq!(e.field.as_deref(), Some("loras[0].source.url"));
    assert_eq!(server.requests().len(), 1, "nothing was fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_loras_fail_alone_naming_the_lora_and_the_next_job_has_clean_weights() {
    let dir = tempfile::tempdir().unwrap();
    let (w, model) = worker(dir.path(), &["--lora-max-bytes", "200000"]).await;
    let clean = w
        .handle(JobRequest::new(job("clean-1", json!([])), "c1"))
        .await;
    assert!(clean.succeeded(), "{clean:?}");
    let bytes =
        |id: &str| std::fs::read(dir.path().join(format!("out/{id}/images/0.png"))).unwrap();
    let reference = bytes("clean-1");

    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let good = std::fs::read(model.join(loras::FILES[0])).unwrap();
    std::fs::write(
        bad.join("text.safetensors"),
        b"this is not a safetensors file",
    )
    .unwrap();
    std::fs::write(bad.join("truncated.safetensors"), &good[..good.len() / 2]).unwrap();
    let save = |name: &str, tensors: Vec<(&str, candle_core::Tensor)>| {
        let map: std::collections::HashMap<String, candle_core::Tensor> = tensors
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        candle_core::safetensors::save(&map, bad.join(name)).unwrap();
    };
    let zeros = |shape: (usize, usize)| {
        candle_core::Tensor::zeros(shape, candle_core::DType::F32, &candle_core::Device::Cpu)
            .unwrap()
    };
    // A LoRA of a wider FLUX: 512 inputs where the tiny model has 256.
    save(
        "wide.safetensors",
        vec![
            (
                "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight",
                zeros((4, 512)),
            ),
            (
                "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight",
                zeros((512, 4)),
            ),
        ],
    );
    // A Stable Diffusion UNet LoRA.
    save(
        "sdxl.safetensors",
        vec![
            (
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
                zeros((4, 320)),
            ),
            (
                "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight",
                zeros((320, 4)),
            ),
        ],
    );
    // Text-encoder weights beside transformer ones: refused unless the job says skip.
    let mut with_te: Vec<(&str, candle_core::Tensor)> = vec![
        (
            "lora_unet_double_blocks_0_img_attn_proj.lora_down.weight",
            zeros((4, 256)),
        ),
        (
            "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight",
            zeros((256, 4)),
        ),
    ];
    with_te.push((
        "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
        zeros((4, 64)),
    ));
    save("with-te.safetensors", with_te);
    // Over the byte cap (200 000 bytes).
    std::fs::write(bad.join("huge.safetensors"), vec![0u8; 300_000]).unwrap();

    let path = |name: &str| bad.join(name).to_str().unwrap().to_owned();
    let cases = [
        (
            "text",
            json!([{"source": {"path": path("text.safetensors")}}]),
            "loras[0]",
            "invalid_input",
            "safetensors",
        ),
        (
            "truncated",
            json!([{"source": {"path": path("truncated.safetensors")}}]),
            "loras[0]",
            "invalid_input",
            "safetensors",
        ),
        (
            "wide",
            json!([{"source": {"path": path("wide.safetensors")}}]),
            "loras[0]",
            "invalid_input",
            "do not fit the layer",
        ),
        (
            "sdxl",
            json!([{"source": {"path": path("sdxl.safetensors")}}]),
            "loras[0]",
            "invalid_input",
            "not a FLUX LoRA",
        ),
        (
            "second",
            json!([{"source": {"path": model.join(loras::FILES[1]).to_str().unwrap()}}, {"source": {"path": path("sdxl.safetensors")}}]),
            "loras[1]",
            "invalid_input",
            "Stable Diffusion",
        ),
        (
            "te",
            json!([{"source": {"path": path("with-te.safetensors")}}]),
            "loras[0]",
            "invalid_input",
            "text-encoder",
        ),
        (
            "huge",
            json!([{"source": {"path": path("huge.safetensors")}}]),
            "loras[0].source.path",
            "input_too_large",
            "",
        ),
        (
            "scale",
            json!([{"source": {"path": path("wide.safetensors")}, "scale": 3.0}]),
            "loras[0].scale",
            "invalid_input",
            "from -2 to 2",
        ),
        (
            "five",
            json!([{"source": {"path": "a"}}, {"source": {"path": "a"}}, {"source": {"path": "a"}}, {"source": {"path": "a"}}, {"source": {"path": "a"}}]),
            "loras",
            "invalid_input",
            "at most 4",
        ),
        (
            "two-sources",
            json!([{"source": {"path": "a", "url": "https://example.com/x"}}]),
            "loras[0].source",
            "invalid_input",
            "exactly one",
        ),
    ];
    for (id, loras_json, field, code, says) in cases {
        let outcome = w.handle(JobRequest::new(job(id, loras_json), id)).await;
        let e = outcome.error.unwrap_or_else(|| panic!("{id} should fail"));
        assert_eq!(
            (e.code.as_str(), e.field.as_deref()),
            (code, Some(field)),
            "{id}: {e:?}"
        );
        assert!(e.message.contains(says), "{id}: {}", e.message);
        let next = w
            .handle(JobRequest::new(
                job(&format!("{id}-next"), json!([])),
                format!("{id}-n"),
            ))
            .await;
        assert!(
            next.succeeded(),
            "{id}: the worker serves the next job: {next:?}"
        );
        assert_eq!(
            bytes(&format!("{id}-next")),
            reference,
            "{id}: the next job has clean weights"
        );
    }
    let skipped = w
        .handle(JobRequest::new(
            job(
                "te-skip",
                json!([{"source": {"path": path("with-te.safetensors")}, "text_encoder": "skip"}]),
            ),
            "te-skip",
        ))
        .await;
    assert!(
        skipped.succeeded(),
        "text_encoder skip uses the transformer part: {skipped:?}"
    );
}

/// A hub LoRA that cannot be fetched is named as the job gave it (`loras[0].source.hf`), not by
/// the URL merchgen built for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_lora_that_cannot_be_fetched_names_its_hf_field() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 23, TinyLayout::Folder).unwrap();
    let server = TestServer::script(vec![Reply::status(404)]).await;
    let event = dir.path().join("job.json");
    let hub = json!([{"source": {"hf": "owner/repo/lora.safetensors"}}]);
    std::fs::write(&event, job("hf-404", hub).to_string()).unwrap();
    let mut cmd = support::binary::on_tiny_model(&model);
    cmd.args(["invoke", event.to_str().unwrap(), "--out"])
        .arg(dir.path().join("out"))
        .env("HF_ENDPOINT", server.url(""))
        .env("MERCHGEN_FETCH_ALLOW", "127.0.0.0/8")
        .env("MERCHGEN_LORA_CACHE", dir.path().join("cache"));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    let error = &outcome["error"];
    assert_eq!(error["field"], "loras[0].source.hf", "{outcome}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("loras[0].source.hf:")),
        "{outcome}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "fetched once");
    assert_eq!(
        requests[0].path,
        "/owner/repo/resolve/main/lora.safetensors"
    );
}
