//! What the integration tests share: the real peers they talk to (`peers`: moto, the Python
//! clients, and whether a missing one fails), a scripted HTTP server (`http`), the AWS door
//! fixtures (`aws`: moto buckets and queues, a fake Lambda Runtime API, cargo-lambda), RunPod's
//! platform (`runpod`), the endpoint API server (`serve`), the `merchgen` binary on a tiny model
//! (`binary`), in-process workers on a tiny model (`workers`), image bytes (`images`), logs
//! (`logs`) and the mockup fixtures (`mockups`).

pub mod aws;
pub mod binary;
pub mod http;
pub mod images;
pub mod logs;
pub mod mockups;
pub mod peers;
pub mod runpod;
pub mod serve;
pub mod workers;
