//! Doors: each turns what arrives into `JobRequest`s for the one `Worker`. One file per door.

pub mod local;
pub mod runpod;
pub mod serve;
