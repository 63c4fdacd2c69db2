//! The only place that reads command-line flags and environment variables. Every setting is a
//! flag with a `MERCHGEN_*` variable (clap); platform variables (`HF_*`, `AWS_*`, `RUNPOD_*`)
//! keep their own names and are read here too, once.

mod limits;

pub use limits::LimitArgs;

use crate::engine::files::hub::HubSettings;
use crate::engine::flux::weights::WeightsMode;
use crate::fetch::guard::AddressPolicy;
use crate::fetch::FetchConfig;
use crate::job::allow::StorageAllow;
use crate::job::validate::Limits;
use crate::output::OutputConfig;
use crate::webhook::{Secret, WebhookConfig};
use clap::Args;
use std::path::PathBuf;

/// Settings shared by every door.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Model: a preset name (`merchgen models list`), a folder with `merchgen-model.json`, or a
    /// manifest file.
    #[arg(long, env = "MERCHGEN_MODEL", default_value = crate::engine::files::presets::DEFAULT_PRESET, global = true)]
    pub model: String,
    /// Device: `auto`, `cpu` or `cuda:N`.
    #[arg(long, env = "MERCHGEN_DEVICE", default_value = "auto", global = true)]
    pub device: String,
    /// Transformer weights: `auto` (dense if it fits in free device memory), `bf16`, `quantized`.
    #[arg(
        long,
        env = "MERCHGEN_WEIGHTS",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub weights: WeightsMode,
    /// The warm-up pass after loading (one tiny generation, so the first job is as fast as the
    /// second): `auto` runs it on a GPU only, `on`, `off`.
    #[arg(
        long = "warm-up",
        env = "MERCHGEN_WARMUP",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub warm_up: WarmUp,
    /// Most images denoised in one forward pass: a job's variations, and queued jobs of the same
    /// size, steps, guidance and text length together (each job keeps its own seeds, images and
    /// outcome; a job that fails or is cancelled in a batch fails alone).
    #[arg(long, env = "MERCHGEN_MAX_BATCH", default_value_t = 4, global = true)]
    pub max_batch: u32,
    /// Milliseconds the engine waits for another compatible job to fill a batch (0: it batches
    /// only jobs already queued, adding no latency). Worth raising with
    /// `MERCHGEN_PIPELINE_DEPTH` at twice the batch size (one batch generating while the last
    /// one's jobs render and upload), on a GPU where a batch costs less than its jobs one by one.
    #[arg(
        long,
        env = "MERCHGEN_BATCH_WAIT_MS",
        default_value_t = 0,
        global = true
    )]
    pub batch_wait_ms: u64,
    /// Jobs in flight at most on the SQS, RunPod and `serve` doors: with 2 (the default) the
    /// engine generates the next job while the last one renders mockups, encodes, uploads and
    /// sends its webhook; 1 runs one job at a time. Each job is still settled alone, after its
    /// `result.json` is stored.
    #[arg(
        long,
        env = "MERCHGEN_PIPELINE_DEPTH",
        default_value_t = 2,
        global = true
    )]
    pub pipeline_depth: usize,
    /// The device's memory in GiB for memory admission (a job that cannot fit fails at once,
    /// naming `width`; a batch that cannot is split). Unset: what the device had free once the
    /// model was loaded.
    #[arg(long, env = "MERCHGEN_DEVICE_MEMORY_GB", global = true)]
    pub device_memory_gb: Option<f64>,
    /// Default destination for jobs that name none: `s3://bucket/prefix`, a folder, or `inline`.
    #[arg(long, env = "MERCHGEN_OUTPUT", global = true)]
    pub output: Option<String>,
    /// Folder of custom mockup templates (each a subfolder with `manifest.json`).
    #[arg(long, env = "MERCHGEN_TEMPLATES", global = true)]
    pub templates: Option<PathBuf>,
    /// Mockup layers drawn from process start, while the model loads: `all` (every product at
    /// its canvas size), `none`, or products separated by commas, each with an optional
    /// `@SIZE` (longest side in pixels), as in `tshirt,mug@1200`. Drawn layers stay in memory
    /// (about 40 MB per product and size at 2000 px); a job needing others draws them itself.
    #[arg(
        long = "mockup-warmup",
        env = "MERCHGEN_MOCKUP_WARMUP",
        default_value = "all",
        global = true
    )]
    pub mockup_warmup: String,
    /// Smallest width or height a job may ask for.
    #[arg(long, env = "MERCHGEN_MIN_SIDE", default_value_t = 256, global = true)]
    pub min_side: u32,
    /// Largest width or height a job may ask for.
    #[arg(long, env = "MERCHGEN_MAX_SIDE", default_value_t = 2048, global = true)]
    pub max_side: u32,
    /// Background-removal model of `"background": "remove"`: a preset (`merchgen models list`)
    /// or a `.pth` / `.safetensors` file. Loaded on the first job that needs it.
    #[arg(long, env = "MERCHGEN_MATTING_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_MATTING, global = true)]
    pub matting_model: String,
    /// x4 super-resolution model of `"upscale": 4`: a preset or a weights file.
    #[arg(long, env = "MERCHGEN_UPSCALE_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_UPSCALE_X4, global = true)]
    pub upscale_model: String,
    /// x2 super-resolution model of `"upscale": 2` (the x4 model and a resample stand in when
    /// it is not in the cache).
    #[arg(long, env = "MERCHGEN_UPSCALE_X2_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_UPSCALE_X2, global = true)]
    pub upscale_x2_model: String,
    /// Side of the square tiles the upscaler works on (bounds device memory at any size).
    #[arg(
        long,
        env = "MERCHGEN_UPSCALE_TILE",
        default_value_t = 256,
        global = true
    )]
    pub upscale_tile: u32,
    /// Pixels each upscaler tile overlaps its neighbours by (seamless blend).
    #[arg(
        long,
        env = "MERCHGEN_UPSCALE_TILE_OVERLAP",
        default_value_t = 16,
        global = true
    )]
    pub upscale_tile_overlap: u32,
    /// Largest number of output pixels one job may make (stored images after upscaling,
    /// mockups and print files, every variation): a job over it fails up front.
    #[arg(
        long,
        env = "MERCHGEN_MAX_JOB_PIXELS",
        default_value_t = 400_000_000,
        global = true
    )]
    pub max_job_pixels: u64,
    /// The other per-job caps (`MERCHGEN_MAX_IMAGES`, `_STEPS`, `_PROMPT_CHARS`, ...).
    #[command(flatten)]
    pub caps: LimitArgs,
    /// Log format: `auto` (JSON when deployed, text on a terminal), `json` or `text`.
    #[arg(
        long,
        env = "MERCHGEN_LOG_FORMAT",
        default_value = "auto",
        global = true
    )]
    pub log_format: String,
    /// Seconds a job in flight may take to finish after SIGTERM before it is cancelled.
    #[arg(
        long,
        env = "MERCHGEN_SHUTDOWN_GRACE_SECS",
        default_value_t = 30,
        global = true
    )]
    pub shutdown_grace_secs: u64,
    /// Longest any job may take, in seconds from when its door received it, on every door
    /// (0: no limit of the worker's own; a door's deadline, such as Lambda's remaining time or
    /// `policy.executionTimeout`, still applies). Past it the job is cancelled between steps and
    /// fails as `timeout`.
    #[arg(
        long,
        env = "MERCHGEN_JOB_TIMEOUT",
        default_value_t = 1800,
        global = true
    )]
    pub job_timeout_secs: u64,
    /// Where jobs from remote doors (RunPod, serve, Lambda, SQS) may write: comma-separated
    /// `s3://bucket[/prefix]` patterns (a trailing `*` matches any continuation) and absolute
    /// local folders. Unset: any bucket, no folder (`inline` and the worker's own default
    /// destination are always allowed; `merchgen invoke` is not checked).
    #[arg(
        long,
        env = "MERCHGEN_OUTPUT_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub output_allow: Vec<String>,
    /// Which buckets `image.s3` / `design.s3` of remote jobs may read: comma-separated
    /// `s3://bucket[/prefix]` patterns. Unset: any bucket the worker's credentials reach.
    #[arg(
        long,
        env = "MERCHGEN_INPUT_S3_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub input_s3_allow: Vec<String>,
    /// Serve `/metrics` (Prometheus text: jobs by door, status and error code, stage latency,
    /// model load time) on this address, e.g. `0.0.0.0:9090`, for the RunPod, SQS and Lambda
    /// doors (`merchgen serve` has `/metrics` on its own port). Unset: no metrics server.
    #[arg(long, env = "MERCHGEN_METRICS_ADDR", global = true)]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// S3 endpoint for S3-compatible stores (`AWS_ENDPOINT_URL` also works).
    #[arg(long, env = "MERCHGEN_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// Use path-style S3 URLs (most S3-compatible servers need it).
    #[arg(
        long,
        env = "MERCHGEN_S3_PATH_STYLE",
        default_value_t = false,
        global = true
    )]
    pub s3_path_style: bool,
    /// Lifetime of presigned output URLs, in seconds.
    #[arg(
        long,
        env = "MERCHGEN_PRESIGN_EXPIRY_SECS",
        default_value_t = 86_400,
        global = true
    )]
    pub presign_expiry_secs: u64,
    /// Public base URL of the bucket; when set, output URLs are plain instead of presigned.
    #[arg(long, env = "MERCHGEN_PUBLIC_BASE_URL", global = true)]
    pub public_base_url: Option<String>,
    /// Largest total size of outputs returned inline (base64), in bytes.
    #[arg(long, env = "MERCHGEN_INLINE_MAX_BYTES", default_value_t = 8 * 1024 * 1024, global = true)]
    pub inline_max_bytes: usize,

    /// Comma-separated CIDRs that input URLs and webhooks may reach despite the private-address
    /// rules, e.g. `10.0.0.0/8` for a private deployment.
    #[arg(
        long,
        env = "MERCHGEN_FETCH_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub fetch_allow: Vec<ipnet::IpNet>,
    /// Timeout for fetching one input, in seconds.
    #[arg(
        long,
        env = "MERCHGEN_FETCH_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub fetch_timeout_secs: u64,
    /// Largest input image, in bytes.
    #[arg(long, env = "MERCHGEN_FETCH_MAX_BYTES", default_value_t = 32 * 1024 * 1024, global = true)]
    pub fetch_max_bytes: usize,
    /// Largest LoRA file a job may name, in bytes (a rank-64 FLUX LoRA in bf16 is ~330 MB).
    #[arg(long, env = "MERCHGEN_LORA_MAX_BYTES", default_value_t = 512 * 1024 * 1024, global = true)]
    pub lora_max_bytes: usize,
    /// The LoRA cache folder (default: `merchgen-loras` beside the hub cache, on the model volume).
    #[arg(long, env = "MERCHGEN_LORA_CACHE", global = true)]
    pub lora_cache: Option<PathBuf>,

    /// Webhook signing secret (`whsec_<base64>`).
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,
    /// Attempts per webhook delivery (first try included).
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_ATTEMPTS",
        default_value_t = 5,
        global = true
    )]
    pub webhook_attempts: u32,
    /// First webhook retry backoff in milliseconds (doubles per attempt, with jitter).
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_BACKOFF_MS",
        default_value_t = 500,
        global = true
    )]
    pub webhook_backoff_ms: u64,
    /// Timeout of one webhook attempt, in seconds.
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub webhook_timeout_secs: u64,
}

