//! The engine thread: one dedicated OS thread owns the device and the loaded `Generator`; the
//! async side sends it commands over a channel and awaits a oneshot reply. GPU work blocks, so it
//! is not dressed up as async. `work` is the protocol (commands, replies, guarded device work),
//! `state` what the thread owns and counts, `handle` the generator's async side, `finish_handle`
//! the finishing models', `serve` the thread's loop and `batching` how queued generations share a
//! forward pass.

mod batching;
mod finish_handle;
mod handle;
mod serve;
mod state;
#[cfg(test)]
mod tests;
mod work;

pub(crate) use finish_handle::FinishHandle;
pub use handle::EngineHandle;
pub use state::{EngineOptions, Loaded};
pub use work::Progress;
