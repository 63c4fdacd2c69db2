//! The FLUX engine on the tiny random-weight model written in the real formats: shapes,
//! determinism, both weight modes, both quant types, and missing files.

use merchgen::engine::files::hub::{self, HubSettings};
use merchgen::engine::flux::weights::WeightsMode;
use merchgen::engine::flux::FluxPipeline;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::engine::{GenerateRequest, Generator};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn offline(dir: &Path) -> HubSettings {
    HubSettings {
        cache_dir: dir.to_owned(),
        offline: true,
        token: None,
    }
}

fn request(seed: u64, n: u32) -> GenerateRequest {
    GenerateRequest {
        prompt: "a corgi astronaut, bold outlines".into(),
        width: 64,
        height: 64,
        steps: 2,
        guidance: 0.0,
        seed,
        num_images: n,
        max_sequence_length: 32,
        init: None,
        noise: None,
        dump_latents: None,
        max_batch: None,
        true_cfg: None,
        loras: Vec::new(),
    }
}

use crate::support::workers::pipeline as load;

fn generate(p: &mut FluxPipeline, req: &GenerateRequest) -> Vec<image::RgbaImage> {
    let cancel = AtomicBool::new(false);
    let mut steps = 0;
    let out = p
        .generate(req, &cancel, &mut |_, _| steps += 1)
        .expect("generates");
    // One callback per denoising step of every batch (quantized mode batches one image).
    assert!(
        steps >= req.steps && steps % req.steps == 0,
        "{steps} steps reported"
    );
    assert_eq!(out.timings.step_ms.len(), steps as usize);
    out.images.into_iter().map(|g| g.image).collect()
}

#[test]
fn tiny_folder_q8_generates_deterministic_images() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 1, TinyLayout::Folder).unwrap();
    let hub = offline(dir.path());
    let mut p = load(folder.to_str().unwrap(), &hub, WeightsMode::Quantized);
    assert_eq!(p.load_report().info.weights, "q8_0");
    let a = generate(&mut p, &request(42, 2));
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].dimensions(), (64, 64));
    let b = generate(&mut p, &request(42, 2));
    assert_eq!(a[0].as_raw(), b[0].as_raw(), "same seed, same image");
    assert_ne!(a[0].as_raw(), a[1].as_raw(), "variations differ");
    let c = generate(&mut p, &request(43, 1));
    assert_ne!(
        a[0].as_raw(),
        c[0].as_raw(),
        "different seed, different image"
    );
}

#[test]
fn tiny_cache_layout_q4k_and_dense_mode_agree_with_quantized() {
    let dir = tempfile::tempdir().unwrap();
    tiny::write(dir.path(), 2, TinyLayout::Cache).unwrap();
    let hub = offline(dir.path());
    let mut k = load("tiny-flux-q4k", &hub, WeightsMode::Quantized);
    assert!(
        k.load_report().info.weights.starts_with("q4"),
        "{}",
        k.load_report().info.weights
    );
    assert_eq!(generate(&mut k, &request(5, 1))[0].dimensions(), (64, 64));

    let mut q = load("tiny-flux", &hub, WeightsMode::Quantized);
    let mut d = load("tiny-flux", &hub, WeightsMode::Bf16);
    assert_eq!(d.load_report().info.weights, "f32-from-q8_0");
    let iq = generate(&mut q, &request(9, 1)).remove(0);
    let id = generate(&mut d, &request(9, 1)).remove(0);
    let mean_abs: f64 = iq
        .as_raw()
        .iter()
        .zip(id.as_raw())
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
        .sum::<f64>()
        / iq.as_raw().len() as f64;
    // Q8_0 matmuls also quantize activations to 8 bits; dense f32 does not. Stated tolerance:
    // a mean absolute difference under 4 levels of 255.
    assert!(
        mean_abs < 4.0,
        "dense vs quantized mean abs diff {mean_abs}"
    );
}

