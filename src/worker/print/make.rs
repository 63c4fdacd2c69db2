//! Making one variation's deliverables of one kind, on a blocking thread: the design placed on
//! the print area, handed to `prepress`, encoded. Errors a customer can fix (a transparent
//! design) are `invalid_input` naming the section.

use super::plan::{detail, sticker_margin_px, PrintPlan};
use crate::encode::{self, EncodeOptions, OutputFormat};
use crate::error::JobError;
use crate::job::print::{ValidInks, ValidPrint};
use crate::mockup;
use crate::prepress::{self, Rgb};
use image::RgbaImage;

/// A kind of deliverable, in the order a job's are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Vector,
    Sticker,
    Separations,
}

impl Kind {
    pub(crate) const ALL: [Kind; 3] = [Kind::Vector, Kind::Sticker, Kind::Separations];

    pub(crate) fn asked(self, spec: &ValidPrint) -> bool {
        match self {
            Kind::Vector => spec.vector.is_some(),
            Kind::Sticker => spec.sticker.is_some(),
            Kind::Separations => spec.separations.is_some(),
        }
    }

    /// The folder under `{id}/print/{i}/`.
    pub(super) fn folder(self) -> &'static str {
        match self {
            Kind::Vector => "vector",
            Kind::Sticker => "sticker",
            Kind::Separations => "separations",
        }
    }

    /// The stage's name in logs (`timings_ms` has it with `print_` in front).
    pub(crate) fn stage(self) -> &'static str {
        match self {
            Kind::Vector => "print_vector",
            Kind::Sticker => "print_sticker",
            Kind::Separations => "print_separations",
        }
    }
}

/// One file to store.
pub(crate) struct File {
    pub kind: &'static str,
    pub name: String,
    pub(crate) bytes: Vec<u8>,
    pub content_type: &'static str,
    pub size: (u32, u32),
    pub ink: Option<Rgb>,
    pub coverage: Option<f64>,
    pub colors: Vec<Rgb>,
}

impl File {
    fn new(kind: &'static str, name: impl Into<String>, bytes: Vec<u8>, size: (u32, u32)) -> File {
        let name = name.into();
        let content_type = match name.rsplit('.').next() {
            Some("svg") => "image/svg+xml",
            Some("pdf") => "application/pdf",
            _ => "image/png",
        };
        File {
            kind,
            name,
            bytes,
            content_type,
            size,
            ink: None,
            coverage: None,
            colors: Vec::new(),
        }
    }
}

/// Make `kind`'s files for one design.
pub(crate) fn make(
    kind: Kind,
    plan: &PrintPlan,
    design: &RgbaImage,
) -> Result<Vec<File>, JobError> {
    match kind {
        Kind::Vector => vector(plan, design),
        Kind::Sticker => sticker(plan, design),
        Kind::Separations => separations(plan, design),
    }
}

fn transparent(field: &str) -> JobError {
    JobError::invalid(
        field,
        "the design is fully transparent: there is nothing to print",
    )
}

/// A PNG with `dpi` in it (0: none, for previews).
fn png(img: &RgbaImage, dpi: u32) -> Result<Vec<u8>, JobError> {
    let opts = EncodeOptions {
        format: OutputFormat::Png,
        jpeg_quality: 90,
        dpi: (dpi > 0).then_some(dpi),
    };
    encode::encode(img, &opts)
        .map_err(|e| JobError::internal(format!("print encoding failed: {e}")))
}

fn vector(plan: &PrintPlan, design: &RgbaImage) -> Result<Vec<File>, JobError> {
    let v = plan.spec.vector.expect("asked");
    let detail = detail(v.detail);
    let placement = mockup::area_placement(design.dimensions(), plan.area, plan.fit)
        .ok_or_else(|| transparent("print.vector"))?;
    let [cx, cy, cw, ch] = placement.crop;
    let crop = image::imageops::crop_imm(design, cx, cy, cw, ch).to_image();
    // Traced at the design's own resolution, at most the detail's side (an SVG scales freely).
    let side = detail.trace_side();
    let scale = (f64::from(side) / f64::from(cw.max(ch))).min(1.0);
    let (tw, th) = (
        ((f64::from(cw) * scale).round() as u32).max(1),
        ((f64::from(ch) * scale).round() as u32).max(1),
    );
    let traced = if (tw, th) == (cw, ch) {
        crop
    } else {
        mockup::resize_rgba(&crop, tw, th)
    };
    let [x, y, w, h] = placement.dest;
    let at = prepress::Placement {
        x: f64::from(x),
        y: f64::from(y),
        width: f64::from(w),
        height: f64::from(h),
    };
    let page = prepress::Page {
        width_px: plan.area.0,
        height_px: plan.area.1,
        dpi: plan.dpi,
    };
    let traced = prepress::trace(&traced, v.colors as usize, detail, at, page)
        .ok_or_else(|| transparent("print.vector"))?;
    let mut file = File::new("vector", "design.svg", traced.svg.into_bytes(), plan.area);
    file.colors = traced.fills;
    Ok(vec![file])
}

