//! The mockup stage of the pipeline: check the requested products and colours against the
//! template library, render every (product, colour) on blocking threads, encode and store them.

use crate::encode::{self, EncodeOptions, OutputFormat};
use crate::error::{ErrorCode, JobError};
use crate::job::outcome::MockupOutput;
use crate::job::spec::FitMode;
use crate::job::validate::{ValidJob, ValidMockups};
use crate::mockup::{self, Fit, MockupError, MockupLibrary, RenderOptions};
use crate::output::{keys, OutputSink};
use image::RgbaImage;
use std::sync::Arc;

/// One image to render: a mockup of a product in a colour, or a print file.
struct Render {
    product: String,
    color: String,
    print_file: bool,
}

/// Render the design onto every requested product and colour and store the files.
pub async fn render_and_store(
    library: &Arc<MockupLibrary>,
    job: &ValidJob,
    spec: &ValidMockups,
    design: RgbaImage,
    sink: &dyn OutputSink,
) -> Result<Vec<MockupOutput>, JobError> {
    let renders = Arc::new(plan(library, spec)?);
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
    let (lib, list, size) = (library.clone(), renders.clone(), spec.size);
    // Render and encode each file in parallel on the blocking pool: pure CPU work.
    let files = tokio::task::spawn_blocking(move || {
        use rayon::prelude::*;
        list.par_iter()
            .map(|r| {
                let template = lib
                    .template(&r.product)
                    .expect("plan checked every product");
                let (img, opts) = if r.print_file {
                    (
                        mockup::print_file(template, &design, print_opts.dpi.unwrap_or(300), fit),
                        print_opts,
                    )
                } else {
                    let opts = RenderOptions {
                        color: r.color.clone(),
                        size,
                        fit,
                    };
                    (
                        mockup::render(template, &design, &opts).map_err(mockup_error)?,
                        mockup_opts,
                    )
                };
                let bytes = encode::encode(&img, &opts)
                    .map_err(|e| JobError::internal(format!("mockup encoding failed: {e}")))?;
                Ok((bytes, img.dimensions(), opts.format))
            })
            .collect::<Result<Vec<_>, JobError>>()
    })
    .await
    .map_err(|e| JobError::new(ErrorCode::MockupFailed, format!("mockup task failed: {e}")))??;
    let mut out = Vec::with_capacity(files.len());
    for ((bytes, (width, height), format), r) in files.into_iter().zip(renders.iter()) {
        let key = if r.print_file {
            keys::print_file(&job.id, &r.product, format.extension())
        } else {
            keys::mockup(&job.id, &r.product, &r.color, format.extension())
        };
        let len = bytes.len() as u64;
        let stored = sink.put(&key, bytes, format.content_type()).await?;
        out.push(MockupOutput {
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
    Ok(out)
}

/// Renderer errors at the job boundary: bad requests name their field.
fn mockup_error(e: MockupError) -> JobError {
    match e {
        MockupError::EmptyDesign { .. } => JobError::invalid("design", e),
        MockupError::Size(_) => JobError::invalid("mockups.size", e),
        MockupError::UnknownColor { .. } => JobError::invalid("mockups.colors", e),
    }
}

/// Every render the job asks for, with products and colours checked (errors name the field).
fn plan(library: &MockupLibrary, spec: &ValidMockups) -> Result<Vec<Render>, JobError> {
    let mut renders = Vec::new();
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
            renders.push(Render {
                product: product.clone(),
                color: color.clone(),
                print_file: false,
            });
        }
        if spec.print_files {
            renders.push(Render {
                product: product.clone(),
                color: String::new(),
                print_file: true,
            });
        }
    }
    Ok(renders)
}
