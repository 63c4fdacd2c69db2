//! The job contract: wire types (`spec`), parsing and event shapes (`parse`), what a job is
//! checked against (`limits`, `allow`), validation (`validate`) into a `ValidJob` (`valid`),
//! style presets (`styles`), the finishing steps (`finishing`) and the outcome every door
//! reports (`outcome`). It knows no model and no door.

pub mod allow;
pub(crate) mod finishing;
pub(crate) mod limits;
pub mod outcome;
pub mod parse;
pub(crate) mod print;
pub mod spec;
pub mod strict_json;
pub(crate) mod styles;
pub(crate) mod valid;
pub mod validate;

pub use limits::{GenerationDefaults, Limits};
pub use outcome::Timings;
pub use outcome::{JobOutcome, JobStatus};
pub use spec::JobSpec;
pub use valid::{ImageSource, InitImage, LoraSource, TrueCfg, ValidJob, ValidLora, ValidWebhook};
pub use valid::{ValidGeneration, ValidMockups, ValidOutput};
