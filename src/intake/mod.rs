//! Doors: each turns what arrives into `JobRequest`s for the one `Worker`. One file per door;
//! pull-based doors implement `source::JobSource` and share the `pull` consumer loop.

pub mod lambda;
pub mod local;
pub mod pull;
pub mod runpod;
pub mod serve;
pub mod source;
pub mod sqs;
