//! Admission by memory: an estimate of a generation's peak device memory from the model's sizes
//! and the request, so a job that cannot fit is refused (or split into smaller batches) before
//! it reaches the device, instead of running it into an out-of-memory error.
//!
//! The capacity is the device memory left once the model is loaded (measured then; or
//! `MERCHGEN_DEVICE_MEMORY_GB` less the model's size). The estimate counts what candle
//! materialises on top of the weights: per denoising batch the
//! attention scores and their softmax (`batch x heads x tokens²`, tokens = `(w/16)(h/16)` image
//! tokens plus the T5 length), the block activations (`batch x tokens x hidden`, about sixteen
//! copies across the fused QKV/MLP projection of a single block); and for VAE decoding the
//! full-resolution feature maps (128 channels, about six live copies) and the mid-block
//! attention at 1/8 resolution. Denoising and decoding do not overlap. A margin of 20 % and
//! 512 MiB (allocator, CUDA context) is added. It errs on the high side: a job it admits fits.

/// What the estimate needs to know of a loaded model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Transformer hidden size and attention heads.
    pub(crate) hidden: u64,
    pub(crate) heads: u64,
    /// Bytes per activation of the transformer (4: f32 beside quantized weights; 2: bf16).
    pub(crate) act_bytes: u64,
    /// Bytes per activation of the VAE.
    pub(crate) vae_bytes: u64,
}

const MARGIN_BYTES: u64 = 512 << 20;

impl Footprint {
    /// Peak device bytes, above the loaded weights, of generating `batch` images of `width` x `height` with `text_tokens`
    /// T5 tokens.
    pub(crate) fn peak_bytes(&self, width: u32, height: u32, batch: u32, text_tokens: u32) -> u64 {
        let (w, h, b) = (u64::from(width), u64::from(height), u64::from(batch.max(1)));
        let tokens = (w / 16) * (h / 16) + u64::from(text_tokens);
        let attention = b * self.heads * tokens * tokens * self.act_bytes * 2;
        let blocks = b * tokens * self.hidden * self.act_bytes * 16;
        let denoise = attention + blocks;
        let latent_pixels = (w / 8) * (h / 8);
        let vae = b
            * (128 * w * h * self.vae_bytes * 6
                + latent_pixels * latent_pixels * self.vae_bytes * 2);
        let work = denoise.max(vae);
        work + work / 5 + MARGIN_BYTES
    }

    /// What `capacity` free bytes (with the model loaded) can do with this request.
    pub(crate) fn admit(
        &self,
        capacity: u64,
        width: u32,
        height: u32,
        num_images: u32,
        text_tokens: u32,
    ) -> Admission {
        let one = self.peak_bytes(width, height, 1, text_tokens);
        if one > capacity {
            return Admission::TooLarge {
                needs: one,
                capacity,
                largest_square: self.largest_square(capacity, text_tokens),
            };
        }
        let fits = (1..=num_images.max(1))
            .rev()
            .find(|b| self.peak_bytes(width, height, *b, text_tokens) <= capacity)
            .unwrap_or(1);
        Admission::Fits { batch: fits }
    }

    /// The largest square side (a multiple of 16) whose single image fits in `capacity`.
    pub(crate) fn largest_square(&self, capacity: u64, text_tokens: u32) -> u32 {
        (1..=512u32)
            .map(|k| k * 16)
            .take_while(|side| self.peak_bytes(*side, *side, 1, text_tokens) <= capacity)
            .last()
            .unwrap_or(0)
    }
}

/// The verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// It fits when generated at most `batch` images at a time.
    Fits { batch: u32 },
    /// Even one image does not fit.
    TooLarge {
        needs: u64,
        capacity: u64,
        /// Largest square side that would fit (0: none).
        largest_square: u32,
    },
}

/// Bytes free for jobs: `MERCHGEN_DEVICE_MEMORY_GB` less the model's bytes when set, else what
/// the device had free right after loading; `None` when unknown (no admission check then).
pub(crate) fn capacity_bytes(
    setting_gb: Option<f64>,
    model_bytes: u64,
    free_after_load: Option<u64>,
) -> Option<u64> {
    match setting_gb.filter(|g| *g > 0.0) {
        Some(gb) => Some(((gb * (1u64 << 30) as f64) as u64).saturating_sub(model_bytes)),
        None => free_after_load,
    }
}

/// This process's peak resident host memory so far (VmHWM of /proc/self/status; mapped file
/// pages count while mapped in), where the system tells.
pub(crate) fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib_field(&status, "VmHWM:")
}

/// This process's resident host memory now (VmRSS), where the system tells.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib_field(&status, "VmRSS:")
}

fn parse_kib_field(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_kib_field_reads_vmhwm() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    1234 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_kib_field(status, "VmHWM:"), Some(1234 * 1024));
        assert_eq!(parse_kib_field(status, "Nope:"), None);
    }

    const GIB: u64 = 1 << 30;

    /// FLUX.1 beside quantized weights: f32 activations, a bf16 VAE.
    const FLUX_Q8: Footprint = Footprint {
        hidden: 3072,
        heads: 24,
        act_bytes: 4,
        vae_bytes: 2,
    };

    #[test]
    fn a_1024_image_fits_an_80_gib_gpu_and_a_small_one_is_told_the_largest_square() {
        let one = FLUX_Q8.peak_bytes(1024, 1024, 1, 256);
        assert!(one > GIB && one < 20 * GIB, "{}", one / GIB);
        // An 80 GiB GPU with 13 GiB of weights loaded.
        assert_eq!(
            FLUX_Q8.admit(67 * GIB, 1024, 1024, 1, 256),
            Admission::Fits { batch: 1 }
        );
        match FLUX_Q8.admit(8 * GIB, 2048, 2048, 1, 256) {
            Admission::TooLarge { largest_square, .. } => {
                assert!(
                    largest_square > 0 && largest_square < 2048,
                    "{largest_square}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_that_does_not_fit_is_split_into_the_largest_that_does() {
        let capacity = FLUX_Q8.peak_bytes(1024, 1024, 2, 256);
        assert_eq!(
            FLUX_Q8.admit(capacity, 1024, 1024, 8, 256),
            Admission::Fits { batch: 2 }
        );
        assert!(FLUX_Q8.peak_bytes(1024, 1024, 3, 256) > capacity);
    }

    #[test]
    fn peak_grows_with_tokens_squared() {
        let small = FLUX_Q8.peak_bytes(512, 512, 1, 256);
        let big = FLUX_Q8.peak_bytes(2048, 2048, 1, 256);
        assert!(big > small * 40, "{small} {big}");
    }

    #[test]
    fn capacity_is_the_setting_less_the_model_else_what_was_free() {
        assert_eq!(capacity_bytes(Some(2.0), GIB, Some(5)), Some(GIB));
        assert_eq!(capacity_bytes(None, GIB, Some(5)), Some(5));
        assert_eq!(capacity_bytes(None, GIB, None), None);
    }
}
