//! Outbound HTTP to addresses that jobs name (input URLs, LoRA files, webhooks, a request's
//! S3 endpoint): which addresses may be reached (`guard`), name resolution that enforces it at
//! connect time (`resolve`), and the one guarded client every such request goes through
//! (`client`). Ground floor: imports nothing of merchgen's.

pub(crate) mod client;
pub mod guard;
pub(crate) mod resolve;

pub(crate) use client::{GuardedClient, Redirects};
pub use guard::AddressPolicy;