fn sticker(plan: &PrintPlan, design: &RgbaImage) -> Result<Vec<File>, JobError> {
    let s = plan.spec.sticker.as_ref().expect("asked");
    let margin = sticker_margin_px(s, plan.dpi);
    // The design fits inside the area less the border and bleed, so the sticker fits the area.
    let inner = (plan.area.0 - 2 * margin, plan.area.1 - 2 * margin);
    let art = mockup::place_on_area(design, inner, plan.fit);
    let opts = prepress::StickerOptions {
        border_px: prepress::mm_to_px(s.border_mm, plan.dpi),
        bleed_px: prepress::mm_to_px(s.bleed_mm, plan.dpi),
        border_color: s.border_color,
        min_area_px: speck_area(0.5, plan.dpi),
        // Cells of at most 0.2 mm (1/127 in): 2 px at 300 DPI.
        geometry_step: (plan.dpi / 127).max(1),
    };
    let sticker = prepress::sticker(&art, &opts).map_err(|e| match e {
        prepress::StickerError::Transparent => transparent("print.sticker"),
    })?;
    let size = sticker.image.dimensions();
    let png = png(&sticker.image, plan.dpi)?;
    let cut = prepress::CutFileOptions {
        dpi: plan.dpi,
        spot_name: s.cut_name.clone(),
    };
    let svg = prepress::sticker_svg(&sticker, &png, &cut).into_bytes();
    let pdf = prepress::sticker_pdf(&sticker, &cut);
    Ok(vec![
        File::new("sticker_png", "sticker.png", png, size),
        File::new("sticker_svg", "sticker.svg", svg, size),
        File::new("sticker_pdf", "sticker.pdf", pdf, size),
    ])
}

/// Pixels of a square `mm` millimetres across.
fn speck_area(mm: f64, dpi: u32) -> u64 {
    let side = f64::from(prepress::mm_to_px(mm, dpi));
    (side * side).round() as u64
}

/// The separations preview's longest side (a preview, not a print file).
const PREVIEW_SIDE: u32 = 1024;

fn separations(plan: &PrintPlan, design: &RgbaImage) -> Result<Vec<File>, JobError> {
    let s = plan.spec.separations.as_ref().expect("asked");
    let base = mockup::place_on_area(design, plan.area, plan.fit);
    let opts = prepress::SeparationOptions {
        inks: match &s.inks {
            ValidInks::Count(n) => prepress::Inks::Count(*n as usize),
            ValidInks::Given(c) => prepress::Inks::Given(c.clone()),
        },
        underbase_choke_px: s.underbase_choke_px.map(|px| px as f32),
    };
    let seps = prepress::separate(&base, &opts).map_err(|e| match e {
        prepress::SeparationError::Transparent => transparent("print.separations"),
    })?;
    let film = |m: &prepress::Mask| {
        encode::encode_bilevel(&prepress::film_rows(m), m.width, m.height, Some(plan.dpi))
            .map_err(|e| JobError::internal(format!("separation encoding failed: {e}")))
    };
    let mut files = Vec::new();
    for (k, layer) in seps.layers.iter().enumerate() {
        let mut f = File::new(
            "separation",
            format!("ink-{k}.png"),
            film(&layer.mask)?,
            plan.area,
        );
        f.ink = Some(layer.color);
        f.coverage = Some(layer.coverage);
        files.push(f);
    }
    if let Some(under) = &seps.underbase {
        let mut f = File::new("underbase", "underbase.png", film(under)?, plan.area);
        f.coverage = Some(under.count() as f64 / (under.bits.len().max(1)) as f64);
        files.push(f);
    }
    let preview = seps.preview(PREVIEW_SIDE);
    let size = preview.dimensions();
    let mut f = File::new("separation_preview", "preview.png", png(&preview, 0)?, size);
    f.colors = seps.layers.iter().map(|l| l.color).collect();
    files.push(f);
    Ok(files)
}
