//! What each subcommand does, behind `main.rs`. Each returns the process exit code.

pub mod bench;
pub mod invoke;
pub mod models;
pub mod net;
