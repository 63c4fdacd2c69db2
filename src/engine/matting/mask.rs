//! Pre- and post-processing around the matting networks: an RGBA photo to the normalised input
//! tensor at model resolution, the network's output to a min-max normalised soft mask at the
//! photo's full resolution (bilinear, in floating point, so edges stay anti-aliased), and
//! cutting a photo out with a mask. Pure image arithmetic; no weights.

use candle_core::{Device, Result, Tensor};
use image::imageops::{resize, FilterType};
use image::{GrayImage, ImageBuffer, Luma, RgbaImage};

/// How a family normalises its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Normalize {
    /// U²-Net as rembg feeds it: divided by the image maximum, then ImageNet mean and std.
    ImageNet,
    /// IS-Net / RMBG-1.4 as BRIA feeds it: `x / 255 − 0.5`.
    Centered,
}

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// `img` resized to `size × size` (bilinear) as a normalised `(1, 3, size, size)` tensor.
pub(super) fn to_input(
    img: &RgbaImage,
    size: u32,
    norm: Normalize,
    device: &Device,
) -> Result<Tensor> {
    let small = resize(img, size, size, FilterType::Triangle);
    let plane = (size * size) as usize;
    let mut data = vec![0f32; 3 * plane];
    let max = small
        .pixels()
        .flat_map(|p| p.0[..3].iter().copied())
        .max()
        .unwrap_or(0);
    let max = (f32::from(max) / 255.0).max(1e-6);
    for (i, p) in small.pixels().enumerate() {
        for c in 0..3 {
            let v = f32::from(p.0[c]) / 255.0;
            data[c * plane + i] = match norm {
                Normalize::ImageNet => (v / max - MEAN[c]) / STD[c],
                Normalize::Centered => v - 0.5,
            };
        }
    }
    Tensor::from_vec(data, (1, 3, size as usize, size as usize), device)
}

/// The first image of a `(N, 1, S, S)` prediction, min-max normalised, as a `width × height`
/// mask. A constant prediction has no edge: all foreground above 0.5, else all background.
pub(super) fn to_mask(pred: &Tensor, width: u32, height: u32) -> Result<GrayImage> {
    let (_, _, h, w) = pred.dims4()?;
    let values: Vec<f32> = pred.get(0)?.get(0)?.flatten_all()?.to_vec1()?;
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let normalised: Vec<f32> = if hi - lo > 1e-12 {
        values.iter().map(|v| (v - lo) / (hi - lo)).collect()
    } else {
        let fill = if lo > 0.5 { 1.0 } else { 0.0 };
        vec![fill; values.len()]
    };
    let small: ImageBuffer<Luma<f32>, Vec<f32>> =
        ImageBuffer::from_raw(w as u32, h as u32, normalised)
            .ok_or_else(|| candle_core::Error::Msg("mask buffer size".to_owned()))?;
    let full = resize(&small, width, height, FilterType::Triangle);
    Ok(GrayImage::from_fn(width, height, |x, y| {
        Luma([(full.get_pixel(x, y).0[0].clamp(0.0, 1.0) * 255.0).round() as u8])
    }))
}

/// `img` with its alpha multiplied by `mask` (resized bilinearly first if its size differs).
pub(crate) fn apply_mask(img: &RgbaImage, mask: &GrayImage) -> RgbaImage {
    let resized;
    let mask = if mask.dimensions() == img.dimensions() {
        mask
    } else {
        resized = resize(mask, img.width(), img.height(), FilterType::Triangle);
        &resized
    };
    let mut out = img.clone();
    for (p, m) in out.pixels_mut().zip(mask.pixels()) {
        let a = u32::from(p.0[3]) * u32::from(m.0[0]);
        p.0[3] = ((a + 127) / 255) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A disc mask: 255 inside radius 10 of the centre of a 32×32 image, 0 outside.
    fn disc() -> GrayImage {
        GrayImage::from_fn(32, 32, |x, y| {
            let d = ((x as f32 - 15.5).powi(2) + (y as f32 - 15.5).powi(2)).sqrt();
            Luma([if d < 10.0 { 255 } else { 0 }])
        })
    }

    #[test]
    fn apply_mask_upscaled_disc_soft_edge_transparent_corners() {
        let img = RgbaImage::from_pixel(128, 128, image::Rgba([200, 100, 50, 255]));
        let out = apply_mask(&img, &disc());
        assert_eq!(out.dimensions(), (128, 128));
        assert_eq!(out.get_pixel(0, 0).0[3], 0);
        assert_eq!(out.get_pixel(127, 127).0[3], 0);
        assert_eq!(out.get_pixel(64, 64).0, [200, 100, 50, 255]);
        let soft = out.pixels().filter(|p| p.0[3] > 0 && p.0[3] < 255).count();
        assert!(soft > 50, "only {soft} intermediate-alpha pixels");
    }

    #[test]
    fn apply_mask_existing_alpha_multiplies() {
        let img = RgbaImage::from_pixel(2, 1, image::Rgba([1, 2, 3, 128]));
        let mask = GrayImage::from_raw(2, 1, vec![255, 128]).unwrap();
        let out = apply_mask(&img, &mask);
        assert_eq!(out.get_pixel(0, 0).0[3], 128);
        assert_eq!(out.get_pixel(1, 0).0[3], 64);
    }

    #[test]
    fn to_mask_small_prediction_full_size_min_max() {
        let pred =
            Tensor::from_vec(vec![0.2f32, 0.4, 0.4, 0.6], (1, 1, 2, 2), &Device::Cpu).unwrap();
        let m = to_mask(&pred, 40, 30).unwrap();
        assert_eq!(m.dimensions(), (40, 30));
        assert_eq!(m.get_pixel(0, 0).0[0], 0);
        assert_eq!(m.get_pixel(39, 29).0[0], 255);
        assert!((100..156).contains(&m.get_pixel(20, 15).0[0]));
    }

    #[test]
    fn to_input_centered_white_is_half() {
        let img = RgbaImage::from_pixel(10, 10, image::Rgba([255, 255, 255, 255]));
        let x = to_input(&img, 4, Normalize::Centered, &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[1, 3, 4, 4]);
        let v: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    }
}
