//! Image-to-image on the tiny model: strength 1 is text-to-image, strength near 0 is the VAE
//! round trip, variations differ, sizes and orientation follow the request, bad photos fail alone.

use base64::Engine as _;
use merchgen::engine::files::hub;
use merchgen::engine::flux::weights::WeightsMode;
use merchgen::engine::flux::{FluxPipeline, LoadOptions};
use merchgen::engine::tiny::{self, TinyLayout};
use merchgen::engine::ImageFit;
use merchgen::engine::{GenerateRequest, Generator, InitImage};
use std::sync::atomic::AtomicBool;

fn pipeline(dir: &std::path::Path) -> FluxPipeline {
    let folder = tiny::write(dir, 21, TinyLayout::Folder).unwrap();
    let hub = hub::HubSettings {
        cache_dir: dir.to_owned(),
        offline: true,
        token: None,
    };
    let model = hub::resolve(folder.to_str().unwrap(), &hub, false).unwrap();
    FluxPipeline::load(
        &model,
        &candle_core::Device::Cpu,
        &LoadOptions {
            weights: WeightsMode::Bf16,
            max_batch: 4,
        },
    )
    .unwrap()
}

/// A photo-like test image: gradients and a bright square, not square itself.
fn photo(w: u32, h: u32) -> image::RgbaImage {
    image::RgbaImage::from_fn(w, h, |x, y| {
        let inside = x > w / 3 && x < w / 2 && y > h / 4 && y < h / 2;
        if inside {
            image::Rgba([250, 240, 30, 255])
        } else {
            image::Rgba([(x * 255 / w) as u8, (y * 255 / h) as u8, 120, 255])
        }
    })
}

fn request(steps: u32, n: u32, init: Option<InitImage>) -> GenerateRequest {
    GenerateRequest {
        prompt: "a corgi astronaut".into(),
        width: 64,
        height: 64,
        steps,
        guidance: 0.0,
        seed: 77,
        num_images: n,
        max_sequence_length: 16,
        init,
        noise: None,
        dump_latents: None,
        max_batch: None,
        true_cfg: None,
        loras: Vec::new(),
    }
}

fn run(p: &mut FluxPipeline, req: &GenerateRequest) -> Vec<image::RgbaImage> {
    let out = p
        .generate(req, &AtomicBool::new(false), &mut |_, _| {})
        .unwrap();
    out.images.into_iter().map(|g| g.image).collect()
}

fn mean_abs(a: &image::RgbaImage, b: &image::RgbaImage) -> f64 {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
        .sum::<f64>()
        / a.as_raw().len() as f64
}

#[test]
fn img2img_strength_one_equals_txt2img_and_variations_differ() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(dir.path());
    let init = InitImage {
        image: photo(96, 80),
        strength: 1.0,
        fit: ImageFit::Cover,
        edit: false,
    };
    let i2i = run(&mut p, &request(4, 2, Some(init)));
    let t2i = run(&mut p, &request(4, 2, None));
    assert_eq!(
        i2i[0].as_raw(),
        t2i[0].as_raw(),
        "strength 1 starts from pure noise, as text-to-image"
    );
    assert_ne!(
        i2i[0].as_raw(),
        i2i[1].as_raw(),
        "num_images gives distinct variations"
    );
}

#[test]
fn img2img_strength_near_zero_is_the_vae_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(dir.path());
    let src = photo(64, 64);
    let round_trip = p.vae_round_trip(&src, 77).unwrap();
    // 50 steps at strength 0.02 keep one step from sigma 0.02 (diffusers' t_start arithmetic).
    let init = InitImage {
        image: src.clone(),
        strength: 0.02,
        fit: ImageFit::Cover,
        edit: false,
    };
    let out = run(&mut p, &request(50, 1, Some(init))).remove(0);
    let near = mean_abs(&out, &round_trip);
    let far = mean_abs(&run(&mut p, &request(4, 1, None))[0], &round_trip);
    // The one kept step moves the latents by 0.02 x (noise - prediction) of a random model.
    assert!(
        near < 6.0,
        "strength 0.02 stays within 6/255 of the VAE round trip: {near}"
    );
    assert!(
        far > 4.0 * near,
        "text-to-image is far from it: {far} vs {near}"
    );
}

