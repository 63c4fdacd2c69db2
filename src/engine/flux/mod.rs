//! `FluxPipeline`: FLUX.1 text-to-image with candle. CLIP pooled + T5 hidden states, noise from
//! the seed on the CPU, the schnell (or dev) sigma schedule, Euler steps in f32 as diffusers does,
//! VAE decode, `num_images` variations batched.
//!
//! Its parts: `text/` the text encoders (CLIP, T5, merchgen's quantized T5); `loader` loads the
//! pipeline (through `weights` for GGUF, `dense` for safetensors, `names` for diffusers/BFL
//! naming, `infer` for sizes from the tensors) onto merchgen's own `transformer/`; `lora/` the
//! jobs' LoRAs; `pipeline` holds the loaded model and its encoders, `generate` runs a request
//! (with `denoise`, `schedule`, `noise`, `img2img`, `kontext`), `batch` jobs sharing a forward
//! pass, `warm_up` the pass after loading.

mod batch;
mod denoise;
pub(crate) mod dense;
mod generate;
pub(crate) mod img2img;
pub mod infer;
pub(crate) mod kontext;
pub(crate) mod loader;
pub(crate) mod lora;
pub mod names;
pub(crate) mod noise;
mod pipeline;
pub mod schedule;
pub mod text;
pub mod transformer;
mod warm_up;
pub mod weights;

pub(crate) use denoise::euler_step;
pub use pipeline::{FluxPipeline, LoadOptions};

/// The model config candle's own module would use, re-exported for the benchmark.
pub use candle_transformers::models::flux::model::Config as FluxConfig;