/// Which mockup layers a worker draws at start-up (`MERCHGEN_MOCKUP_WARMUP`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MockupWarmup {
    /// Every product at its canvas size.
    All,
    /// These (product, longest side) pairs; empty for `none`.
    Only(Vec<(String, Option<u32>)>),
}

impl MockupWarmup {
    /// Parse the setting; the error names what is wrong.
    pub fn parse(text: &str) -> Result<MockupWarmup, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "all" | "" => return Ok(MockupWarmup::All),
            "none" => return Ok(MockupWarmup::Only(Vec::new())),
            _ => {}
        }
        let mut pairs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (product, size) = match item.split_once('@') {
                Some((product, size)) => {
                    let size: u32 = size.trim().parse().map_err(|_| {
                        format!("MERCHGEN_MOCKUP_WARMUP: {item:?}: the size after @ must be a whole number of pixels")
                    })?;
                    if !(16..=crate::mockup::MAX_SIZE).contains(&size) {
                        return Err(format!(
                            "MERCHGEN_MOCKUP_WARMUP: {item:?}: the size must be within 16..={}",
                            crate::mockup::MAX_SIZE
                        ));
                    }
                    (product.trim(), Some(size))
                }
                None => (item, None),
            };
            pairs.push((product.to_owned(), size));
        }
        Ok(MockupWarmup::Only(pairs))
    }
}

