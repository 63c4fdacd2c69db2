//! The one door runtime: how a job runs whatever door it came through. `run` runs one job
//! under its deadline (`MERCHGEN_JOB_TIMEOUT`, a Lambda function's remaining time, RunPod's
//! `policy.executionTimeout`) and the shutdown grace period, cancels it between steps when either
//! runs out, gives it up when it does not stop, and says when the device broke so the door takes
//! no more jobs. `runner` is the seam to the pipeline (`JobRunner`, which `Worker` implements),
//! `source` the seam to pull-based queues (`JobSource`, the settlement rule), and `pull` the
//! consumer loop over any `JobSource`. The job metrics (`/metrics`) are `crate::metrics`, the
//! backoff rule `crate::backoff`.
//!
//! Nothing here knows a particular door, queue or device.

pub mod pull;
pub(crate) mod run;
pub mod runner;
pub(crate) mod source;

pub mod memory_source;

pub(crate) use run::run_job;
pub use run::RunRules;
pub use runner::JobRunner;
