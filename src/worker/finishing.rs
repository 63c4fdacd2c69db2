//! The finishing stages of the pipeline, in order: background removal (the matting model on
//! the engine thread, or the model-free flat cut-out on a blocking thread), then upscaling on
//! the engine thread. Each stage has its own `timings_ms` entry and log line.

use crate::engine::finish::FinishOutput;
use crate::engine::{EngineError, FinishHandle};
use crate::error::{ErrorCode, JobError};
use crate::job::finishing::Finishing;
use crate::job::outcome::Timings;
use crate::job::spec::BackgroundMode;
use crate::mockup::cutout::{self, FlatCutout};
use image::RgbaImage;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Load the models the job's finishing needs before anything is generated, so a missing or
/// broken model fails the job at once (`matting_load` / `upscale_load` in the timings).
pub(super) async fn prepare(
    finisher: Option<&FinishHandle>,
    finishing: &Finishing,
    cancel: &Arc<AtomicBool>,
    timings: &mut Timings,
) -> Result<(), JobError> {
    if !finishing.needs_models() {
        return Ok(());
    }
    let finisher = finisher.ok_or_else(|| {
        JobError::new(
            ErrorCode::ModelUnavailable,
            "this worker runs no background-removal or upscaling model",
        )
    })?;
    let matting = finishing.background == BackgroundMode::Remove;
    match finisher
        .prepare(matting, finishing.upscale, cancel.clone())
        .await
    {
        Ok((matting_ms, upscale_ms)) => {
            timings.matting_load = matting_ms;
            timings.upscale_load = upscale_ms;
            Ok(())
        }
        Err(e) => {
            tracing::warn!(stage = "prepare", error = %e, "finishing models unavailable");
            Err(stage_error("model loading", e))
        }
    }
}

/// Run the job's finishing stages over its designs.
pub(super) async fn run(
    finisher: Option<&FinishHandle>,
    finishing: &Finishing,
    designs: Vec<RgbaImage>,
    cancel: &Arc<AtomicBool>,
    timings: &mut Timings,
) -> Result<Vec<RgbaImage>, JobError> {
    let mut designs = designs;
    match finishing.background {
        BackgroundMode::Keep => {}
        BackgroundMode::RemoveFlat => {
            let t = Instant::now();
            let count = designs.len();
            designs = tokio::task::spawn_blocking(move || {
                use rayon::prelude::*;
                designs
                    .par_iter()
                    .map(|d| cutout::remove_flat_background(d, &FlatCutout::default()))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| JobError::internal(format!("cut-out task failed: {e}")))?;
            let ms = t.elapsed().as_millis() as u64;
            timings.remove_flat = Some(ms);
            tracing::info!(
                stage = "remove_flat",
                images = count,
                elapsed_ms = ms,
                "stage finished"
            );
        }
        BackgroundMode::Remove => {
            let out =
                model_stage(finisher, "matting", |f| f.matte(designs, cancel.clone())).await?;
            timings.matting = Some(out.run_ms);
            timings.matting_load = timings.matting_load.or(out.load_ms);
            designs = out.images;
        }
    }
    if let Some(factor) = finishing.upscale {
        let sizes: Vec<(u32, u32)> = designs
            .iter()
            .map(|d| (d.width() * factor, d.height() * factor))
            .collect();
        let out = model_stage(finisher, "upscale", |f| {
            f.upscale(designs, factor, cancel.clone())
        })
        .await?;
        let t = Instant::now();
        designs = to_sizes(out.images, sizes).await?;
        timings.upscale = Some(out.run_ms + t.elapsed().as_millis() as u64);
        timings.upscale_load = timings.upscale_load.or(out.load_ms);
    }
    Ok(designs)
}

/// Each upscaled image at the size the job asked for: an x4 model standing in for a missing x2
/// one made them larger, so they are resampled (on a blocking thread).
async fn to_sizes(
    images: Vec<RgbaImage>,
    sizes: Vec<(u32, u32)>,
) -> Result<Vec<RgbaImage>, JobError> {
    if images.iter().zip(&sizes).all(|(i, s)| i.dimensions() == *s) {
        return Ok(images);
    }
    tokio::task::spawn_blocking(move || {
        images
            .into_iter()
            .zip(sizes)
            .map(|(img, (w, h))| match img.dimensions() == (w, h) {
                true => img,
                false => crate::mockup::resize_rgba(&img, w, h),
            })
            .collect()
    })
    .await
    .map_err(|e| JobError::internal(format!("resampling task failed: {e}")))
}

async fn model_stage<'a, F, Fut>(
    finisher: Option<&'a FinishHandle>,
    stage: &'static str,
    call: F,
) -> Result<FinishOutput, JobError>
where
    F: FnOnce(&'a FinishHandle) -> Fut,
    Fut: std::future::Future<Output = Result<FinishOutput, EngineError>>,
{
    let finisher = finisher.ok_or_else(|| {
        JobError::new(
            ErrorCode::ModelUnavailable,
            format!("this worker runs no {stage} model"),
        )
    })?;
    match call(finisher).await {
        Ok(out) => {
            tracing::info!(
                stage,
                images = out.images.len(),
                elapsed_ms = out.run_ms,
                load_ms = out.load_ms,
                model = %out.model,
                "stage finished"
            );
            Ok(out)
        }
        Err(e) => {
            tracing::warn!(stage, error = %e, "stage failed");
            Err(stage_error(stage, e))
        }
    }
}

/// Engine errors of a finishing stage at the job boundary: a failure says which stage.
fn stage_error(stage: &str, e: EngineError) -> JobError {
    match e {
        EngineError::Failed(_) | EngineError::Stopped => JobError::new(
            ErrorCode::GenerationFailed,
            format!("the {stage} stage failed"),
        ),
        other => other.into(),
    }
}
