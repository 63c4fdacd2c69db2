//! Doors: each turns what arrives into `JobRequest`s for the one `Worker`. One folder or file per
//! door (`runpod`, `serve`, `lambda`, `sqs`, `local`); none imports another. What several doors
//! share lives beside them: `runtime` (how a job runs on any door: deadline, shutdown grace,
//! cancel, a broken device, the pull-based consumer loop), `runpod_protocol` (RunPod's bodies and
//! bucket settings, spoken by `runpod` and `serve`) and `claim_check` (SQS bodies kept in S3,
//! read by `sqs` and `lambda`).

pub mod claim_check;
pub mod lambda;
pub mod local;
pub mod runpod;
pub mod runpod_protocol;
pub mod runtime;
pub mod serve;
pub mod sqs;
