//! Settings of `merchgen runpod`, RunPod's serverless worker protocol. RunPod's own variables
//! keep their names (`RUNPOD_*`, `BUCKET_*`); merchgen's are `MERCHGEN_RUNPOD_*`.

use clap::Args;

/// Settings of `merchgen runpod`. RunPod sets the `RUNPOD_*` variables on its workers.
#[derive(Debug, Clone, Args)]
pub struct RunpodArgs {
    /// Run one job locally and exit 0 or 1, like RunPod's `--test_input`: `{"input": {...}}`.
    /// Without it and without RUNPOD_WEBHOOK_GET_JOB, `./test_input.json` is run.
    #[arg(long, env = "MERCHGEN_RUNPOD_TEST_INPUT")]
    pub test_input: Option<String>,
    /// Job-take URL template (`$ID` / `$RUNPOD_POD_ID`: this worker's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_GET_JOB")]
    pub(crate) job_take_url: Option<String>,
    /// Job-done URL template (`$RUNPOD_POD_ID`: this worker's id, `$ID`: the job's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_POST_OUTPUT")]
    pub(crate) job_done_url: Option<String>,
    /// Heartbeat URL template (`$RUNPOD_POD_ID`: this worker's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_PING")]
    pub(crate) ping_url: Option<String>,
    /// Heartbeat interval in milliseconds.
    #[arg(long, env = "RUNPOD_PING_INTERVAL", default_value_t = 10_000)]
    pub(crate) ping_interval_ms: u64,
    /// Key sent (raw, as RunPod's SDK does) in `Authorization` to the platform.
    #[arg(long, env = "RUNPOD_AI_API_KEY", hide_env_values = true)]
    pub api_key: Option<crate::redact::Redacted>,
    /// This worker's id; a random one when unset (then no heartbeat is sent).
    #[arg(long, env = "RUNPOD_POD_ID")]
    pub(crate) pod_id: Option<String>,
    /// S3-compatible endpoint for outputs, usually with the bucket in it
    /// (`https://BUCKET.s3.REGION.amazonaws.com`, `http://host:9000/BUCKET`).
    #[arg(long, env = "BUCKET_ENDPOINT_URL")]
    pub(crate) bucket_endpoint_url: Option<String>,
    /// Access key id for BUCKET_ENDPOINT_URL.
    #[arg(long, env = "BUCKET_ACCESS_KEY_ID")]
    pub(crate) bucket_access_key_id: Option<String>,
    /// Secret key for BUCKET_ENDPOINT_URL.
    #[arg(long, env = "BUCKET_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub(crate) bucket_secret_access_key: Option<crate::redact::Redacted>,
    /// Bucket (optionally `bucket/prefix`) when BUCKET_ENDPOINT_URL does not name one.
    #[arg(long, env = "MERCHGEN_RUNPOD_BUCKET")]
    pub bucket: Option<String>,
    /// Progress updates: `job` (per denoising step when the job subscribes to `progress` in
    /// `webhook.events`), `steps` (per step for every job) or `off`.
    #[arg(
        long,
        env = "MERCHGEN_RUNPOD_PROGRESS",
        value_enum,
        default_value = "job"
    )]
    pub progress: RunpodProgress,
    /// Jobs taken per request when idle (above 1, the batch job-take URL is used).
    #[arg(long, env = "MERCHGEN_RUNPOD_TAKE_BATCH", default_value_t = 1)]
    pub(crate) take_batch: u32,
    /// Longest wait for one job-take or job-stop answer (the platform long-polls), seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_TAKE_TIMEOUT_SECS", default_value_t = 90)]
    pub(crate) take_timeout_secs: u64,
    /// Timeout of one job-done or progress post, seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_POST_TIMEOUT_SECS", default_value_t = 60)]
    pub(crate) post_timeout_secs: u64,
    /// How long job-done is retried before the result is given up, seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_DONE_RETRY_SECS", default_value_t = 600)]
    pub(crate) done_retry_secs: u64,
    /// Pause after the platform answers 429, milliseconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_THROTTLE_MS", default_value_t = 5_000)]
    pub(crate) throttle_ms: u64,
    /// First pause after a failed platform call, milliseconds (doubles up to 8x).
    #[arg(
        long,
        env = "MERCHGEN_RUNPOD_ERROR_BACKOFF_MS",
        default_value_t = 1_000
    )]
    pub(crate) error_backoff_ms: u64,
    /// Largest job-done body posted; a larger result becomes an `upload_failed` error.
    #[arg(
        long,
        env = "MERCHGEN_RUNPOD_MAX_RESULT_BYTES",
        default_value_t = 10_000_000
    )]
    pub(crate) max_result_bytes: usize,
}

/// When `merchgen runpod` posts denoising progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunpodProgress {
    Job,
    Steps,
    Off,
}

impl RunpodArgs {
    /// The settings from the environment alone (`merchgen` with no subcommand on RunPod).
    pub fn from_env() -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            args: RunpodArgs,
        }
        <EnvOnly as clap::Parser>::try_parse_from(["merchgen"]).map(|e| e.args)
    }
}
