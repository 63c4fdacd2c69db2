//! The mockup pipeline for one product and colour: tint the product, place the design (fit or
//! cover), warp it onto the print area with shading, highlights, displacement and mask, then lay
//! the overlay on top. Pure CPU, no I/O.

use super::blend::{overlay, tint_rows, Strengths, TintLut};
use super::design::{place, rasterize, Fit, Placement};
use super::kernel::{composite, CylinderMap, Maps, QuadMap};
use super::manifest::Mapping;
use super::template::{Prepared, Template};
use image::RgbaImage;

/// Largest mockup side accepted.
pub const MAX_SIZE: u32 = 8192;

/// What to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Colour variant name (see [`Template::colors`]).
    pub color: String,
    /// Longest side of the mockup in pixels; `None` = the template's canvas.
    pub size: Option<u32>,
    pub fit: Fit,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            color: "white".to_owned(),
            size: None,
            fit: Fit::Fit,
        }
    }
}

/// Why a mockup could not be rendered. Messages are safe to show a customer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockupError {
    #[error("color: {product} has no colour {color:?}; choose one of: {}", valid.join(", "))]
    UnknownColor {
        product: String,
        color: String,
        valid: Vec<String>,
    },
    #[error("design: the image is {width}x{height}; it must have at least one pixel")]
    EmptyDesign { width: u32, height: u32 },
    #[error("size: {0} is not within 16..={MAX_SIZE}")]
    Size(u32),
}

/// Render `design` on `template` in one colour.
pub fn render(
    template: &Template,
    design: &RgbaImage,
    opts: &RenderOptions,
) -> Result<RgbaImage, MockupError> {
    let (w, h) = design.dimensions();
    if w == 0 || h == 0 {
        return Err(MockupError::EmptyDesign {
            width: w,
            height: h,
        });
    }
    let (prepared, mut out) = tinted(template, opts)?;
    let place = place((w, h), template.print_inches(), opts.fit);
    put_design(&mut out, &prepared, design, &place, template);
    if let Some(o) = &prepared.layers.overlay {
        overlay(&mut out, o);
    }
    Ok(out)
}

/// The product in one colour with no design (what a fully transparent design renders as).
pub fn render_blank(template: &Template, opts: &RenderOptions) -> Result<RgbaImage, MockupError> {
    let (prepared, mut out) = tinted(template, opts)?;
    if let Some(o) = &prepared.layers.overlay {
        overlay(&mut out, o);
    }
    Ok(out)
}

fn tinted(
    template: &Template,
    opts: &RenderOptions,
) -> Result<(std::sync::Arc<Prepared>, RgbaImage), MockupError> {
    if let Some(size) = opts.size {
        if !(16..=MAX_SIZE).contains(&size) {
            return Err(MockupError::Size(size));
        }
    }
    let rgb = template
        .color_rgb(&opts.color)
        .ok_or_else(|| MockupError::UnknownColor {
            product: template.product().to_owned(),
            color: opts.color.clone(),
            valid: template.colors().into_iter().map(str::to_owned).collect(),
        })?;
    let prepared = template.prepared(opts.size);
    let mut out = prepared.layers.base.clone();
    if let Some(region) = &prepared.layers.tint {
        let lut = TintLut::new(rgb, template.manifest.effects.tint_reference);
        tint_rows(&mut out, region, &lut, prepared.tint_rows);
    }
    Ok((prepared, out))
}

fn put_design(
    out: &mut RgbaImage,
    prepared: &Prepared,
    design: &RgbaImage,
    place: &Placement,
    template: &Template,
) {
    let l = &prepared.layers;
    let effects = &template.manifest.effects;
    let maps = Maps {
        mask: l.mask.as_ref().map(|m| m.as_raw().as_slice()),
        shading: l.shading.as_ref().map(|m| m.as_raw().as_slice()),
        highlight: l.highlight.as_ref().map(|m| m.as_raw().as_slice()),
        displacement: l.displacement.as_deref(),
        displacement_px: prepared.displacement_px,
        strengths: Strengths::new(effects.shading, effects.highlight),
    };
    let margin = if maps.displacement.is_some() {
        f64::from(prepared.displacement_px)
    } else {
        0.0
    };
    let size = (out.width() as usize, out.height() as usize);
    let [u0, v0, u1, v1] = place.area;
    let on_screen = |w: f64, h: f64| (w * (u1 - u0), h * (v1 - v0));
    match &prepared.mapping {
        Mapping::Quad(q) => {
            let len = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).hypot(a[1] - b[1]);
            let target = on_screen(
                len(q[0], q[1]).max(len(q[3], q[2])),
                len(q[0], q[3]).max(len(q[1], q[2])),
            );
            let raster = rasterize(design, place.crop, target);
            let inner = raster.inner();
            // A quad that passed validation is never degenerate; skip rather than panic.
            if let Some(map) = QuadMap::new(q, place.area, inner, margin, size) {
                composite(out, &raster, &map, &maps);
            }
        }
        Mapping::Cylinder(c) => {
            let target = on_screen(c.radius * c.arc, c.bottom - c.top);
            let raster = rasterize(design, place.crop, target);
            let map = CylinderMap::new(c, place.area, raster.inner(), margin, size);
            composite(out, &raster, &map, &maps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mockup::MockupLibrary;

    #[test]
    fn render_unknown_colour_lists_valid_ones() {
        let lib = MockupLibrary::builtin();
        let t = lib.template("mug").unwrap();
        let opts = RenderOptions {
            color: "plaid".into(),
            size: Some(64),
            ..Default::default()
        };
        let err = render(t, &RgbaImage::new(4, 4), &opts).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"plaid\"") && msg.contains("black") && msg.contains("white"));
    }

    #[test]
    fn render_empty_design_is_an_error() {
        let lib = MockupLibrary::builtin();
        let t = lib.template("mug").unwrap();
        let err = render(t, &RgbaImage::new(0, 5), &RenderOptions::default()).unwrap_err();
        assert_eq!(
            err,
            MockupError::EmptyDesign {
                width: 0,
                height: 5
            }
        );
    }

    #[test]
    fn render_size_out_of_range_is_an_error() {
        let lib = MockupLibrary::builtin();
        let t = lib.template("mug").unwrap();
        let opts = RenderOptions {
            size: Some(9000),
            ..Default::default()
        };
        assert_eq!(render_blank(t, &opts).unwrap_err(), MockupError::Size(9000));
    }
}
