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
    /// Several keys with a name and limits each (a JSON array of `{key, name,
    /// requests_per_minute, jobs_per_day, concurrent_jobs}`; see `intake::serve::keys`), beside
    /// `MERCHGEN_API_KEY`.
    #[arg(long, env = "MERCHGEN_API_KEYS_FILE")]
    pub api_keys_file: Option<std::path::PathBuf>,
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
    /// Time a connection has to send a request's headers before it is closed, seconds (a
    /// client that trickles its headers holds a connection for nothing).
    #[arg(long, env = "MERCHGEN_SERVE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub(crate) header_timeout_secs: u64,
    /// Slowest a request body may arrive, bytes per second after the first
    /// `MERCHGEN_SERVE_BODY_GRACE_SECS`; a slower one is answered 408 and its connection closed.
    #[arg(long, env = "MERCHGEN_SERVE_BODY_MIN_RATE", default_value_t = 16_384)]
    pub(crate) body_min_rate: u64,
    /// Time any request body gets before `MERCHGEN_SERVE_BODY_MIN_RATE` applies, seconds.
    #[arg(long, env = "MERCHGEN_SERVE_BODY_GRACE_SECS", default_value_t = 10)]
    pub(crate) body_grace_secs: u64,
    /// Most connections open at once; one more is closed as soon as it is accepted.
    #[arg(long, env = "MERCHGEN_SERVE_MAX_CONNECTIONS", default_value_t = 256)]
    pub(crate) max_connections: usize,
}