impl Config {
    /// The mockup warm-up setting.
    pub fn mockup_warmup(&self) -> Result<MockupWarmup, String> {
        MockupWarmup::parse(&self.mockup_warmup)
    }

    /// Job limits from the settings.
    pub fn limits(&self) -> Limits {
        self.caps.apply(Limits {
            min_side: self.min_side,
            max_side: self.max_side,
            max_job_pixels: self.max_job_pixels,
            addresses: AddressPolicy::new(self.fetch_allow.clone()),
            output_allow: Some(
                StorageAllow::parse("MERCHGEN_OUTPUT_ALLOW", &self.output_allow, true)
                    .unwrap_or_else(|_| StorageAllow::nothing("MERCHGEN_OUTPUT_ALLOW")),
            ),
            input_s3_allow: Some(
                StorageAllow::parse("MERCHGEN_INPUT_S3_ALLOW", &self.input_s3_allow, false)
                    .unwrap_or_else(|_| StorageAllow::nothing("MERCHGEN_INPUT_S3_ALLOW")),
            ),
            ..Limits::default()
        })
    }

    /// Start-up checks of cross-field mistakes, with how to fix them.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.min_side > self.max_side || self.min_side < 16 || !self.min_side.is_multiple_of(16)
        {
            anyhow::bail!(
                "MERCHGEN_MIN_SIDE ({}) must be a multiple of 16, at least 16 and not above MERCHGEN_MAX_SIDE ({})",
                self.min_side,
                self.max_side
            );
        }
        StorageAllow::parse("MERCHGEN_OUTPUT_ALLOW", &self.output_allow, true)
            .map_err(anyhow::Error::msg)?;
        StorageAllow::parse("MERCHGEN_INPUT_S3_ALLOW", &self.input_s3_allow, false)
            .map_err(anyhow::Error::msg)?;
        self.mockup_warmup().map_err(anyhow::Error::msg)?;
        if self.max_batch == 0 {
            anyhow::bail!("MERCHGEN_MAX_BATCH must be at least 1");
        }
        if self.upscale_tile < 16 || self.upscale_tile_overlap * 2 >= self.upscale_tile {
            anyhow::bail!(
                "MERCHGEN_UPSCALE_TILE ({}) must be at least 16 and more than twice MERCHGEN_UPSCALE_TILE_OVERLAP ({})",
                self.upscale_tile,
                self.upscale_tile_overlap
            );
        }
        self.caps.check()
    }

    /// How the engine batches queued jobs (`MERCHGEN_MAX_BATCH`, `MERCHGEN_BATCH_WAIT_MS`).
    pub fn batch_policy(&self) -> crate::engine::BatchPolicy {
        crate::engine::BatchPolicy {
            max_images: self.max_batch,
            wait: std::time::Duration::from_millis(self.batch_wait_ms),
        }
    }

    /// Where model files are looked up, from the Hugging Face variables.
    pub fn hub_settings(&self) -> HubSettings {
        HubSettings {
            cache_dir: hf_cache_dir(),
            offline: env_flag("HF_HUB_OFFLINE"),
            token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()),
        }
    }

    /// The LoRA cache and limits.
    pub fn lora_settings(&self) -> crate::worker::loras::LoraSettings {
        let dir = self.lora_cache.clone().unwrap_or_else(|| {
            let hub = hf_cache_dir();
            hub.parent().unwrap_or(&hub).join("merchgen-loras")
        });
        crate::worker::loras::LoraSettings {
            cache: crate::engine::files::lora_cache::LoraCache::new(dir),
            max_bytes: self.lora_max_bytes,
            hub_endpoint: std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "https://huggingface.co".to_owned()),
        }
    }

    /// The finishing models (matting, upscaling) and how to find them.
    pub fn finish_settings(&self) -> crate::engine::finish::FinishSettings {
        crate::engine::finish::FinishSettings {
            hub: self.hub_settings(),
            matting: self.matting_model.clone(),
            upscale_x4: self.upscale_model.clone(),
            upscale_x2: self.upscale_x2_model.clone(),
            tiles: crate::engine::upscale::TileOptions {
                tile: self.upscale_tile,
                overlap: self.upscale_tile_overlap,
            },
            download: true,
        }
    }

    pub fn output_config(&self) -> OutputConfig {
        OutputConfig {
            s3_endpoint: self.s3_endpoint.clone(),
            s3_force_path_style: self.s3_path_style,
            s3_region: None,
            presign_expiry_secs: self.presign_expiry_secs,
            public_base_url: self.public_base_url.clone(),
            inline_max_bytes: self.inline_max_bytes,
            cache_control: Some("public, max-age=31536000, immutable".to_owned()),
            s3_credentials: None,
        }
    }

    pub fn fetch_config(&self, allow_paths: bool) -> FetchConfig {
        FetchConfig {
            timeout_secs: self.fetch_timeout_secs,
            max_bytes: self.fetch_max_bytes,
            allow_cidrs: self.fetch_allow.clone(),
            allow_paths,
            output_cfg: self.output_config(),
            ..FetchConfig::default()
        }
    }

    pub fn webhook_config(&self) -> WebhookConfig {
        WebhookConfig {
            secret: self.webhook_secret.clone(),
            timeout_secs: self.webhook_timeout_secs,
            max_attempts: self.webhook_attempts.max(1),
            base_backoff_ms: self.webhook_backoff_ms,
            allow_cidrs: self.fetch_allow.clone(),
            ..WebhookConfig::default()
        }
    }
}

