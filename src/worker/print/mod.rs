//! The print stage of the pipeline: a job's `print` deliverables (vector SVG, die-cut sticker,
//! separations) for every variation. `plan` resolves the print area before any GPU work
//! (product or inches, a sticker border that fits) and sizes the work for the pixel budget;
//! `make_and_store` makes each deliverable on the blocking pool (`make.rs`), stores it under
//! `{id}/print/{i}/{kind}/…` and times each kind. Hard alpha for print files lives with them
//! (`mockups.rs`).

mod make;

use crate::error::{ErrorCode, JobError};
use crate::job::outcome::{PrintOutput, Timings};
use crate::job::print::{PrintArea, ValidPrint};
use crate::job::spec::FitMode;
use crate::job::ValidJob;
use crate::mockup::{Fit, MockupLibrary};
use crate::output::{keys, OutputSink};
use crate::prepress;
use image::RgbaImage;
use std::sync::Arc;
use std::time::Instant;

/// The deliverables of a job, on a resolved print area.
#[derive(Debug, Clone)]
pub(super) struct PrintPlan {
    pub spec: ValidPrint,
    /// The print area in pixels at `dpi`.
    pub area: (u32, u32),
    pub dpi: u32,
    pub fit: Fit,
}

/// Resolve the job's print area and check what can be checked before the design exists.
/// None when the job asks for no deliverable (hard alpha alone is the print files' business).
pub(super) fn plan(library: &MockupLibrary, job: &ValidJob) -> Result<Option<PrintPlan>, JobError> {
    let Some(spec) = job.print.as_ref().filter(|p| p.has_deliverables()) else {
        return Ok(None);
    };
    let dpi = job.output.print_dpi;
    let area = match &spec.area {
        PrintArea::Product(product) => library
            .template(product)
            .ok_or_else(|| {
                JobError::invalid(
                    "print.product",
                    format!(
                        "unknown product '{product}'; available: {}",
                        library.products().join(", ")
                    ),
                )
            })?
            .print_size_px(dpi),
        PrintArea::Inches(w, h) => (
            (w * f64::from(dpi)).round() as u32,
            (h * f64::from(dpi)).round() as u32,
        ),
    };
    if let Some(s) = &spec.sticker {
        let margin = sticker_margin_px(s, dpi);
        if 2 * margin + 8 > area.0.min(area.1) {
            let inches = |px: u32| f64::from(px) / f64::from(dpi);
            return Err(JobError::invalid(
                "print.sticker.border_mm",
                format!(
                    "a border of {} mm with {} mm bleed does not fit a print area of {:.2} x \
                     {:.2} in: choose a smaller border or a larger area",
                    s.border_mm,
                    s.bleed_mm,
                    inches(area.0),
                    inches(area.1)
                ),
            ));
        }
    }
    let fit = match job.mockups.as_ref().map(|m| m.fit).unwrap_or_default() {
        FitMode::Fit => Fit::Fit,
        FitMode::Cover => Fit::Cover,
    };
    Ok(Some(PrintPlan {
        spec: spec.clone(),
        area,
        dpi,
        fit,
    }))
}

/// Pixels between a sticker's silhouette and the edge of its bleed.
fn sticker_margin_px(s: &crate::job::print::ValidSticker, dpi: u32) -> u32 {
    prepress::mm_to_px(s.border_mm + s.bleed_mm, dpi).ceil() as u32 + 1
}

impl PrintPlan {
    /// Output pixels of one variation's deliverables, and the field behind the largest.
    pub(super) fn pixels_per_design(&self) -> (u64, &'static str) {
        let area = u64::from(self.area.0) * u64::from(self.area.1);
        let mut kinds: Vec<(u64, &'static str)> = Vec::new();
        if let Some(v) = &self.spec.vector {
            let side = u64::from(make::detail(v.detail).trace_side());
            kinds.push(((side * side).min(area), "print.vector"));
        }
        if self.spec.sticker.is_some() {
            kinds.push((area, "print.sticker"));
        }
        if let Some(s) = &self.spec.separations {
            let inks = match &s.inks {
                crate::job::print::ValidInks::Count(n) => u64::from(*n),
                crate::job::print::ValidInks::Given(c) => c.len() as u64,
            };
            // One film per ink, the underbase and the preview.
            let files = inks + 1 + u64::from(s.underbase_choke_px.is_some());
            kinds.push((files * area, "print.separations"));
        }
        let total = kinds.iter().map(|(px, _)| px).sum();
        let field = kinds
            .iter()
            .max_by_key(|(px, _)| *px)
            .map_or("print", |(_, f)| *f);
        (total, field)
    }
}

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
    for kind in make::Kind::ALL {
        if !kind.asked(&plan.spec) {
            continue;
        }
        let t = Instant::now();
        for (i, design) in designs.iter().enumerate() {
            let (shared, design) = (plan.clone(), design.clone());
            let files = tokio::task::spawn_blocking(move || make::make(kind, &shared, &design))
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