#[test]
fn img2img_non_square_output_has_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline(dir.path());
    let mut req = request(
        2,
        1,
        Some(InitImage {
            image: photo(50, 120),
            strength: 0.75,
            fit: ImageFit::Contain,
            edit: false,
        }),
    );
    req.width = 96;
    req.height = 64;
    assert_eq!(run(&mut p, &req)[0].dimensions(), (96, 64));
}

mod through_worker {
    use super::*;
    use merchgen::app::Door;
    use merchgen::worker::JobRequest;
    use serde_json::json;

    fn png(img: &image::RgbaImage) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    /// A JPEG whose pixels are stored landscape with EXIF orientation 6 (rotate 90° clockwise).
    fn exif_rotated_jpeg() -> Vec<u8> {
        let img = image::RgbImage::from_fn(80, 40, |x, _| {
            if x < 40 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .encode_image(&img)
            .unwrap();
        // APP1 Exif segment: II*\0, IFD0 with one entry: Orientation (0x0112) SHORT 1 = 6.
        let tiff: [u8; 26] = [
            b'I', b'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0,
            0,
        ];
        let mut app1 = vec![0xFF, 0xE1];
        let len = (2 + 6 + tiff.len()) as u16;
        app1.extend(len.to_be_bytes());
        app1.extend(b"Exif\0\0");
        app1.extend(tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend(app1);
        out.extend(&jpeg[2..]);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn img2img_jobs_bad_photos_fail_alone_and_exif_photo_works() {
        let dir = tempfile::tempdir().unwrap();
        let folder = tiny::write(&dir.path().join("m"), 22, TinyLayout::Folder).unwrap();
        let cli = crate::support::workers::cli(&folder, &[]);
        let out = dir.path().join("out");
        let worker =
            crate::support::workers::worker(&cli, Door::Invoke, out.to_str().unwrap()).await;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let good_png = png(&photo(64, 64));
        let huge = crate::support::images::png_header_only(20_000, 20_000);
        let bad: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "truncated png",
                good_png[..good_png.len() / 2].to_vec(),
                "input_fetch_failed|invalid_input",
            ),
            ("zero bytes", Vec::new(), "invalid_input|input_fetch_failed"),
            ("20000x20000 header", huge, "input_too_large"),
            (
                "not an image",
                b"hello, this is text".to_vec(),
                "invalid_input|input_fetch_failed",
            ),
            (
                "gif",
                b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(),
                "invalid_input|input_fetch_failed",
            ),
        ];
        for (name, bytes, codes) in bad {
            let job = json!({"prompt": "x", "width": 64, "height": 64, "image": {"base64": b64(&bytes)}, "strength": 0.5});
            let out = worker.handle(JobRequest::new(job, "bad")).await;
            let err = out.error.unwrap_or_else(|| panic!("{name} should fail"));
            assert!(
                codes.split('|').any(|c| c == err.code.as_str()),
                "{name}: {err:?}"
            );
            assert!(
                err.field
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("image"),
                "{name}: {err:?}"
            );
        }
        let job = json!({"prompt": "x", "width": 64, "height": 96, "image": {"base64": b64(&exif_rotated_jpeg())}, "strength": 0.75, "num_images": 2});
        let out = worker.handle(JobRequest::new(job, "good")).await;
        assert!(out.succeeded(), "{out:?}");
        assert_eq!(out.images.len(), 2);
        assert_eq!((out.images[0].width, out.images[0].height), (64, 96));
        assert!(out.timings_ms.unwrap().encode_image.is_some());
    }
}
