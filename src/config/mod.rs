//! The only place that reads command-line flags and environment variables. Every setting is a
//! flag with a `MERCHGEN_*` variable (clap); platform variables (`HF_*`, `AWS_*`, `RUNPOD_*`)
//! keep their own names and are read here too, once (`platform`). `Config` holds what every
//! door shares and builds each layer's settings from it; each door's own flags have a file
//! (`runpod`, `serve`, `sqs`), as do the job limits (`job_limits`) and the warm-ups (`warm_up`).

mod job_limits;
mod platform;
mod runpod;
mod serve;
mod sqs;
mod warm_up;

pub(crate) use job_limits::LimitArgs;
pub use platform::{on_lambda, on_runpod, sqs_queue_url};
pub use runpod::{RunpodArgs, RunpodProgress};
pub use serve::ServeArgs;
pub use sqs::SqsArgs;
pub use warm_up::{MockupWarmup, WarmUp};

use platform::{env_flag, hf_cache_dir};

use crate::engine::files::hub::HubSettings;
use crate::engine::flux::weights::WeightsMode;
use crate::fetch::FetchConfig;
use crate::job::allow::StorageAllow;
use crate::job::Limits;
use crate::net::guard::AddressPolicy;
use crate::output::OutputConfig;
use crate::s3::S3Settings;
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
    pub(crate) batch_wait_ms: u64,
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
    pub(crate) pipeline_depth: usize,
    /// The device's memory in GiB for memory admission (a job that cannot fit fails at once,
    /// naming `width`; a batch that cannot is split). Unset: what the device had free once the
    /// model was loaded.
    #[arg(long, env = "MERCHGEN_DEVICE_MEMORY_GB", global = true)]
    pub(crate) device_memory_gb: Option<f64>,
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
    pub(crate) mockup_warmup: String,
    /// Smallest width or height a job may ask for.
    #[arg(long, env = "MERCHGEN_MIN_SIDE", default_value_t = 256, global = true)]
    pub(crate) min_side: u32,
    /// Largest width or height a job may ask for.
    #[arg(long, env = "MERCHGEN_MAX_SIDE", default_value_t = 2048, global = true)]
    pub(crate) max_side: u32,
    /// Background-removal model of `"background": "remove"`: a preset (`merchgen models list`)
    /// or a `.pth` / `.safetensors` file. Loaded on the first job that needs it.
    #[arg(long, env = "MERCHGEN_MATTING_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_MATTING, global = true)]
    pub(crate) matting_model: String,
    /// x4 super-resolution model of `"upscale": 4`: a preset or a weights file.
    #[arg(long, env = "MERCHGEN_UPSCALE_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_UPSCALE_X4, global = true)]
    pub(crate) upscale_model: String,
    /// x2 super-resolution model of `"upscale": 2` (the x4 model and a resample stand in when
    /// it is not in the cache).
    #[arg(long, env = "MERCHGEN_UPSCALE_X2_MODEL", default_value = crate::engine::files::net_presets::DEFAULT_UPSCALE_X2, global = true)]
    pub(crate) upscale_x2_model: String,
    /// Side of the square tiles the upscaler works on (bounds device memory at any size).
    #[arg(
        long,
        env = "MERCHGEN_UPSCALE_TILE",
        default_value_t = 256,
        global = true
    )]
    pub(crate) upscale_tile: u32,
    /// Pixels each upscaler tile overlaps its neighbours by (seamless blend).
    #[arg(
        long,
        env = "MERCHGEN_UPSCALE_TILE_OVERLAP",
        default_value_t = 16,
        global = true
    )]
    pub(crate) upscale_tile_overlap: u32,
    /// Largest number of output pixels one job may make (stored images after upscaling,
    /// mockups and print files, every variation): a job over it fails up front.
    #[arg(
        long,
        env = "MERCHGEN_MAX_JOB_PIXELS",
        default_value_t = 400_000_000,
        global = true
    )]
    pub(crate) max_job_pixels: u64,
    /// The other per-job caps (`MERCHGEN_MAX_IMAGES`, `_STEPS`, `_PROMPT_CHARS`, ...).
    #[command(flatten)]
    pub(crate) caps: LimitArgs,
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
    pub(crate) shutdown_grace_secs: u64,
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
    pub(crate) job_timeout_secs: u64,
    /// The job queue's `maxReceiveCount` (its redrive policy), for Lambda's SQS batches; the
    /// `sqs` door reads it from the queue itself. A retryable failure before the last receive
    /// is announced as `job.retrying`, one on the last receive as `job.failed`. Unset: every
    /// retryable failure of a queued job is `job.retrying` (the queue hands it out again).
    #[arg(long, env = "MERCHGEN_SQS_MAX_RECEIVES", global = true)]
    pub(crate) sqs_max_receives: Option<u32>,
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
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,

    /// S3 endpoint for S3-compatible stores (`AWS_ENDPOINT_URL` also works).
    #[arg(long, env = "MERCHGEN_S3_ENDPOINT", global = true)]
    pub(crate) s3_endpoint: Option<String>,
    /// Use path-style S3 URLs (most S3-compatible servers need it).
    #[arg(
        long,
        env = "MERCHGEN_S3_PATH_STYLE",
        default_value_t = false,
        global = true
    )]
    pub(crate) s3_path_style: bool,
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
    pub(crate) inline_max_bytes: usize,

    /// Comma-separated CIDRs that input URLs and webhooks may reach despite the private-address
    /// rules, e.g. `10.0.0.0/8` for a private deployment.
    #[arg(
        long,
        env = "MERCHGEN_FETCH_ALLOW",
        value_delimiter = ',',
        global = true
    )]
    pub(crate) fetch_allow: Vec<ipnet::IpNet>,
    /// Timeout for fetching one input, in seconds.
    #[arg(
        long,
        env = "MERCHGEN_FETCH_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub(crate) fetch_timeout_secs: u64,
    /// Largest input image, in bytes.
    #[arg(long, env = "MERCHGEN_FETCH_MAX_BYTES", default_value_t = 32 * 1024 * 1024, global = true)]
    pub(crate) fetch_max_bytes: usize,
    /// Largest LoRA file a job may name, in bytes (a rank-64 FLUX LoRA in bf16 is ~330 MB).
    #[arg(long, env = "MERCHGEN_LORA_MAX_BYTES", default_value_t = 512 * 1024 * 1024, global = true)]
    pub(crate) lora_max_bytes: usize,
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
    pub(crate) webhook_secret: Option<Secret>,
    /// Attempts per webhook delivery (first try included).
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_ATTEMPTS",
        default_value_t = 5,
        global = true
    )]
    pub(crate) webhook_attempts: u32,
    /// First webhook retry backoff in milliseconds (doubles per attempt, with jitter).
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_BACKOFF_MS",
        default_value_t = 500,
        global = true
    )]
    pub(crate) webhook_backoff_ms: u64,
    /// Timeout of one webhook attempt, in seconds.
    #[arg(
        long,
        env = "MERCHGEN_WEBHOOK_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub(crate) webhook_timeout_secs: u64,
}

