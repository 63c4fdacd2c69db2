//! Every integration test in one binary (one link of the crate and its dependencies instead of
//! one per file, which dominated the test build). Each module is one area's tests; the
//! `support` module holds their shared peers and helpers. `tests/peers_required.rs` stays a
//! binary of its own: it changes the process environment.

mod support;

mod batching;
mod bench_random;
mod diffusers_tiny;
mod edit_jobs;
mod engine_tiny;
mod fetch_inputs;
mod fetch_ssrf;
mod img2img_tiny;
mod job_contract;
mod lambda_door;
mod lambda_emulators;
mod layering;
mod lora_jobs;
mod mapped_loading;
mod mockups;
mod mockups_templates;
mod names_round_trip;
mod pipeline_tiny;
mod print_ready;
mod print_shop;
mod runpod_bucket;
mod runpod_local;
mod runpod_stop_pod;
mod runpod_worker;
mod s3_job;
mod s3_output;
mod serve_abuse;
mod serve_api;
mod serve_python;
mod sqs_crash;
mod sqs_door;
mod webhook_delivery;
