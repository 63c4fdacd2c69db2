//! The mockup stage of the pipeline: plan the requested products and colours against the
//! template library (repeats merged, errors naming the field, before any GPU work), check the
//! job's pixel budget, then render every (variation, product, colour) and print file on blocking
//! threads, encode and store them.
//!
//! Keys: a one-image job keeps `{id}/mockups/{product}-{color}.{ext}` and
//! `{id}/print/{product}.png`; a job with several images puts variation `i` under
//! `{id}/mockups/{i}/…` and `{id}/print/{i}/…` (`MockupOutput::image` says which).

use crate::encode::{self, EncodeOptions, OutputFormat};
use crate::error::{ErrorCode, JobError};
use crate::job::outcome::MockupOutput;
use crate::job::spec::FitMode;
use crate::job::{ValidJob, ValidMockups};
use crate::mockup::{self, Fit, MockupError, MockupLibrary, RenderOptions};
use crate::output::{keys, OutputSink};
use crate::prepress;
use image::RgbaImage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// One image to render per variation: a mockup of a product in a colour, or a print file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Render {
    pub product: String,
    pub color: String,
    pub print_file: bool,
}

/// Every render the job asks for, with products and colours checked (errors name the field)
/// and repeats merged (a product or colour named twice is rendered once).
pub(super) fn plan(library: &MockupLibrary, spec: &ValidMockups) -> Result<Vec<Render>, JobError> {
    let mut renders: Vec<Render> = Vec::new();
    for (i, product) in spec.products.iter().enumerate() {
        let template = library.template(product).ok_or_else(|| {
            JobError::invalid(
                format!("mockups.products[{i}]"),
                format!(
                    "unknown product '{product}'; available: {}",
                    library.products().join(", ")
                ),
            )
        })?;
        let available = template.colors();
        let colors: Vec<String> = if spec.colors.is_empty() {
            available.iter().map(|c| (*c).to_owned()).collect()
        } else {
            spec.colors.clone()
        };
        for (j, color) in colors.iter().enumerate() {
            if !available.contains(&color.as_str()) {
                return Err(JobError::invalid(
                    format!("mockups.colors[{j}]"),
                    format!(
                        "product '{product}' has no colour '{color}'; available: {}",
                        available.join(", ")
                    ),
                ));
            }
            push_once(&mut renders, product, color, false);
        }
        if spec.print_files {
            push_once(&mut renders, product, "", true);
        }
    }
    Ok(renders)
}

fn push_once(renders: &mut Vec<Render>, product: &str, color: &str, print_file: bool) {
    let r = Render {
        product: product.to_owned(),
        color: color.to_owned(),
        print_file,
    };
    if !renders.contains(&r) {
        renders.push(r);
    }
}

/// Output pixels of one variation's renders (mockups at their size, print files at the DPI).
pub(super) fn pixels_per_design(
    library: &MockupLibrary,
    renders: &[Render],
    spec: &ValidMockups,
    dpi: u32,
) -> (u64, u64) {
    let (mut mockups, mut prints) = (0u64, 0u64);
    for r in renders {
        let template = library
            .template(&r.product)
            .expect("plan checked every product");
        let (w, h) = if r.print_file {
            template.print_size_px(dpi)
        } else {
            template.output_size(spec.size)
        };
        let px = u64::from(w) * u64::from(h);
        if r.print_file {
            prints += px;
        } else {
            mockups += px;
        }
    }
    (mockups, prints)
}

/// The stored mockups and print files, and the time hard alpha took (summed over the print
/// files, when the job asks for it).
pub(super) struct Rendered {
    pub files: Vec<MockupOutput>,
    pub hard_alpha_ms: Option<u64>,
}

/// Render `designs[i]` onto every planned product and colour for each variation `i`, and
/// store the files.
pub(super) async fn render_and_store(
    library: &Arc<MockupLibrary>,
    job: &ValidJob,
    spec: &ValidMockups,
    renders: &[Render],
    designs: Vec<RgbaImage>,
    sink: &dyn OutputSink,
) -> Result<Rendered, JobError> {
    let several = designs.len() > 1;
    let work: Vec<(u32, Render)> = (0..designs.len() as u32)
        .flat_map(|i| renders.iter().map(move |r| (i, r.clone())))
        .collect();
    let work = Arc::new(work);
    let hard = hard_alpha(job);
    let alpha_us = Arc::new(AtomicU64::new(0));
    let context = RenderContext {
        lib: library.clone(),
        hard,
        alpha_us: alpha_us.clone(),
    };
    let files = render_all(context, job, spec, work.clone(), Arc::new(designs)).await?;
    let mut out = Vec::with_capacity(files.len());
    for ((bytes, (width, height), format), (image, r)) in files.into_iter().zip(work.iter()) {
        let ext = format.extension();
        let key = match (r.print_file, several) {
            (true, false) => keys::print_file(&job.id, &r.product, ext),
            (true, true) => keys::variation_print_file(&job.id, *image, &r.product, ext),
            (false, false) => keys::mockup(&job.id, &r.product, &r.color, ext),
            (false, true) => keys::variation_mockup(&job.id, *image, &r.product, &r.color, ext),
        };
        let len = bytes.len() as u64;
        let stored = sink.put(&key, bytes, format.content_type()).await?;
        out.push(MockupOutput {
            image: *image,
            product: r.product.clone(),
            color: r.color.clone(),
            kind: if r.print_file { "print_file" } else { "mockup" }.to_owned(),
            url: stored.url,
            key: stored.key,
            width,
            height,
            format,
            bytes: len,
            base64: stored.base64,
        });
    }
    Ok(Rendered {
        files: out,
        hard_alpha_ms: hard.map(|_| alpha_us.load(Ordering::Relaxed) / 1000),
    })
}

