//! What the integration tests share: the real peers they talk to (`peers`: moto, the Python
//! clients, and whether a missing one fails), a scripted HTTP server (`http`), the AWS door
//! fixtures (`aws`: moto buckets and queues, a fake Lambda Runtime API, cargo-lambda), RunPod's
//! platform (`runpod`), the endpoint API server (`serve`), the `merchgen` binary on a tiny model
//! (`binary`), in-process workers on a tiny model (`workers`), image bytes (`images`), logs
//! (`logs`) and the mockup fixtures (`mockups`).

pub(crate) mod aws;
pub(crate) mod binary;
pub(crate) mod http;
pub(crate) mod images;
pub(crate) mod logs;
pub(crate) mod mockups;
pub(crate) mod peers;
pub(crate) mod runpod;
pub(crate) mod serve;
pub(crate) mod workers;
