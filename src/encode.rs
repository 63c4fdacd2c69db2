//! Image file encoding: PNG (fast deflate, alpha kept, DPI in `pHYs`), JPEG (quality, DPI in JFIF)
//! and lossless WebP. Pure CPU, no I/O beyond the returned bytes.

use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, RgbaImage};
use serde::{Deserialize, Serialize};

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    #[default]
    Png,
    Jpeg,
    Webp,
}

impl OutputFormat {
    /// File extension without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Png => "png",
            OutputFormat::Jpeg => "jpg",
            OutputFormat::Webp => "webp",
        }
    }

    /// MIME type for the `Content-Type` of a stored object.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Png => "image/png",
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Webp => "image/webp",
        }
    }
}

/// How to encode one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncodeOptions {
    pub format: OutputFormat,
    /// JPEG quality 1..=100 (ignored by the lossless formats).
    pub(crate) jpeg_quality: u8,
    /// Dots per inch written into the file (PNG `pHYs`, JPEG JFIF density); none when `None`.
    pub dpi: Option<u32>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            format: OutputFormat::Png,
            jpeg_quality: 90,
            dpi: None,
        }
    }
}

/// Why an image could not be encoded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EncodeError {
    #[error("png encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    #[error("image encoding failed: {0}")]
    Image(#[from] image::ImageError),
    #[error("jpeg encoding failed: {0}")]
    Jpeg(#[from] jpeg_encoder::EncodingError),
}

/// Encode an RGBA image. JPEG drops the alpha channel (composited over white).
pub(crate) fn encode(img: &RgbaImage, opts: &EncodeOptions) -> Result<Vec<u8>, EncodeError> {
    match opts.format {
        OutputFormat::Png => encode_png(img, opts.dpi),
        OutputFormat::Jpeg => encode_jpeg(img, opts.jpeg_quality, opts.dpi),
        OutputFormat::Webp => {
            let mut out = Vec::new();
            WebPEncoder::new_lossless(&mut out).encode(
                img.as_raw(),
                img.width(),
                img.height(),
                ExtendedColorType::Rgba8,
            )?;
            Ok(out)
        }
    }
}

fn encode_png(img: &RgbaImage, dpi: Option<u32>) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(img.as_raw().len() / 2);
    {
        let mut enc = png::Encoder::new(&mut out, img.width(), img.height());
        let opaque = img.pixels().all(|p| p.0[3] == 255);
        enc.set_color(if opaque {
            png::ColorType::Rgb
        } else {
            png::ColorType::Rgba
        });
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Fast);
        describe_png(&mut enc, dpi);
        let mut writer = enc.write_header()?;
        if opaque {
            let rgb: Vec<u8> = img
                .as_raw()
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            writer.write_image_data(&rgb)?;
        } else {
            writer.write_image_data(img.as_raw())?;
        }
        writer.finish()?;
    }
    Ok(out)
}

/// What every PNG merchgen writes says about itself: sRGB (the `sRGB` chunk, with the `gAMA`
/// and `cHRM` fallbacks the PNG spec recommends, so a RIP reads the colours as they were made)
/// and, for print files, the DPI (`pHYs` counts pixels per metre: 1 inch = 0.0254 m).
fn describe_png<W: std::io::Write>(enc: &mut png::Encoder<'_, W>, dpi: Option<u32>) {
    enc.set_source_srgb(png::SrgbRenderingIntent::Perceptual);
    if let Some(dpi) = dpi {
        let ppm = (f64::from(dpi) / 0.0254).round() as u32;
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: ppm,
            yppu: ppm,
            unit: png::Unit::Meter,
        }));
    }
}

/// A 1-bit greyscale PNG (a separation film: 0 is ink, 1 is none) from packed rows, most
/// significant bit first, `ceil(width / 8)` bytes per row.
pub(crate) fn encode_bilevel(
    rows: &[u8],
    width: u32,
    height: u32,
    dpi: Option<u32>,
) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(rows.len() / 8 + 64);
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        describe_png(&mut enc, dpi);
        let mut writer = enc.write_header()?;
        writer.write_image_data(rows)?;
        writer.finish()?;
    }
    Ok(out)
}

/// JPEG through the `jpeg-encoder` crate (SIMD colour conversion and DCT): about 2.5x faster
/// than `image`'s encoder on 2000x2000 mockups, which dominated mockup time. Chroma is
/// subsampled 4:2:0 at every quality, as libjpeg and Pillow do by default (jpeg-encoder would
/// keep full-resolution chroma from quality 90 up, which doubles the encoding work for no
/// visible gain on photos and mockups). Opaque images (every mockup) are encoded straight from
/// their RGBA buffer; others are composited over white first.
fn encode_jpeg(img: &RgbaImage, quality: u8, dpi: Option<u32>) -> Result<Vec<u8>, EncodeError> {
    let (w, h) = (dim_u16(img.width())?, dim_u16(img.height())?);
    let mut out = Vec::with_capacity(img.as_raw().len() / 12);
    let mut enc = jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100));
    enc.set_sampling_factor(jpeg_encoder::SamplingFactor::F_2_2);
    if let Some(dpi) = dpi {
        enc.set_density(jpeg_encoder::PixelDensity::dpi(
            dpi.min(u32::from(u16::MAX)) as u16,
        ));
    }
    if is_opaque(img.as_raw()) {
        enc.encode(img.as_raw(), w, h, jpeg_encoder::ColorType::Rgba)?;
    } else {
        enc.encode(&over_white(img), w, h, jpeg_encoder::ColorType::Rgb)?;
    }
    Ok(out)
}

