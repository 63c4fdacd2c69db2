//! A die-cut sticker's files for print-and-cut software: a PDF whose page is the sticker's size
//! in points, the artwork as an image and the cut line as a closed vector path stroked as a
//! hairline in a Separation colour space named `CutContour` (or the job's name), overprinting
//! so it never knocks out the artwork; and an SVG with the same artwork and cut line in
//! millimetres. PDF objects are written with `pdf-writer`.

use super::sticker::{Ring, Sticker};
use base64::Engine as _;
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref};
use std::fmt::Write as _;

/// The stroke of the cut line in points (a hairline, as cutters expect).
const HAIRLINE_PT: f32 = 0.25;
/// The cut line's alternate (on-screen and proof) colour: 100 % magenta.
const ALTERNATE_CMYK: [f32; 4] = [0.0, 1.0, 0.0, 0.0];

/// What the cut files need beside the sticker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CutFileOptions {
    pub dpi: u32,
    /// The spot colour's name (print/cut software reads `CutContour`).
    pub spot_name: String,
}

fn points_per_px(dpi: u32) -> f64 {
    72.0 / f64::from(dpi)
}

/// The sticker as a one-page PDF.
pub(crate) fn pdf(sticker: &Sticker, opts: &CutFileOptions) -> Vec<u8> {
    let (w, h) = sticker.image.dimensions();
    let s = points_per_px(opts.dpi);
    let (page_w, page_h) = ((f64::from(w) * s) as f32, (f64::from(h) * s) as f32);
    let ids = Ids::new();
    let mut pdf = Pdf::new();
    pdf.catalog(ids.catalog).pages(ids.pages);
    pdf.pages(ids.pages).kids([ids.page]).count(1);
    let mut page = pdf.page(ids.page);
    let media = Rect::new(0.0, 0.0, page_w, page_h);
    page.media_box(media).trim_box(media).parent(ids.pages);
    page.contents(ids.content);
    let mut resources = page.resources();
    resources.x_objects().pair(Name(b"Art"), ids.image);
    resources.color_spaces().pair(Name(b"Cut"), ids.cut_space);
    resources.ext_g_states().pair(Name(b"Over"), ids.overprint);
    resources.finish();
    page.finish();

    let (rgb, alpha) = planes(&sticker.image);
    let size = (w, h);
    image_plane(&mut pdf, ids.image, &rgb, size, Some(ids.alpha));
    image_plane(&mut pdf, ids.alpha, &alpha, size, None);

    let mut separation = pdf
        .color_space(ids.cut_space)
        .separation(Name(opts.spot_name.as_bytes()));
    separation.alternate_color_space().device_cmyk();
    separation
        .tint_exponential()
        .domain([0.0, 1.0])
        .c0([0.0; 4])
        .c1(ALTERNATE_CMYK)
        .n(1.0);
    separation.finish();
    pdf.ext_graphics(ids.overprint)
        .overprint(true)
        .overprint_fill(true);

    let mut content = Content::new();
    content.save_state();
    content.transform([page_w, 0.0, 0.0, page_h, 0.0, 0.0]);
    content.x_object(Name(b"Art"));
    content.restore_state();
    content.save_state();
    content.set_parameters(Name(b"Over"));
    content.set_stroke_color_space(Name(b"Cut"));
    content.set_stroke_color([1.0]);
    content.set_line_width(HAIRLINE_PT);
    content.set_line_join(pdf_writer::types::LineJoinStyle::RoundJoin);
    let to_pt = |(x, y): (f64, f64)| ((x * s) as f32, (f64::from(page_h) - y * s) as f32);
    for ring in sticker.parts.iter().flatten() {
        let mut pts = ring.iter().map(|p| to_pt(*p));
        let Some((x0, y0)) = pts.next() else { continue };
        content.move_to(x0, y0);
        for (x, y) in pts {
            content.line_to(x, y);
        }
        content.close_path();
    }
    content.stroke();
    content.restore_state();
    let content = content.finish();
    pdf.stream(
        ids.content,
        &miniz_oxide::deflate::compress_to_vec_zlib(&content, 6),
    )
    .filter(Filter::FlateDecode);
    pdf.finish()
}

struct Ids {
    catalog: Ref,
    pages: Ref,
    page: Ref,
    content: Ref,
    image: Ref,
    alpha: Ref,
    cut_space: Ref,
    overprint: Ref,
}

impl Ids {
    fn new() -> Ids {
        Ids {
            catalog: Ref::new(1),
            pages: Ref::new(2),
            page: Ref::new(3),
            content: Ref::new(4),
            image: Ref::new(5),
            alpha: Ref::new(6),
            cut_space: Ref::new(7),
            overprint: Ref::new(8),
        }
    }
}

fn planes(img: &image::RgbaImage) -> (Vec<u8>, Vec<u8>) {
    let n = (img.width() * img.height()) as usize;
    let (mut rgb, mut alpha) = (Vec::with_capacity(n * 3), Vec::with_capacity(n));
    for p in img.pixels() {
        rgb.extend_from_slice(&p.0[..3]);
        alpha.push(p.0[3]);
    }
    (rgb, alpha)
}