/// `HF_HUB_CACHE`, else `HF_HOME/hub`, else RunPod's cached-model volume when present, else
/// `~/.cache/huggingface/hub`.
fn hf_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join("hub");
    }
    let runpod = PathBuf::from("/runpod-volume/huggingface-cache/hub");
    if runpod.is_dir() {
        return runpod;
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache/huggingface/hub")
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// True when running under AWS Lambda (its Runtime API variable is set).
pub fn on_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some()
}

/// True when running as a RunPod serverless worker.
pub fn on_runpod() -> bool {
    std::env::var_os("RUNPOD_WEBHOOK_GET_JOB").is_some()
}

/// The SQS queue URL when this host should consume one.
pub fn sqs_queue_url() -> Option<String> {
    std::env::var("MERCHGEN_SQS_QUEUE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

// ---------------------------------------------------------------------------------------------
// RunPod doors: `merchgen runpod` (the serverless worker) and `merchgen serve` (RunPod's
// endpoint API on a local port). RunPod's own variables keep their names (RUNPOD_*, BUCKET_*).
// ---------------------------------------------------------------------------------------------

/// Settings of `merchgen runpod`. RunPod sets the `RUNPOD_*` variables on its workers.
#[derive(Debug, Clone, Args)]
pub struct RunpodArgs {
    /// Run one job locally and exit 0 or 1, like RunPod's `--test_input`: `{"input": {...}}`.
    /// Without it and without RUNPOD_WEBHOOK_GET_JOB, `./test_input.json` is run.
    #[arg(long, env = "MERCHGEN_RUNPOD_TEST_INPUT")]
    pub test_input: Option<String>,
    /// Job-take URL template (`$ID` / `$RUNPOD_POD_ID`: this worker's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_GET_JOB")]
    pub job_take_url: Option<String>,
    /// Job-done URL template (`$RUNPOD_POD_ID`: this worker's id, `$ID`: the job's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_POST_OUTPUT")]
    pub job_done_url: Option<String>,
    /// Heartbeat URL template (`$RUNPOD_POD_ID`: this worker's id).
    #[arg(long, env = "RUNPOD_WEBHOOK_PING")]
    pub ping_url: Option<String>,
    /// Heartbeat interval in milliseconds.
    #[arg(long, env = "RUNPOD_PING_INTERVAL", default_value_t = 10_000)]
    pub ping_interval_ms: u64,
    /// Key sent (raw, as RunPod's SDK does) in `Authorization` to the platform.
    #[arg(long, env = "RUNPOD_AI_API_KEY", hide_env_values = true)]
    pub api_key: Option<crate::redact::Redacted>,
    /// This worker's id; a random one when unset (then no heartbeat is sent).
    #[arg(long, env = "RUNPOD_POD_ID")]
    pub pod_id: Option<String>,
    /// S3-compatible endpoint for outputs, usually with the bucket in it
    /// (`https://BUCKET.s3.REGION.amazonaws.com`, `http://host:9000/BUCKET`).
    #[arg(long, env = "BUCKET_ENDPOINT_URL")]
    pub bucket_endpoint_url: Option<String>,
    /// Access key id for BUCKET_ENDPOINT_URL.
    #[arg(long, env = "BUCKET_ACCESS_KEY_ID")]
    pub bucket_access_key_id: Option<String>,
    /// Secret key for BUCKET_ENDPOINT_URL.
    #[arg(long, env = "BUCKET_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub bucket_secret_access_key: Option<crate::redact::Redacted>,
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
    pub take_batch: u32,
    /// Longest wait for one job-take or job-stop answer (the platform long-polls), seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_TAKE_TIMEOUT_SECS", default_value_t = 90)]
    pub take_timeout_secs: u64,
    /// Timeout of one job-done or progress post, seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_POST_TIMEOUT_SECS", default_value_t = 60)]
    pub post_timeout_secs: u64,
    /// How long job-done is retried before the result is given up, seconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_DONE_RETRY_SECS", default_value_t = 600)]
    pub done_retry_secs: u64,
    /// Pause after the platform answers 429, milliseconds.
    #[arg(long, env = "MERCHGEN_RUNPOD_THROTTLE_MS", default_value_t = 5_000)]
    pub throttle_ms: u64,
    /// First pause after a failed platform call, milliseconds (doubles up to 8x).
    #[arg(
        long,
        env = "MERCHGEN_RUNPOD_ERROR_BACKOFF_MS",
        default_value_t = 1_000
    )]
    pub error_backoff_ms: u64,
    /// Largest job-done body posted; a larger result becomes an `upload_failed` error.
    #[arg(
        long,
        env = "MERCHGEN_RUNPOD_MAX_RESULT_BYTES",
        default_value_t = 10_000_000
    )]
    pub max_result_bytes: usize,
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
    pub queue_capacity: usize,
    /// Longest `runsync` wait before it answers with the job's current status, seconds
    /// (`?wait=ms` may ask for less).
    #[arg(long, env = "MERCHGEN_SERVE_RUNSYNC_WAIT_SECS", default_value_t = 90)]
    pub runsync_wait_secs: u64,
    /// Execution timeout of jobs whose `policy.executionTimeout` says none, seconds.
    #[arg(
        long,
        env = "MERCHGEN_SERVE_EXECUTION_TIMEOUT_SECS",
        default_value_t = 600
    )]
    pub execution_timeout_secs: u64,
    /// Lifespan of jobs whose `policy.ttl` says none (queue and run included), seconds.
    #[arg(long, env = "MERCHGEN_SERVE_TTL_SECS", default_value_t = 86_400)]
    pub ttl_secs: u64,
    /// How long finished jobs stay readable through `status`, seconds.
    #[arg(long, env = "MERCHGEN_SERVE_RETENTION_SECS", default_value_t = 1_800)]
    pub retention_secs: u64,
}