/// True when every alpha byte of RGBA `raw` is 255. Reads eight bytes (two pixels) at a time
/// and stops at the first block of 64 bytes with a translucent pixel: near memory speed, where
/// a per-pixel check cost a fifth of the JPEG encoding.
fn is_opaque(raw: &[u8]) -> bool {
    const ALPHAS: u64 = 0xff00_0000_ff00_0000;
    let blocks = raw.chunks_exact(64);
    let tail = blocks.remainder();
    let full = blocks.into_iter().all(|block| {
        block
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("chunks of 8")))
            .fold(ALPHAS, |acc, w| acc & w)
            & ALPHAS
            == ALPHAS
    });
    full && tail.chunks_exact(4).all(|p| p[3] == 255)
}

/// RGB of an RGBA image composited over white (JPEG has no alpha).
fn over_white(img: &RgbaImage) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(img.as_raw().len() / 4 * 3);
    for p in img.as_raw().chunks_exact(4) {
        let a = u16::from(p[3]);
        let blend = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        rgb.extend_from_slice(&[blend(p[0]), blend(p[1]), blend(p[2])]);
    }
    rgb
}

fn dim_u16(v: u32) -> Result<u16, EncodeError> {
    u16::try_from(v).map_err(|_| {
        EncodeError::Image(image::ImageError::Limits(
            image::error::LimitError::from_kind(image::error::LimitErrorKind::DimensionError),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(alpha: u8) -> RgbaImage {
        RgbaImage::from_fn(32, 16, |x, y| {
            image::Rgba([x as u8 * 8, y as u8 * 16, 77, alpha])
        })
    }

    #[test]
    fn encode_png_opaque_roundtrips_pixels() {
        let img = sample(255);
        let bytes = encode(&img, &EncodeOptions::default()).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(back, img);
    }

    #[test]
    fn encode_png_transparent_keeps_alpha() {
        let img = sample(100);
        let bytes = encode(&img, &EncodeOptions::default()).unwrap();
        let back = image::load_from_memory(&bytes).unwrap().to_rgba8();
        assert_eq!(back.get_pixel(3, 3).0[3], 100);
    }

    #[test]
    fn encode_png_with_dpi_writes_phys() {
        let opts = EncodeOptions {
            dpi: Some(300),
            ..Default::default()
        };
        let bytes = encode(&sample(255), &opts).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        let dims = reader.info().pixel_dims.unwrap();
        assert_eq!(dims.xppu, 11811);
        assert_eq!(dims.unit, png::Unit::Meter);
    }

    #[test]
    fn encode_jpeg_and_webp_decode_with_right_size() {
        for format in [OutputFormat::Jpeg, OutputFormat::Webp] {
            let opts = EncodeOptions {
                format,
                ..Default::default()
            };
            let bytes = encode(&sample(255), &opts).unwrap();
            let back = image::load_from_memory(&bytes).unwrap();
            assert_eq!((back.width(), back.height()), (32, 16), "{format:?}");
        }
    }

    #[test]
    fn is_opaque_finds_any_translucent_pixel() {
        for n in [0usize, 1, 15, 16, 17, 100] {
            let mut raw = vec![255u8; n * 4];
            assert!(is_opaque(&raw), "{n} opaque pixels");
            for i in 0..n {
                raw[i * 4 + 3] = 254;
                assert!(!is_opaque(&raw), "pixel {i} of {n}");
                raw[i * 4 + 3] = 255;
                raw[i * 4] = 0;
                assert!(is_opaque(&raw), "colour bytes do not count ({i} of {n})");
            }
        }
    }

    #[test]
    fn encode_jpeg_opaque_and_translucent_keep_colours_over_white() {
        let jpeg = EncodeOptions {
            format: OutputFormat::Jpeg,
            ..Default::default()
        };
        let flat = |rgba: [u8; 4]| RgbaImage::from_pixel(32, 32, image::Rgba(rgba));
        let decoded = |img: &RgbaImage| {
            let bytes = encode(img, &jpeg).unwrap();
            image::load_from_memory(&bytes)
                .unwrap()
                .to_rgb8()
                .get_pixel(16, 16)
                .0
        };
        let near = |a: [u8; 3], b: [u8; 3]| a.iter().zip(b).all(|(x, y)| x.abs_diff(y) <= 3);
        let opaque = decoded(&flat([200, 40, 90, 255]));
        assert!(near(opaque, [200, 40, 90]), "{opaque:?}");
        let clear = decoded(&flat([0, 0, 0, 0]));
        assert!(
            near(clear, [255, 255, 255]),
            "transparent is white: {clear:?}"
        );
        let half = decoded(&flat([0, 0, 0, 128]));
        assert!(
            near(half, [127, 127, 127]),
            "half black over white: {half:?}"
        );
    }
}
