//! merchgen: a serverless GPU worker that turns jobs into generated designs, product mockups,
//! stored outputs and a signed completion webhook. See DESIGN.md in the shared folder and README.md.

pub mod encode;
pub mod error;
pub mod job;
pub mod engine;