// ---------------------------------------------------------------------------------------------
// SQS door settings (`merchgen sqs`). Kept apart from `Config`: only that door reads them.

/// Settings of the SQS long-polling consumer (`merchgen sqs`, or no subcommand with
/// `MERCHGEN_SQS_QUEUE_URL` set).
#[derive(Debug, Clone, Args)]
pub struct SqsArgs {
    /// URL of the job queue (its RedrivePolicy decides when a poison message is dead-lettered).
    #[arg(long, env = "MERCHGEN_SQS_QUEUE_URL")]
    pub queue_url: String,
    /// SQS endpoint for SQS-compatible servers (`AWS_ENDPOINT_URL` also works).
    #[arg(long, env = "MERCHGEN_SQS_ENDPOINT")]
    pub sqs_endpoint: Option<String>,
    /// Long-poll wait per receive, in seconds (0 to 20).
    #[arg(long, env = "MERCHGEN_SQS_WAIT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub wait_secs: u32,
    /// Visibility timeout given to each received message and renewed while its job runs, in
    /// seconds. A crashed host's job reappears on the queue this long after its last heartbeat.
    #[arg(long, env = "MERCHGEN_SQS_VISIBILITY_SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    pub visibility_secs: u32,
    /// Seconds between visibility heartbeats while a job runs (default: a third of the
    /// visibility timeout).
    #[arg(long, env = "MERCHGEN_SQS_HEARTBEAT_SECS")]
    pub heartbeat_secs: Option<u32>,
    /// Delay before a retryable failure is handed out again on its first delivery, in seconds;
    /// it doubles with each further delivery (ApproximateReceiveCount).
    #[arg(long, env = "MERCHGEN_SQS_RETRY_BASE_SECS", default_value_t = 10)]
    pub retry_base_secs: u32,
    /// Longest retry delay, in seconds.
    #[arg(long, env = "MERCHGEN_SQS_RETRY_MAX_SECS", default_value_t = 900, value_parser = clap::value_parser!(u32).range(0..=43_200))]
    pub retry_max_secs: u32,
}

