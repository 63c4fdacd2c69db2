//! A diffusers folder as a model source, end to end without Python: the tiny model written in
//! the diffusers layout (diffusers names, sharded transformer, dense T5) loads and generates
//! exactly the images of the folder layout's dense BFL files with the same weights, for
//! text-to-image and image-to-image; its config files set the model's facts; missing files are named.

use merchgen::engine::files::hub::{self, HubSettings};
use merchgen::engine::files::manifest::Schedule;
use merchgen::engine::flux::weights::WeightsMode;
use merchgen::engine::flux::{FluxPipeline, LoadOptions};
use merchgen::engine::tiny::{self, TinyLayout, TINY_MANIFEST_DENSE};
use merchgen::engine::ImageFit;
use merchgen::engine::{GenerateRequest, Generator, InitImage};
use std::path::Path;
use std::sync::atomic::AtomicBool;

fn offline(dir: &Path) -> HubSettings {
    HubSettings {
        cache_dir: dir.to_owned(),
        offline: true,
        token: None,
    }
}

fn load(model: &Path) -> FluxPipeline {
    let resolved = hub::resolve(model.to_str().unwrap(), &offline(model), false).expect("resolves");
    let opts = LoadOptions {
        weights: WeightsMode::Auto,
        max_batch: 2,
    };
    FluxPipeline::load(&resolved, &candle_core::Device::Cpu, &opts).expect("loads")
}

fn request(init: Option<InitImage>, dump: Option<&Path>) -> GenerateRequest {
    GenerateRequest {
        prompt: "a corgi astronaut, bold outlines".into(),
        width: 64,
        height: 48,
        steps: 3,
        guidance: 0.0,
        seed: 4,
        num_images: 2,
        max_sequence_length: 24,
        init,
        noise: None,
        dump_latents: dump.map(Path::to_owned),
        max_batch: None,
        true_cfg: None,
        loras: Vec::new(),
    }
}

fn photo() -> image::RgbaImage {
    image::RgbaImage::from_fn(80, 60, |x, y| {
        image::Rgba([(x * 3) as u8, (y * 4) as u8, 90, 255])
    })
}

fn run(p: &mut FluxPipeline, req: &GenerateRequest) -> Vec<Vec<u8>> {
    let out = p
        .generate(req, &AtomicBool::new(false), &mut |_, _| {})
        .expect("generates");
    out.images.into_iter().map(|g| g.image.into_raw()).collect()
}

#[test]
fn diffusers_layout_generates_the_images_of_the_bfl_layout() {
    let dir = tempfile::tempdir().unwrap();
    let bfl = tiny::write(&dir.path().join("bfl"), 31, TinyLayout::Folder).unwrap();
    let diffusers = tiny::write(&dir.path().join("diffusers"), 31, TinyLayout::Diffusers).unwrap();
    assert!(diffusers
        .join("transformer/diffusion_pytorch_model.safetensors.index.json")
        .is_file());
    assert!(
        !diffusers.join(".tiny-bfl").exists(),
        "scratch copy removed"
    );

    let mut a = load(&bfl.join(TINY_MANIFEST_DENSE));
    let mut b = load(&diffusers);
    assert_eq!(a.load_report().info.weights, "f32-from-f32");
    assert_eq!(b.load_report().info.weights, "f32-from-f32");
    assert!(
        b.load_report().info.preset.starts_with("diffusers:"),
        "{}",
        b.load_report().info.preset
    );
    assert_eq!(
        b.load_report().defaults.max_sequence_length,
        256,
        "from tokenizer_2/tokenizer_config.json"
    );
    assert_eq!(
        (
            b.load_report().defaults.steps,
            b.load_report().defaults.guidance
        ),
        (4, 0.0)
    );

    let (la, lb) = (
        dir.path().join("a.safetensors"),
        dir.path().join("b.safetensors"),
    );
    let txt_a = run(&mut a, &request(None, Some(&la)));
    let txt_b = run(&mut b, &request(None, Some(&lb)));
    assert_eq!(txt_a, txt_b, "text-to-image: same pixels");
    assert_ne!(txt_a[0], txt_a[1]);
    let latents = candle_core::safetensors::load(&lb, &candle_core::Device::Cpu).unwrap();
    assert_eq!(
        latents["latents"].dims(),
        [2, 16, 6, 8],
        "final latents (n, 16, h/8, w/8)"
    );
    assert_eq!(
        std::fs::read(&la).unwrap(),
        std::fs::read(&lb).unwrap(),
        "same latents"
    );

    let init = || {
        Some(InitImage {
            image: photo(),
            strength: 0.7,
            fit: ImageFit::Cover,
            edit: false,
        })
    };
    assert_eq!(
        run(&mut a, &request(init(), None)),
        run(&mut b, &request(init(), None)),
        "image-to-image: same pixels"
    );
}

#[test]
fn diffusers_folder_configs_set_facts_and_missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let folder = tiny::write(dir.path(), 32, TinyLayout::Diffusers).unwrap();
    let sched = folder.join("scheduler/scheduler_config.json");
    std::fs::write(
        &sched,
        r#"{"shift": 3.0, "use_dynamic_shifting": true, "base_shift": 0.5, "max_shift": 1.15}"#,
    )
    .unwrap();
    let m = hub::resolve(folder.to_str().unwrap(), &offline(dir.path()), false).unwrap();
    assert_eq!(m.manifest.flux.schedule, Schedule::Dev);
    assert_eq!(m.manifest.flux.axes_dim, vec![8, 28, 28], "axes_dims_rope");
    assert!(
        m.total_bytes()
            > std::fs::metadata(m.path(merchgen::engine::files::manifest::Role::Vae))
                .unwrap()
                .len(),
        "shards counted"
    );
    std::fs::write(&sched, r#"{"shift": 3.0, "use_dynamic_shifting": false}"#).unwrap();
    let m = hub::resolve(folder.to_str().unwrap(), &offline(dir.path()), false).unwrap();
    assert_eq!(m.manifest.flux.schedule, Schedule::Shifted { shift: 3.0 });

    std::fs::remove_file(folder.join("tokenizer/tokenizer.json")).unwrap();
    let err = hub::resolve(folder.to_str().unwrap(), &offline(dir.path()), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tokenizer/tokenizer.json") && err.contains("vocab.json"),
        "{err}"
    );
}
