//! Print files: the design alone, fitted (or cropped to cover) into the product's print size at
//! a DPI, on a transparent background. Writing the DPI into the file is the encoder's job
//! (`crate::encode` with `EncodeOptions::dpi`).

use super::design::{place, Fit};
use super::resample::resize_rgba;
use super::template::Template;
use image::RgbaImage;

/// The print-ready image for `template` at `dpi`: `print_size_px(dpi)` pixels, transparent
/// where the design does not reach. An empty design gives an empty (transparent) print file.
pub fn print_file(template: &Template, design: &RgbaImage, dpi: u32, fit: Fit) -> RgbaImage {
    place_on_area(design, template.print_size_px(dpi), fit)
}

/// Where a design lands on a print area of `area` pixels: `dest` is `[x, y, width, height]`
/// in the area's pixels, `crop` is `[x, y, width, height]` of the design that is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaPlacement {
    pub dest: [u32; 4],
    pub crop: [u32; 4],
}

/// The placement of a `design`-sized image on an `area` (None for an empty design).
pub fn area_placement(design: (u32, u32), area: (u32, u32), fit: Fit) -> Option<AreaPlacement> {
    let (w, h) = design;
    let (pw, ph) = area;
    if w == 0 || h == 0 || pw == 0 || ph == 0 {
        return None;
    }
    let p = place((w, h), (f64::from(pw), f64::from(ph)), fit);
    let [u0, v0, u1, v1] = p.area;
    let x0 = (u0 * f64::from(pw)).round().max(0.0) as u32;
    let y0 = (v0 * f64::from(ph)).round().max(0.0) as u32;
    let tw = ((u1 * f64::from(pw)).round() as u32).clamp(x0 + 1, pw.max(x0 + 1)) - x0;
    let th = ((v1 * f64::from(ph)).round() as u32).clamp(y0 + 1, ph.max(y0 + 1)) - y0;
    Some(AreaPlacement {
        dest: [x0, y0, tw, th],
        crop: p.crop,
    })
}

/// `design` placed on a transparent print area of `area` pixels.
pub fn place_on_area(design: &RgbaImage, area: (u32, u32), fit: Fit) -> RgbaImage {
    let mut out = RgbaImage::new(area.0, area.1);
    let Some(p) = area_placement(design.dimensions(), area, fit) else {
        return out;
    };
    let [cx, cy, cw, ch] = p.crop;
    let crop = image::imageops::crop_imm(design, cx, cy, cw, ch).to_image();
    let scaled = resize_rgba(&crop, p.dest[2], p.dest[3]);
    image::imageops::replace(
        &mut out,
        &scaled,
        i64::from(p.dest[0]),
        i64::from(p.dest[1]),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mockup::MockupLibrary;

    #[test]
    fn print_file_size_is_inches_times_dpi() {
        let lib = MockupLibrary::builtin();
        let t = lib.template("tshirt").unwrap();
        let design = RgbaImage::from_pixel(30, 40, image::Rgba([9, 9, 9, 255]));
        let out = print_file(t, &design, 10, Fit::Fit);
        assert_eq!(out.dimensions(), t.print_size_px(10));
    }

    #[test]
    fn print_file_fit_wide_design_leaves_transparent_bands() {
        let lib = MockupLibrary::builtin();
        let t = lib.template("poster").unwrap();
        let design = RgbaImage::from_pixel(200, 50, image::Rgba([200, 0, 0, 255]));
        let out = print_file(t, &design, 20, Fit::Fit);
        let (w, h) = out.dimensions();
        assert_eq!(out.get_pixel(w / 2, 0).0[3], 0);
        assert_eq!(out.get_pixel(w / 2, h / 2).0, [200, 0, 0, 255]);
        let cover = print_file(t, &design, 20, Fit::Cover);
        assert_eq!(cover.get_pixel(w / 2, 0).0, [200, 0, 0, 255]);
    }
}