impl SqsArgs {
    /// The settings from the environment alone (the door chosen with no subcommand).
    pub fn from_env() -> Result<SqsArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct EnvOnly {
            #[command(flatten)]
            sqs: SqsArgs,
        }
        <EnvOnly as clap::Parser>::try_parse_from(["merchgen"]).map(|e| e.sqs)
    }

    /// Seconds between heartbeats: the setting, else a third of the visibility timeout.
    pub fn heartbeat_every_secs(&self) -> u32 {
        self.heartbeat_secs
            .unwrap_or(self.visibility_secs / 3)
            .clamp(1, self.visibility_secs.max(1))
    }

    /// Start-up checks of cross-field mistakes, with how to fix them.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.heartbeat_every_secs() >= self.visibility_secs && self.visibility_secs > 1 {
            anyhow::bail!(
                "MERCHGEN_SQS_HEARTBEAT_SECS ({}) must be below MERCHGEN_SQS_VISIBILITY_SECS ({}), or a running job's message reappears on the queue",
                self.heartbeat_every_secs(),
                self.visibility_secs
            );
        }
        if self.retry_base_secs > self.retry_max_secs {
            anyhow::bail!(
                "MERCHGEN_SQS_RETRY_BASE_SECS must not exceed MERCHGEN_SQS_RETRY_MAX_SECS"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod sqs_args_tests {
    use super::SqsArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        sqs: SqsArgs,
    }

    fn parse(args: &[&str]) -> Result<SqsArgs, clap::Error> {
        let argv = [
            "merchgen",
            "--queue-url",
            "https://sqs.us-east-1.amazonaws.com/1/jobs",
        ];
        Wrap::try_parse_from(argv.iter().chain(args)).map(|w| w.sqs)
    }

    #[test]
    fn sqs_args_defaults_heartbeat_to_a_third_of_visibility() {
        let args = parse(&[]).unwrap();
        assert_eq!((args.wait_secs, args.visibility_secs), (20, 120));
        assert_eq!(args.heartbeat_every_secs(), 40);
        assert_eq!(
            parse(&["--visibility-secs", "2"])
                .unwrap()
                .heartbeat_every_secs(),
            1
        );
        args.check().unwrap();
    }

    #[test]
    fn sqs_args_rejects_out_of_range_and_contradictory_settings() {
        assert!(parse(&["--wait-secs", "21"]).is_err());
        assert!(parse(&["--visibility-secs", "0"]).is_err());
        let slow_beat = parse(&["--visibility-secs", "30", "--heartbeat-secs", "30"]).unwrap();
        assert!(slow_beat
            .check()
            .unwrap_err()
            .to_string()
            .contains("MERCHGEN_SQS_HEARTBEAT_SECS"));
        let inverted = parse(&["--retry-base-secs", "60", "--retry-max-secs", "10"]).unwrap();
        assert!(inverted.check().is_err());
    }
}

/// When the engine runs its warm-up pass after loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WarmUp {
    /// On a GPU (where the first kernels compile and allocate), not on the CPU.
    Auto,
    On,
    Off,
}

impl WarmUp {
    pub fn runs_on(self, device: &candle_core::Device) -> bool {
        match self {
            WarmUp::Auto => !device.is_cpu(),
            WarmUp::On => true,
            WarmUp::Off => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mockup_warmup_reads_all_none_and_products_with_sizes() {
        assert_eq!(MockupWarmup::parse("all"), Ok(MockupWarmup::All));
        assert_eq!(
            MockupWarmup::parse(" None "),
            Ok(MockupWarmup::Only(vec![]))
        );
        assert_eq!(
            MockupWarmup::parse("tshirt, mug@1200"),
            Ok(MockupWarmup::Only(vec![
                ("tshirt".to_owned(), None),
                ("mug".to_owned(), Some(1200))
            ]))
        );
        let err = MockupWarmup::parse("mug@big").unwrap_err();
        assert!(
            err.contains("MERCHGEN_MOCKUP_WARMUP") && err.contains("mug@big"),
            "{err}"
        );
        assert!(MockupWarmup::parse("mug@8").unwrap_err().contains("16..="));
    }
}
