//! Storing the job's images: encode each design (PNG, JPEG or WebP, in parallel on blocking
//! threads), then put it under `{id}/images/{i}.{ext}` with its size, hash and seed.

use crate::encode::{self, EncodeOptions};
use crate::error::{ErrorCode, JobError};
use crate::job::outcome::{ImageOutput, Timings};
use crate::job::ValidJob;
use crate::output::{keys, OutputSink};
use image::RgbaImage;
use sha2::{Digest, Sha256};
use std::time::Instant;

/// Encode and store every design; their seeds go with them (none for a given design).
pub(super) async fn store(
    job: &ValidJob,
    designs: &[(RgbaImage, Option<u64>)],
    sink: &dyn OutputSink,
    timings: &mut Timings,
) -> Result<Vec<ImageOutput>, JobError> {
    let opts = EncodeOptions {
        format: job.output.format,
        jpeg_quality: job.output.jpeg_quality,
        dpi: None,
    };
    let images: Vec<RgbaImage> = designs.iter().map(|(img, _)| img.clone()).collect();
    let t = Instant::now();
    let encoded = encode_all(images, opts).await?;
    timings.encode_images = Some(t.elapsed().as_millis() as u64);
    let t = Instant::now();
    let mut out = Vec::with_capacity(encoded.len());
    for (i, (bytes, (img, seed))) in encoded.into_iter().zip(designs).enumerate() {
        let key = keys::image(&job.id, i as u32, opts.format.extension());
        let len = bytes.len() as u64;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let stored = sink.put(&key, bytes, opts.format.content_type()).await?;
        out.push(ImageOutput {
            url: stored.url,
            key: stored.key,
            seed: seed.unwrap_or_default(),
            width: img.width(),
            height: img.height(),
            format: opts.format,
            bytes: len,
            sha256,
            base64: stored.base64,
        });
    }
    timings.upload = Some(t.elapsed().as_millis() as u64);
    Ok(out)
}

/// Encode images on blocking threads (CPU work).
pub(super) async fn encode_all(
    images: Vec<RgbaImage>,
    opts: EncodeOptions,
) -> Result<Vec<Vec<u8>>, JobError> {
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        images
            .par_iter()
            .map(|img| encode::encode(img, &opts))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| JobError::internal(format!("encoder task failed: {e}")))?
    .map_err(|e| JobError::new(ErrorCode::Internal, format!("image encoding failed: {e}")))
}
