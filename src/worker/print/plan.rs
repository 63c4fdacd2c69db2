//! The print stage's plan, made before any GPU work: the print area resolved (a product's, or
//! inches) at the job's DPI, a sticker border checked against it, and the pixels each
//! variation's deliverables will make (for the job's pixel budget).

use crate::error::JobError;
use crate::job::print::{PrintArea, ValidPrint};
use crate::job::spec::{DetailLevel, FitMode};
use crate::job::ValidJob;
use crate::mockup::{Fit, MockupLibrary};
use crate::prepress;

/// The deliverables of a job, on a resolved print area.
#[derive(Debug, Clone)]
pub(crate) struct PrintPlan {
    pub(crate) spec: ValidPrint,
    /// The print area in pixels at `dpi`.
    pub area: (u32, u32),
    pub dpi: u32,
    pub fit: Fit,
}

/// Resolve the job's print area and check what can be checked before the design exists.
/// None when the job asks for no deliverable (hard alpha alone is the print files' business).
pub(crate) fn plan(library: &MockupLibrary, job: &ValidJob) -> Result<Option<PrintPlan>, JobError> {
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
pub(super) fn sticker_margin_px(s: &crate::job::print::ValidSticker, dpi: u32) -> u32 {
    prepress::mm_to_px(s.border_mm + s.bleed_mm, dpi).ceil() as u32 + 1
}

/// The tracer's detail for a job's level.
pub(super) fn detail(level: DetailLevel) -> prepress::Detail {
    match level {
        DetailLevel::Low => prepress::Detail::Low,
        DetailLevel::Medium => prepress::Detail::Medium,
        DetailLevel::High => prepress::Detail::High,
    }
}

impl PrintPlan {
    /// Output pixels of one variation's deliverables, and the field behind the largest.
    pub(crate) fn pixels_per_design(&self) -> (u64, &'static str) {
        let area = u64::from(self.area.0) * u64::from(self.area.1);
        let mut kinds: Vec<(u64, &'static str)> = Vec::new();
        if let Some(v) = &self.spec.vector {
            let side = u64::from(detail(v.detail).trace_side());
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
