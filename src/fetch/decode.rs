//! Bytes to an RGBA image, safely: the format is sniffed from the content, the header's
//! dimensions are checked against a pixel budget before any pixel buffer is allocated
//! (decompression bombs), the decoder runs under an allocation limit, and the EXIF orientation
//! is applied. Pure CPU: callers run it on a blocking thread.

use super::error::FetchError;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbaImage};
use std::io::Cursor;

/// Decode `bytes` (PNG, JPEG or WebP) into RGBA, refusing more than `max_pixels` pixels.
pub(crate) fn decode(bytes: &[u8], max_pixels: u64) -> Result<RgbaImage, FetchError> {
    if bytes.is_empty() {
        return Err(FetchError::Empty);
    }
    let format = sniff(bytes)?;
    let header = ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = header
        .into_dimensions()
        .map_err(|e| image_error(e, format))?;
    if width == 0 || height == 0 {
        return Err(FetchError::ZeroSize);
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(FetchError::TooManyPixels {
            width,
            height,
            max: max_pixels,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(limits(max_pixels));
    let mut decoder = reader.into_decoder().map_err(|e| image_error(e, format))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| image_error(e, format))?;
    img.apply_orientation(orientation);
    Ok(img.into_rgba8())
}

fn sniff(bytes: &[u8]) -> Result<ImageFormat, FetchError> {
    let format = image::guess_format(bytes).map_err(|_| FetchError::NotAnImage)?;
    match format {
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP => Ok(format),
        other => Err(FetchError::Unsupported(format_name(other))),
    }
}

/// Room for a 16-bit RGBA decode of the largest accepted image, plus decoder scratch.
fn limits(max_pixels: u64) -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).saturating_add(64 << 20));
    limits
}

fn format_name(format: ImageFormat) -> String {
    format
        .extensions_str()
        .first()
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_else(|| format!("{format:?}"))
}

fn image_error(err: ImageError, format: ImageFormat) -> FetchError {
    let detail = match &err {
        ImageError::Limits(_) => return FetchError::DecodeLimit,
        ImageError::Unsupported(u) => u.to_string(),
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file is truncated".to_owned()
        }
        other => other.to_string(),
    };
    FetchError::Corrupt {
        format: format_name(format),
        detail: detail.chars().take(160).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{encode, EncodeOptions, OutputFormat};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8, y as u8, 9, 255]));
        encode(&img, &EncodeOptions::default()).unwrap()
    }

    /// A PNG claiming `w`x`h` pixels whose only image data is one tiny zlib stream: the shape
    /// of a decompression bomb, minus the bomb. Written by the `png` crate (chunks and CRCs).
    fn png_header_only(w: u32, h: u32) -> Vec<u8> {
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

    /// A JPEG with an EXIF APP1 segment carrying `orientation`.
    fn jpeg_with_orientation(w: u32, h: u32, orientation: u16) -> Vec<u8> {
        let img = RgbaImage::from_pixel(w, h, image::Rgba([200, 10, 10, 255]));
        let opts = EncodeOptions {
            format: OutputFormat::Jpeg,
            ..Default::default()
        };
        let jpeg = encode(&img, &opts).unwrap();
        let mut tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01".to_vec();
        tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]);
        tiff.extend_from_slice(&orientation.to_be_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut app1 = b"Exif\x00\x00".to_vec();
        app1.extend_from_slice(&tiff);
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    #[test]
    fn decode_valid_png_roundtrips() {
        let img = decode(&png(5, 3), 100).unwrap();
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(4, 2).0, [4, 2, 9, 255]);
    }

    #[test]
    fn decode_refuses_huge_header_before_allocating() {
        let err = decode(&png_header_only(20_000, 20_000), 50_000_000).unwrap_err();
        assert!(
            matches!(err, FetchError::TooManyPixels { width: 20_000, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn decode_reports_truncated_empty_and_foreign_inputs() {
        let full = png(64, 64);
        let err = decode(&full[..full.len() / 2], 1 << 20).unwrap_err();
        assert!(matches!(err, FetchError::Corrupt { .. }), "{err:?}");
        assert_eq!(decode(&[], 10), Err(FetchError::Empty));
        assert_eq!(decode(b"hello, world", 10), Err(FetchError::NotAnImage));
        assert_eq!(
            decode(b"GIF89a\x01\x00\x01\x00", 10),
            Err(FetchError::Unsupported("GIF".into()))
        );
    }

    #[test]
    fn decode_applies_exif_orientation() {
        let img = decode(&jpeg_with_orientation(8, 4, 6), 1000).unwrap();
        assert_eq!(img.dimensions(), (4, 8));
        let img = decode(&jpeg_with_orientation(8, 4, 1), 1000).unwrap();
        assert_eq!(img.dimensions(), (8, 4));
    }
}
