//! Image bytes for tests: a small valid PNG, and a PNG header that claims far more pixels than
//! its data holds.

/// A small valid PNG (`w` x `h`, opaque gradient).
pub(crate) fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 7, 255]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG claiming `w` x `h` pixels whose only image data is one tiny zlib stream: the shape
/// of a decompression bomb, minus the bomb. Written by the `png` crate (chunks and CRCs).
pub(crate) fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("a PNG header");
    writer
        .write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1])
        .expect("an IDAT chunk");
    writer.finish().expect("the IEND chunk");
    out
}
