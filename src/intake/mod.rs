//! Doors: each turns what arrives into `JobRequest`s for the one `Worker`. One folder or file per
//! door (`runpod`, `serve`, `lambda`, `sqs`, and `event_file` for `merchgen invoke`); none imports
//! another. What several doors
//! share lives beside them: `runtime` (how a job runs on any door: deadline, shutdown grace,
//! cancel, a broken device, the pull-based consumer loop), `runpod_protocol` (RunPod's bodies and
//! bucket settings, spoken by `runpod` and `serve`), `claim_check` (SQS bodies kept in S3, read
//! by `sqs` and `lambda`) and `sqs_batch` (an SQS event batch record by record, run by `lambda`
//! and by `event_file` for sample events).

pub(crate) mod claim_check;
pub(crate) mod event_file;
pub mod lambda;
pub mod runpod;
pub(crate) mod runpod_protocol;
pub mod runtime;
pub mod serve;
pub mod sqs;
pub(crate) mod sqs_batch;
