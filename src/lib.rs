//! merchgen: a serverless GPU worker that turns jobs into generated designs, product mockups,
//! stored outputs and a signed completion webhook. See README.md and docs/.

pub mod app;
pub mod backoff;
pub mod cli;
pub mod commands;
pub mod config;
pub(crate) mod encode;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod intake;
pub mod job;
pub mod memory;
pub(crate) mod metrics;
pub mod mockup;
pub mod net;
pub mod output;
pub(crate) mod prepress;
pub mod redact;
pub mod s3;
pub(crate) mod shutdown;
pub mod telemetry;
pub mod webhook;
pub mod worker;
