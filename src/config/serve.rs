//! Settings of `merchgen serve`, RunPod's endpoint API on a local port.

use clap::Args;

/// Settings of `merchgen serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port, printed at start).
    #[arg(long, env = "MERCHGEN_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Address to listen on (`0.0.0.0` in a container).
    #[arg(long, env = "MERCHGEN_HOST", default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Key clients must send in `Authorization` (raw or `Bearer`); none: no check.
    #[arg(long, env = "MERCHGEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<crate::redact::Redacted>,
    /// Most jobs waiting; `run` answers 429 beyond it.
    #[arg(long, env = "MERCHGEN_SERVE_QUEUE_CAPACITY", default_value_t = 64)]
    pub(crate) queue_capacity: usize,
    /// Longest `runsync` wait before it answers with the job's current status, seconds
    /// (`?wait=ms` may ask for less).
    #[arg(long, env = "MERCHGEN_SERVE_RUNSYNC_WAIT_SECS", default_value_t = 90)]
    pub(crate) runsync_wait_secs: u64,
    /// Execution timeout of jobs whose `policy.executionTimeout` says none, seconds.
    #[arg(
        long,
        env = "MERCHGEN_SERVE_EXECUTION_TIMEOUT_SECS",
        default_value_t = 600
    )]
    pub(crate) execution_timeout_secs: u64,
    /// Lifespan of jobs whose `policy.ttl` says none (queue and run included), seconds.
    #[arg(long, env = "MERCHGEN_SERVE_TTL_SECS", default_value_t = 86_400)]
    pub(crate) ttl_secs: u64,
    /// How long finished jobs stay readable through `status`, seconds.
    #[arg(long, env = "MERCHGEN_SERVE_RETENTION_SECS", default_value_t = 1_800)]
    pub(crate) retention_secs: u64,
}