impl Config {
    /// The mockup warm-up setting.
    pub(crate) fn mockup_warmup(&self) -> Result<MockupWarmup, String> {
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
    pub(crate) fn batch_policy(&self) -> crate::engine::BatchPolicy {
        crate::engine::BatchPolicy {
            max_images: self.max_batch,
            wait: std::time::Duration::from_millis(self.batch_wait_ms),
        }
    }

    /// Where model files are looked up, from the Hugging Face variables.
    pub(crate) fn hub_settings(&self) -> HubSettings {
        HubSettings {
            cache_dir: hf_cache_dir(),
            offline: env_flag("HF_HUB_OFFLINE"),
            token: std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty()),
        }
    }

    /// The LoRA cache and limits.
    pub(crate) fn lora_settings(&self) -> crate::worker::loras::LoraSettings {
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
    pub(crate) fn finish_settings(&self) -> crate::engine::finish::FinishSettings {
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

    /// The S3 service of outputs, `s3://` inputs and claim checks.
    pub fn s3_settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.s3_endpoint.clone(),
            force_path_style: self.s3_path_style,
            region: None,
            credentials: None,
            connect_guard: None,
        }
    }

    pub(crate) fn output_config(&self) -> OutputConfig {
        OutputConfig {
            s3: self.s3_settings(),
            presign_expiry_secs: self.presign_expiry_secs,
            public_base_url: self.public_base_url.clone(),
            inline_max_bytes: self.inline_max_bytes,
            cache_control: Some("public, max-age=31536000, immutable".to_owned()),
        }
    }

    pub(crate) fn fetch_config(&self, allow_paths: bool) -> FetchConfig {
        FetchConfig {
            timeout_secs: self.fetch_timeout_secs,
            max_bytes: self.fetch_max_bytes,
            allow_cidrs: self.fetch_allow.clone(),
            allow_paths,
            s3: self.s3_settings(),
            ..FetchConfig::default()
        }
    }

    pub(crate) fn webhook_config(&self) -> WebhookConfig {
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
