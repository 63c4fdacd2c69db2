//! The print stage of the pipeline: a job's `print` deliverables (vector SVG, die-cut sticker,
//! separations) for every variation. `plan` resolves the print area before any GPU work
//! (product or inches, a sticker border that fits) and sizes the work for the pixel budget;
//! `make_and_store` makes each deliverable on the blocking pool (`make.rs`), stores it under
//! `{id}/print/{i}/{kind}/…` and times each kind. Hard alpha for print files lives with them
//! (`mockups.rs`).

mod make;
mod plan;

pub(crate) use make::{make, Kind};
pub(crate) use plan::{plan, PrintPlan};

use crate::error::{ErrorCode, JobError};
use crate::job::outcome::{PrintOutput, Timings};
use crate::job::ValidJob;
use crate::output::{keys, OutputSink};
use crate::prepress;
use image::RgbaImage;
use std::sync::Arc;
use std::time::Instant;

/// Make every deliverable of every variation and store it.
pub(super) async fn make_and_store(
    job: &ValidJob,
    plan: &PrintPlan,
    designs: &[RgbaImage],
    sink: &dyn OutputSink,
    timings: &mut Timings,
) -> Result<Vec<PrintOutput>, JobError> {
    let mut out = Vec::new();
    let plan = Arc::new(plan.clone());
    // One copy of the designs for every blocking task (each kind reads each of them).
    let shared_designs = Arc::new(designs.to_vec());
    for kind in make::Kind::ALL {
        if !kind.asked(&plan.spec) {
            continue;
        }
        let t = Instant::now();
        for i in 0..designs.len() {
            let (shared, all) = (plan.clone(), shared_designs.clone());
            let files = tokio::task::spawn_blocking(move || make::make(kind, &shared, &all[i]))
                .await
                .map_err(|e| {
                    JobError::new(ErrorCode::MockupFailed, format!("print task failed: {e}"))
                })??;
            for f in files {
                out.push(store(job, i as u32, kind, f, &plan, sink).await?);
            }
        }
        let ms = t.elapsed().as_millis() as u64;
        let stage = match kind {
            make::Kind::Vector => &mut timings.print_vector,
            make::Kind::Sticker => &mut timings.print_sticker,
            make::Kind::Separations => &mut timings.print_separations,
        };
        *stage = Some(ms);
        tracing::info!(
            stage = kind.stage(),
            variations = designs.len(),
            elapsed_ms = ms,
            "stage finished"
        );
    }
    Ok(out)
}

async fn store(
    job: &ValidJob,
    image: u32,
    kind: make::Kind,
    f: make::File,
    plan: &PrintPlan,
    sink: &dyn OutputSink,
) -> Result<PrintOutput, JobError> {
    let key = keys::deliverable(&job.id, image, kind.folder(), &f.name);
    let bytes = f.bytes.len() as u64;
    let stored = sink.put(&key, f.bytes, f.content_type).await?;
    let mm = |px: u32| f64::from(px) * 25.4 / f64::from(plan.dpi);
    Ok(PrintOutput {
        image,
        kind: f.kind.to_owned(),
        url: stored.url,
        key: stored.key,
        content_type: f.content_type.to_owned(),
        bytes,
        width: f.size.0,
        height: f.size.1,
        width_mm: (mm(f.size.0) * 100.0).round() / 100.0,
        height_mm: (mm(f.size.1) * 100.0).round() / 100.0,
        ink: f.ink.map(prepress::hex),
        coverage: f.coverage.map(|c| (c * 1e6).round() / 1e6),
        colors: f.colors.into_iter().map(prepress::hex).collect(),
        base64: stored.base64,
    })
}