/// The job's DTF hard alpha for print files, in pixels at its DPI.
fn hard_alpha(job: &ValidJob) -> Option<prepress::HardAlpha> {
    let h = job.print.as_ref()?.hard_alpha?;
    let side = f64::from(prepress::mm_to_px(h.min_feature_mm, job.output.print_dpi));
    Some(prepress::HardAlpha {
        choke_px: h.choke_px as f32,
        min_area_px: (side * side).round() as u64,
    })
}

/// What every render of a job shares.
struct RenderContext {
    lib: Arc<MockupLibrary>,
    hard: Option<prepress::HardAlpha>,
    /// Microseconds spent hardening print files' alpha, over all threads.
    alpha_us: Arc<AtomicU64>,
}

type EncodedFile = (Vec<u8>, (u32, u32), OutputFormat);

/// Render and encode each file in parallel on the blocking pool: pure CPU work.
async fn render_all(
    context: RenderContext,
    job: &ValidJob,
    spec: &ValidMockups,
    work: Arc<Vec<(u32, Render)>>,
    designs: Arc<Vec<RgbaImage>>,
) -> Result<Vec<EncodedFile>, JobError> {
    let fit = match spec.fit {
        FitMode::Fit => Fit::Fit,
        FitMode::Cover => Fit::Cover,
    };
    let mockup_opts = EncodeOptions {
        format: spec.format,
        jpeg_quality: job.output.jpeg_quality,
        dpi: None,
    };
    let print_opts = EncodeOptions {
        format: OutputFormat::Png,
        jpeg_quality: 90,
        dpi: Some(job.output.print_dpi),
    };
    let size = spec.size;
    tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        let lib = &context.lib;
        // The layers first, from this thread (outside rayon's pool, see `MockupLibrary::warm`):
        // the renders below then only read them.
        let mut needed: Vec<(String, Option<u32>)> = Vec::new();
        for (_, r) in work.iter().filter(|(_, r)| !r.print_file) {
            if !needed.iter().any(|(p, _)| *p == r.product) {
                needed.push((r.product.clone(), size));
            }
        }
        lib.warm_products(&needed);
        work.par_iter()
            .map(|(i, r)| {
                let design = &designs[*i as usize];
                let template = lib
                    .template(&r.product)
                    .expect("plan checked every product");
                let (img, opts) = if r.print_file {
                    let dpi = print_opts.dpi.unwrap_or(300);
                    let mut img = mockup::print_file(template, design, dpi, fit);
                    if let Some(hard) = &context.hard {
                        let t = Instant::now();
                        img = prepress::harden(&img, hard);
                        let us = t.elapsed().as_micros() as u64;
                        context.alpha_us.fetch_add(us, Ordering::Relaxed);
                    }
                    (img, print_opts)
                } else {
                    let opts = RenderOptions {
                        color: r.color.clone(),
                        size,
                        fit,
                    };
                    let img = mockup::render(template, design, &opts).map_err(mockup_error)?;
                    (img, mockup_opts)
                };
                let bytes = encode::encode(&img, &opts)
                    .map_err(|e| JobError::internal(format!("mockup encoding failed: {e}")))?;
                Ok((bytes, img.dimensions(), opts.format))
            })
            .collect::<Result<Vec<_>, JobError>>()
    })
    .await
    .map_err(|e| JobError::new(ErrorCode::MockupFailed, format!("mockup task failed: {e}")))?
}

/// Renderer errors at the job boundary: bad requests name their field.
fn mockup_error(e: MockupError) -> JobError {
    match e {
        MockupError::EmptyDesign { .. } => JobError::invalid("design", e),
        MockupError::Size(_) => JobError::invalid("mockups.size", e),
        MockupError::UnknownColor { .. } => JobError::invalid("mockups.colors", e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(products: &[&str], colors: &[&str], print_files: bool) -> ValidMockups {
        ValidMockups {
            products: products.iter().map(|s| (*s).to_owned()).collect(),
            colors: colors.iter().map(|s| (*s).to_owned()).collect(),
            format: OutputFormat::Jpeg,
            size: Some(256),
            fit: FitMode::Fit,
            print_files,
        }
    }

    #[test]
    fn plan_repeated_products_and_colours_are_merged() {
        let lib = MockupLibrary::builtin();
        let color = lib.template("mug").unwrap().colors()[0].to_owned();
        let once = plan(&lib, &spec(&["mug"], &[&color], true)).unwrap();
        let twice = plan(&lib, &spec(&["mug", "mug"], &[&color, &color], true)).unwrap();
        assert_eq!(once, twice);
        assert_eq!(once.len(), 2);
    }

    #[test]
    fn pixels_per_design_counts_print_files_at_the_dpi() {
        let lib = MockupLibrary::builtin();
        let s = spec(&["tshirt"], &[], true);
        let renders = plan(&lib, &s).unwrap();
        let (mockups, prints) = pixels_per_design(&lib, &renders, &s, 300);
        let (pw, ph) = lib.template("tshirt").unwrap().print_size_px(300);
        assert_eq!(prints, u64::from(pw) * u64::from(ph));
        assert!(mockups > 0);
    }
}
