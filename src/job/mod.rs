//! The job contract: wire types (`spec`), parsing and event shapes (`parse`), validation into
//! `ValidJob` (`validate`), style presets (`styles`) and the outcome every door reports (`outcome`).

pub mod allow;
pub mod finishing;
pub mod outcome;
pub mod parse;
pub mod spec;
pub mod styles;
pub mod validate;

pub use outcome::{JobOutcome, JobStatus, Timings};
pub use spec::JobSpec;
pub use validate::{GenerationDefaults, ImageSource, Limits, ValidGeneration, ValidJob};
