//! FLUX.1 Kontext edits on the tiny Kontext model through the worker: `mode: edit` keeps the
//! photo as a reference (the image depends on it, and differs from image-to-image), an edit
//! without a size takes Kontext's resolution nearest the photo's aspect ratio, and the modes that
//! cannot run are refused with `invalid_input` naming the field.

use crate::support;

use base64::Engine;
use merchgen::app::Door;
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::worker::JobRequest;
use serde_json::json;

fn photo_b64(w: u32, h: u32, shade: u8) -> String {
    let img = image::RgbaImage::from_fn(w, h, |x, y| {
        image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, shade, 255])
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

fn edit_job(id: &str, photo: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut job = json!({"id": id, "prompt": "make it pop art", "num_inference_steps": 2,
        "seed": 4, "image": {"base64": photo}, "mode": "edit", "guidance_scale": 2.5});
    for (k, v) in extra.as_object().unwrap() {
        job[k] = v.clone();
    }
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kontext_edits_keep_the_photo_as_a_reference() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 31, TinyLayout::Folder).unwrap();
    let out = dir.path().join("out");
    let cli = support::workers::cli(
        &model.join(tiny::TINY_MANIFEST_KONTEXT),
        &["--max-side", "2048"],
    );
    let w = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
    let png = |id: &str| std::fs::read(out.join(format!("{id}/images/0.png"))).unwrap();
    let (a, b) = (photo_b64(96, 64, 40), photo_b64(96, 64, 220));
    let size = json!({"width": 64, "height": 64});
    for (id, photo) in [("edit-a", &a), ("edit-a2", &a), ("edit-b", &b)] {
        let o = w
            .handle(JobRequest::new(edit_job(id, photo, size.clone()), id))
            .await;
        assert!(o.succeeded(), "{id}: {o:?}");
        assert_eq!((o.images[0].width, o.images[0].height), (64, 64));
        assert!(
            o.timings_ms.unwrap().encode_image.is_some(),
            "{id}: the photo was encoded"
        );
    }
    assert_eq!(png("edit-a"), png("edit-a2"), "deterministic");
    assert_ne!(
        png("edit-a"),
        png("edit-b"),
        "the edit depends on the photo"
    );
    let i2i = json!({"id": "i2i", "prompt": "make it pop art", "num_inference_steps": 2, "seed": 4,
        "image": {"base64": a}, "mode": "img2img", "guidance_scale": 2.5, "width": 64, "height": 64});
    let o = w.handle(JobRequest::new(i2i, "i2i")).await;
    assert!(o.succeeded(), "{o:?}");
    assert_ne!(png("edit-a"), png("i2i"), "an edit is not image-to-image");
    // No size: Kontext's resolution nearest the photo's 3:2 (1248x832), at the one step.
    let o = w
        .handle(JobRequest::new(
            edit_job(
                "edit-sized",
                &photo_b64(120, 80, 90),
                json!({"num_inference_steps": 1}),
            ),
            "sized",
        ))
        .await;
    assert!(o.succeeded(), "{o:?}");
    assert_eq!((o.images[0].width, o.images[0].height), (1248, 832));
    // An edit has no strength.
    let o = w
        .handle(JobRequest::new(
            edit_job("edit-strength", &a, json!({"strength": 0.5})),
            "s",
        ))
        .await;
    let e = o.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.field.as_deref()),
        ("invalid_input", Some("strength"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_mode_needs_a_kontext_model_and_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 32, TinyLayout::Folder).unwrap();
    let out = dir.path().join("out");
    let cli = support::workers::cli(&model, &[]);
    let w = support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
    let o = w
        .handle(JobRequest::new(
            edit_job("on-schnell", &photo_b64(64, 64, 1), json!({})),
            "x",
        ))
        .await;
    let e = o.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.field.as_deref()),
        ("invalid_input", Some("mode"))
    );
    assert!(e.message.contains("Kontext"), "{}", e.message);
    let o = w
        .handle(JobRequest::new(
            json!({"id": "no-image", "prompt": "x", "mode": "edit"}),
            "y",
        ))
        .await;
    let e = o.error.unwrap();
    assert_eq!(
        (e.code.as_str(), e.field.as_deref()),
        ("invalid_input", Some("mode"))
    );
}