/// One 8-bit image XObject: RGB with `s_mask` as its soft mask, or the grey mask itself.
fn image_plane(pdf: &mut Pdf, id: Ref, data: &[u8], (w, h): (u32, u32), s_mask: Option<Ref>) {
    let colors = if s_mask.is_some() { 3 } else { 1 };
    let data = deflate_rows(data, colors * w);
    let mut image = pdf.image_xobject(id, &data);
    image.filter(Filter::FlateDecode);
    png_up(image.decode_parms(), colors as i32, w);
    image.width(w as i32).height(h as i32);
    if let Some(mask) = s_mask {
        image.color_space().device_rgb();
        image.s_mask(mask);
    } else {
        image.color_space().device_gray();
    }
    image.bits_per_component(8);
}

/// The PNG predictors' parameters of an image stream whose rows start with a filter byte.
fn png_up(mut parms: pdf_writer::writers::DecodeParms<'_>, colors: i32, width: u32) {
    parms
        .predictor(pdf_writer::types::Predictor::PngOptimum)
        .colors(colors)
        .bits_per_component(8)
        .columns(width as i32);
}

/// `data` (rows of `row` bytes) with PNG's Up filter on each row (a byte 2, then each byte less
/// the one above), deflated by fdeflate (png's fast compressor; zlib framing). Flat artwork and
/// borders become runs of zeros: small and quick, where plain deflate of 40 MB of pixels took
/// a tenth of a second.
fn deflate_rows(data: &[u8], row: u32) -> Vec<u8> {
    let row = row as usize;
    let mut filtered = Vec::with_capacity(data.len() + data.len() / row.max(1) + 1);
    let mut above: &[u8] = &[];
    for line in data.chunks(row.max(1)) {
        filtered.push(2);
        if above.is_empty() {
            filtered.extend_from_slice(line);
        } else {
            filtered.extend(line.iter().zip(above).map(|(c, a)| c.wrapping_sub(*a)));
        }
        above = line;
    }
    fdeflate::compress_to_vec(&filtered)
}

/// The sticker as an SVG: the artwork embedded as a PNG, the cut line as a path in a group
/// named after the spot colour, in millimetres.
pub(crate) fn svg(sticker: &Sticker, png: &[u8], opts: &CutFileOptions) -> String {
    let (w, h) = sticker.image.dimensions();
    let mm = |px: u32| f64::from(px) * 25.4 / f64::from(opts.dpi);
    let mut d = String::new();
    for (i, part) in sticker.parts.iter().enumerate() {
        if i > 0 {
            d.push(' ');
        }
        d.push_str(&rings_to_path(part));
    }
    let stroke_px = f64::from(HAIRLINE_PT) / points_per_px(opts.dpi);
    let name = xml_escape(&opts.spot_name);
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    format!(
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            "\n",
            r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" width="{wmm:.3}mm" height="{hmm:.3}mm" viewBox="0 0 {w} {h}">"#,
            "\n",
            r#"<image x="0" y="0" width="{w}" height="{h}" xlink:href="data:image/png;base64,{data}"/>"#,
            "\n",
            r##"<g id="{name}"><path id="{name}-path" d="{d}" fill="none" fill-rule="evenodd" stroke="#ec008c" stroke-width="{stroke:.3}"/></g>"##,
            "\n</svg>\n"
        ),
        wmm = mm(w),
        hmm = mm(h),
        w = w,
        h = h,
        data = data,
        name = name,
        d = d,
        stroke = stroke_px,
    )
}

fn rings_to_path(rings: &[Ring]) -> String {
    let mut d = String::new();
    for ring in rings {
        for (i, (x, y)) in ring.iter().enumerate() {
            let _ = write!(d, "{}{x} {y} ", if i == 0 { "M" } else { "L" });
        }
        d.push('Z');
    }
    d
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prepress::sticker::{sticker, StickerOptions};
    use image::{Rgba, RgbaImage};

    fn small_sticker() -> Sticker {
        let art = RgbaImage::from_fn(40, 40, |x, y| {
            if (10..30).contains(&x) && (10..30).contains(&y) {
                Rgba([0, 0, 200, 255])
            } else {
                Rgba([0, 0, 0, 0])
            }
        });
        let opts = StickerOptions {
            border_px: 4.0,
            bleed_px: 1.0,
            border_color: [255, 255, 255],
            min_area_px: 1,
            geometry_step: 1,
        };
        sticker(&art, &opts).unwrap()
    }

    #[test]
    fn pdf_names_the_spot_colour_and_sizes_the_page() {
        let s = small_sticker();
        let opts = CutFileOptions {
            dpi: 72,
            spot_name: "CutContour".to_owned(),
        };
        let bytes = pdf(&s, &opts);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("%PDF-"));
        assert!(
            text.contains("/Separation /CutContour /DeviceCMYK"),
            "{text}"
        );
        let (w, h) = s.image.dimensions();
        assert!(text.contains(&format!("/MediaBox [0 0 {w} {h}]")), "{text}");
    }

    #[test]
    fn svg_keeps_the_cut_line_in_a_named_group() {
        let s = small_sticker();
        let opts = CutFileOptions {
            dpi: 254,
            spot_name: "Cut<1>".to_owned(),
        };
        let svg = svg(&s, b"png", &opts);
        assert!(svg.contains(r#"<g id="Cut&lt;1&gt;">"#));
        assert!(svg.contains("M") && svg.contains("Z"));
        assert!(svg.contains(&format!(
            r#"width="{:.3}mm""#,
            f64::from(s.image.width()) / 10.0
        )));
    }
}
