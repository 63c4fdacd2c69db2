//! Producing a job's files: the checks before any GPU work (products and colours, the pixel
//! budget, memory admission), the design (generated, or a mockup-only job's fetched design),
//! finishing, the stored images and the mockups. The outcome it returns is not yet concluded
//! (`conclude.rs` stores `result.json` and sends the webhook).

use super::{admission, budget, finishing, images, mockups, print, JobRequest, Worker};
use crate::error::JobError;
use crate::job::finishing::Finishing;
use crate::job::outcome::{JobOutcome, Timings};
use crate::job::ValidJob;
use crate::output::OutputSink;
use image::RgbaImage;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// What the job will make besides its images, planned before any GPU work.
#[derive(Clone, Copy)]
struct Planned<'a> {
    renders: &'a [mockups::Render],
    print: Option<&'a print::PrintPlan>,
}

impl Worker {
    /// Generate (or fetch the design), finish, render mockups, store every file.
    pub(super) async fn produce(
        &self,
        job: &ValidJob,
        req: &JobRequest,
        sink: &dyn OutputSink,
    ) -> Result<JobOutcome, JobError> {
        let started = Instant::now();
        let mut timings = Timings {
            queued: Some(req.received.elapsed().as_millis() as u64),
            ..Timings::default()
        };
        let cold = self.cold.swap(false, Ordering::Relaxed);
        if let (true, Some(engine)) = (cold, &self.engine) {
            timings.load = Some(engine.load_report().load_ms);
        }
        let mut outcome = JobOutcome::started(job.id.clone());
        outcome.cold_start = cold;

        // Products, colours and the pixel budget are checked before any GPU work.
        let renders = match &job.mockups {
            Some(spec) => mockups::plan(&self.parts.mockups, spec)?,
            None => Vec::new(),
        };
        let print_plan = print::plan(&self.parts.mockups, job)?;
        let planned = Planned {
            renders: &renders,
            print: print_plan.as_ref(),
        };
        let designs = self
            .designs(job, req, planned, &mut outcome, &mut timings)
            .await?;
        // A mockup-only job stores its design too once finishing changed it (the cut-out).
        if job.generation.is_some() || job.finishing != Finishing::default() {
            outcome.images = images::store(job, &designs, sink, &mut timings).await?;
        }
        let images: Vec<RgbaImage> = designs.into_iter().map(|(img, _)| img).collect();
        if let Some(plan) = &print_plan {
            outcome.print = print::make_and_store(job, plan, &images, sink, &mut timings).await?;
        }
        if let Some(spec) = &job.mockups {
            let t = Instant::now();
            let rendered =
                mockups::render_and_store(&self.parts.mockups, job, spec, &renders, images, sink)
                    .await?;
            outcome.mockups = rendered.files;
            timings.print_alpha = rendered.hard_alpha_ms;
            let ms = t.elapsed().as_millis() as u64;
            timings.mockups = Some(ms);
            tracing::info!(
                stage = "mockups",
                files = outcome.mockups.len(),
                elapsed_ms = ms,
                "stage finished"
            );
        }
        timings.total = started.elapsed().as_millis() as u64 + timings.queued.unwrap_or(0);
        outcome.timings_ms = Some(timings);
        Ok(outcome)
    }

    /// The job's finished designs with their seeds: generated (after the budget, the memory
    /// admission and the finishing models' loading, so a job that cannot run fails before any
    /// GPU work), or a mockup-only job's design fetched; then cut out and upscaled.
    async fn designs(
        &self,
        job: &ValidJob,
        req: &JobRequest,
        planned: Planned<'_>,
        outcome: &mut JobOutcome,
        timings: &mut Timings,
    ) -> Result<Vec<(RgbaImage, Option<u64>)>, JobError> {
        // Memory admission, before any work: at most this many images at once.
        let mut max_batch = None;
        if let Some(gen) = &job.generation {
            self.check_budget(job, planned, gen.num_images, (gen.width, gen.height))?;
            self.check_not_oom_before(job)?;
            max_batch = admission::admit(self.engine.as_ref(), self.parts.device_memory_gb, gen)?;
        }
        let finisher = self.parts.finisher.as_ref();
        finishing::prepare(finisher, &job.finishing, &req.cancel, timings).await?;
        let (designs, seeds): (Vec<RgbaImage>, Vec<Option<u64>>) =
            match (&job.generation, &job.design) {
                (Some(gen), _) => {
                    let generated = self.generate(gen, max_batch, job, req, timings).await?;
                    outcome.seed = Some(gen.seed);
                    outcome.model = self.engine.as_ref().map(|e| (&e.load_report().info).into());
                    generated
                        .images
                        .into_iter()
                        .map(|g| (g.image, Some(g.seed)))
                        .unzip()
                }
                (None, Some(design)) => {
                    let t = Instant::now();
                    let image = self.parts.fetcher.fetch_image(design, "design").await?;
                    timings.fetch_inputs = Some(t.elapsed().as_millis() as u64);
                    self.check_budget(job, planned, 1, image.dimensions())?;
                    (vec![image], vec![None])
                }
                (None, None) => {
                    return Err(JobError::internal(
                        "validated job has neither prompt nor design",
                    ))
                }
            };
        let designs =
            finishing::run(finisher, &job.finishing, designs, &req.cancel, timings).await?;
        Ok(designs.into_iter().zip(seeds).collect())
    }

    /// The job's output pixels against the worker's budget (`design` is one image's size
    /// before upscaling).
    fn check_budget(
        &self,
        job: &ValidJob,
        planned: Planned<'_>,
        images: u32,
        design: (u32, u32),
    ) -> Result<(), JobError> {
        let factor = u64::from(job.finishing.upscale.unwrap_or(1));
        let n = u64::from(images);
        let (mockup_px, print_px) = match &job.mockups {
            Some(spec) => {
                let renders = planned.renders;
                mockups::pixels_per_design(&self.parts.mockups, renders, spec, job.output.print_dpi)
            }
            None => (0, 0),
        };
        let (deliverable_px, deliverable_field) = planned
            .print
            .map_or((0, "print"), print::PrintPlan::pixels_per_design);
        let pixels = budget::JobPixels {
            images: n * u64::from(design.0) * u64::from(design.1) * factor * factor,
            mockups: n * mockup_px,
            prints: n * print_px,
            deliverables: n * deliverable_px,
        };
        let fields = budget::BudgetFields {
            images: if job.finishing.upscale.is_some() {
                "upscale"
            } else {
                "num_images"
            },
            mockups: if job.mockups.as_ref().is_some_and(|m| m.size.is_some()) {
                "mockups.size"
            } else {
                "mockups.products"
            },
            prints: "output.print_dpi",
            deliverables: deliverable_field,
        };
        budget::check(pixels, self.parts.limits.max_job_pixels, fields)
    }
}