#[test]
fn missing_model_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 3, TinyLayout::Folder).unwrap();
    std::fs::remove_file(folder.join("t5/model-q8_0.gguf")).unwrap();
    let err = hub::resolve(folder.to_str().unwrap(), &offline(dir.path()), false).unwrap_err();
    assert!(err.to_string().contains("t5/model-q8_0.gguf"), "{err}");
}

/// `models verify` hashes every file against the hub's metadata kept in the cache (the blob
/// names hf-hub gives LFS files), so a corrupted file of the right size and a valid header is
/// caught.
#[test]
fn models_verify_checks_sha256_against_the_hub_cache_and_catches_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let merchgen = crate::support::binary::offline;
    let made = merchgen()
        .args(["models", "tiny", "--layout", "cache", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let snapshots = dir.path().join("models--merchgen--tiny-flux/snapshots");
    let snapshot = std::fs::read_dir(&snapshots)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let verify = || {
        let out = merchgen()
            .args(["models", "verify"])
            .env("MERCHGEN_MODEL", "tiny-flux")
            .env("HF_HUB_CACHE", dir.path())
            .env("HF_HUB_OFFLINE", "1")
            .env(
                "MERCHGEN_MATTING_MODEL",
                snapshot.join("matting/u2netp.pth"),
            )
            .env(
                "MERCHGEN_UPSCALE_MODEL",
                snapshot.join("upscale/RealESRGAN_x4plus.pth"),
            )
            .env(
                "MERCHGEN_UPSCALE_X2_MODEL",
                snapshot.join("upscale/RealESRGAN_x2plus.pth"),
            )
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = verify();
    assert!(ok, "{text}");
    assert!(
        text.contains("8 of 8 files match the hub's SHA-256"),
        "{text}"
    );
    assert!(text.contains("from hub commit"), "{text}");

    // Flip the last byte of the VAE: same size, header intact.
    let vae = std::fs::canonicalize(snapshot.join("ae.safetensors")).unwrap();
    assert!(vae.starts_with(
        std::fs::canonicalize(dir.path())
            .unwrap()
            .join("models--merchgen--tiny-flux/blobs")
    ));
    let mut bytes = std::fs::read(&vae).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&vae, bytes).unwrap();
    let (ok, text) = verify();
    assert!(!ok, "{text}");
    assert!(
        text.contains("not what the hub published") && text.contains("ae.safetensors"),
        "{text}"
    );
}

/// The warm-up pass after loading (txt2img, then img2img, at 64x64 in one step) runs, is
/// reported, and leaves no trace in what a job gets: the next job's images equal those of a
/// pipeline that never warmed up, in both weight modes. Through `app::start_engine` it runs
/// before the engine reports ready and counts as no job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_pass_runs_once_and_changes_no_job() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 23, TinyLayout::Folder).unwrap();
    let model = folder.to_str().unwrap();
    let hub = offline(dir.path());
    for weights in [WeightsMode::Quantized, WeightsMode::Bf16] {
        let mut warm = load(model, &hub, weights);
        assert_eq!(warm.load_report().warm_up_ms, None);
        let ms = warm.warm_up().expect("warm-up runs");
        assert_eq!(warm.load_report().warm_up_ms, Some(ms));
        let mut cold = load(model, &hub, weights);
        let req = request(5, 2);
        assert!(
            generate(&mut warm, &req) == generate(&mut cold, &req),
            "{weights:?}: a job after the warm-up differs from one without"
        );
    }
    let cli = crate::support::workers::cli(&folder, &["--warm-up", "on"]);
    let engine = merchgen::app::start_engine(&cli.config).await.unwrap();
    assert!(engine.load_report().warm_up_ms.is_some(), "warm-up ran");
    assert_eq!(engine.generations(), 0, "the warm-up is not a job");
    let off = crate::support::workers::cli(&folder, &[]);
    let engine = merchgen::app::start_engine(&off.config).await.unwrap();
    assert_eq!(
        engine.load_report().warm_up_ms,
        None,
        "`auto` skips it on the CPU"
    );
}
