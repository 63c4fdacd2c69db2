//! RunPod's protocol as both RunPod doors speak it: the worker door (`runpod`) and the local
//! endpoint API (`serve`). `wire` holds the result, error and progress bodies; `bucket` RunPod's
//! bucket settings (`BUCKET_*` variables and a request's `s3Config`).

pub(crate) mod bucket;
pub(crate) mod wire;
