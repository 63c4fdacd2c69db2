//! The engine: the one thread that owns the device, one folder per model family, and the parts
//! they share.
//! - `request`: what a generation is asked for; `generator`: the `Generator` seam a model family
//!   implements and what it reports; `error`: `EngineError`;
//! - `thread/`: the one thread that owns the device and runs generate, matting and upscale;
//! - `files/`: finding and describing model files (hub cache, presets, manifests, `.pth`);
//! - `gguf/`: memory-mapped GGUF weights; `memory`: admission by device memory;
//! - `flux/`: FLUX.1 text-to-image, image-to-image and edits (loading, text encoders, sampling);
//! - `matting/`: background removal (U²-Net, IS-Net); `upscale/`: Real-ESRGAN super-resolution;
//! - `finish`: the finishing models as the engine thread holds them (loaded on first use);
//! - `tiny/`: tiny random-weight models of every family, in the real formats, for tests;
//! - `device`: picking and naming the device.
//!
//! Nothing here knows about doors, jobs, outputs or webhooks: the worker turns a job into a
//! `GenerateRequest` and the engine's reports into the job's outcome.

pub(crate) mod device;
pub(crate) mod error;
pub mod files;
pub(crate) mod finish;
pub mod flux;
pub(crate) mod generator;
pub mod gguf;
pub mod matting;
pub(crate) mod memory;
pub(crate) mod request;
pub mod thread;
pub mod tiny;
pub mod upscale;

pub use error::EngineError;
pub use generator::{GenerateOutput, Generator, LoadReport, ModelInfo};
pub use generator::{GeneratedImage, ModelDefaults, StageTimings};
pub use request::{BatchKey, BatchPolicy, NoiseOverride};
pub use request::{
    BatchMember, GenerateRequest, ImageFit, InitImage, LoraInput, StepCallback, TrueCfg,
};
pub use thread::EngineHandle;
pub(crate) use thread::FinishHandle;
