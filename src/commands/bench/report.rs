//! What `merchgen bench --random-weights` measured: one struct, printed as a table for people or
//! as one JSON line (`--json`) for scripts such as bench/gpu.sh. Stage figures are medians over
//! the timed runs; the warm-up run is reported apart (on a GPU it includes the driver's one-off
//! compilation of candle's PTX kernels, unless the compute cache already holds them).

use super::memory::MemoryReport;
use candle_transformers::models::flux;
use serde::Serialize;

/// Milliseconds of each stage in one run.
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct StageTimes {
    pub t5_ms: f64,
    pub clip_ms: f64,
    pub step_ms: Vec<f64>,
    pub vae_decode_ms: f64,
}

impl StageTimes {
    /// One line for progress output.
    pub(super) fn summary(&self) -> String {
        format!(
            "T5 {:.1} ms, CLIP {:.1} ms, steps {} ms, VAE {:.1} ms",
            self.t5_ms,
            self.clip_ms,
            list(&self.step_ms),
            self.vae_decode_ms
        )
    }
}

/// `[12.3, 45.6]`.
fn list(xs: &[f64]) -> String {
    let items: Vec<String> = xs.iter().map(|x| format!("{x:.1}")).collect();
    format!("[{}]", items.join(", "))
}

/// `11.90 B` or `3.61 M`.
pub(super) fn count(n: u64) -> String {
    if n >= 1_000_000_000 {
        format!("{:.2} B", n as f64 / 1e9)
    } else {
        format!("{:.2} M", n as f64 / 1e6)
    }
}

/// `69.45 TFLOP` or `1.234 GFLOP`.
fn flop(tflop: f64) -> String {
    if tflop >= 0.1 {
        format!("{tflop:.2} TFLOP")
    } else {
        format!("{:.3} GFLOP", tflop * 1e3)
    }
}

/// The whole benchmark result.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RandomReport {
    pub bench: &'static str,
    pub version: &'static str,
    pub(crate) cuda_build: bool,
    pub scale: String,
    pub device: String,
    /// The weight mode that ran: `bf16` (dequantized once at load) or `quantized`.
    pub weights: &'static str,
    /// As the pipeline reports it: `bf16-from-q4_0` (`f32-from-q4_0` on the CPU) or `q4_0`.
    pub weights_label: String,
    pub activation_dtype: String,
    pub width: u32,
    pub height: u32,
    pub steps: u32,
    pub images: u32,
    pub iterations: u32,
    pub(crate) text_tokens: usize,
    pub transformer_params: u64,
    /// FLOPs of one denoising step counted as FLUX's matrix multiplications (about 69.5 TFLOP per step at 1024² with 256 text tokens), in TFLOP.
    pub model_tflop_per_step: f64,
    /// Size of the Q4_0 transformer GGUF written for this run.
    pub gguf_bytes: u64,
    pub gguf_write_ms: f64,
    /// Reading the GGUF onto the device (and, for `bf16`, dequantizing it).
    pub gguf_load_ms: f64,
    pub gguf_load_gb_per_s: f64,
    /// Whether the file was dropped from the page cache before the load.
    pub gguf_cache: &'static str,
    pub t5_gguf_bytes: u64,
    pub t5_ms: f64,
    pub clip_ms: f64,
    pub step_ms_median: f64,
    pub step_ms_mean: f64,
    /// Every timed step, in order.
    pub step_ms: Vec<f64>,
    pub denoise_ms: f64,
    pub achieved_tflops: f64,
    pub vae_decode_ms: f64,
    pub warmup: StageTimes,
    #[serde(flatten)]
    pub memory: MemoryReport,
}

/// FLOPs of one FLUX forward: 2·(4 + 2·mlp_ratio)·N·d² per block for the token-wise linears
/// (24·N·d² at ratio 4) plus 4·N²·d for attention, N text plus image tokens, per image.
pub(super) fn flux_flops_per_step(
    cfg: &flux::model::Config,
    text_tokens: usize,
    width: u32,
    height: u32,
    images: u32,
) -> f64 {
    let d = cfg.hidden_size as f64;
    let n = (text_tokens + (width as usize / 16) * (height as usize / 16)) as f64;
    let blocks = (cfg.depth + cfg.depth_single_blocks) as f64;
    let per_block = 2.0 * (4.0 + 2.0 * cfg.mlp_ratio) * n * d * d + 4.0 * n * n * d;
    per_block * blocks * f64::from(images)
}

/// Median of `xs` (0 when empty).
pub(super) fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

impl RandomReport {
    /// The table for people.
    pub(super) fn print(&self) {
        let r = self;
        println!(
            "random-weight FLUX ({}) on {}, weights {} ({} activations), {}x{}, {} image(s), {} steps, {} timed run(s)",
            r.scale, r.device, r.weights_label, r.activation_dtype, r.width, r.height, r.images, r.steps, r.iterations
        );
        let (params, per_step) = (count(r.transformer_params), flop(r.model_tflop_per_step));
        println!("  transformer   {params} params, {per_step} per step");
        println!(
            "  GGUF load     {:.3} GB in {:.1} ms = {:.2} GB/s (page cache: {}; written in {:.0} ms)",
            gb(r.gguf_bytes), r.gguf_load_ms, r.gguf_load_gb_per_s, r.gguf_cache, r.gguf_write_ms
        );
        println!(
            "  T5 encode     {:.1} ms ({:.3} GB Q8_0 GGUF)",
            r.t5_ms,
            gb(r.t5_gguf_bytes)
        );
        println!("  CLIP encode   {:.1} ms", r.clip_ms);
        let rate = flop(r.achieved_tflops);
        println!(
            "  step          median {:.1} ms, mean {:.1} ms, {rate}/s; all {} ms",
            r.step_ms_median,
            r.step_ms_mean,
            list(&r.step_ms)
        );
        println!("  denoise       {:.1} ms", r.denoise_ms);
        println!("  VAE decode    {:.1} ms", r.vae_decode_ms);
        let m = &r.memory;
        println!(
            "  peak memory   {:.3} GB ({})",
            gb(m.peak_memory_bytes),
            m.peak_memory_source
        );
        println!("  warm-up run   {}", r.warmup.summary());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_flops_per_step_matches_the_reference_count() {
        // FLUX's matrix multiplications: 69.5 TFLOP per step at 1024², 256 text tokens.
        let f = flux_flops_per_step(&flux::model::Config::schnell(), 256, 1024, 1024, 1);
        assert!((f / 1e12 - 69.5).abs() < 0.2, "{f}");
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
