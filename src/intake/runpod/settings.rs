//! The door's resolved settings: URLs, client, timings and output choices, built once from
//! `RunpodArgs` and shared by the take loop and its background tasks.

use super::client::PlatformClient;
use super::urls::Urls;
use crate::backoff::Backoff;
use crate::config::{Config, RunpodArgs, RunpodProgress};
use crate::intake::runpod_protocol::bucket::{Bucket, BucketVars};
use crate::intake::runtime::RunRules;
use crate::net::guard::AddressPolicy;
use crate::output::OutputConfig;
use std::time::Duration;

/// Everything the platform loop needs besides the worker.
#[derive(Debug, Clone)]
pub struct Settings {
    pub(crate) urls: Urls,
    pub client: PlatformClient,
    /// This worker's id (`RUNPOD_POD_ID`, else a random one).
    pub(crate) worker_id: String,
    /// Heartbeats are sent only with a key, a pod id and a ping URL (as the SDK does).
    pub(crate) heartbeat: bool,
    pub(crate) ping_interval: Duration,
    pub progress: RunpodProgress,
    pub(crate) take_batch: u32,
    /// Jobs in flight at most (`MERCHGEN_PIPELINE_DEPTH`).
    pub depth: usize,
    pub(crate) take_timeout: Duration,
    pub(crate) post_timeout: Duration,
    pub(crate) done_retry: Duration,
    pub throttle: Duration,
    pub(crate) error_backoff: Duration,
    pub(crate) max_result_bytes: usize,
    /// How long the job in flight may run on after SIGTERM.
    pub rules: RunRules,
    /// `BUCKET_*` bucket for jobs that name no destination (unless `MERCHGEN_OUTPUT` is set).
    pub(crate) env_bucket: Option<Bucket>,
    /// Output settings that per-job buckets start from.
    pub(crate) base_output: OutputConfig,
    /// Which literal addresses a request's `s3Config.endpointUrl` may name.
    pub addresses: AddressPolicy,
}

/// A setting that cannot work, with how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "RUNPOD_WEBHOOK_GET_JOB and RUNPOD_WEBHOOK_POST_OUTPUT must both be set to talk to RunPod"
    )]
    MissingUrls,
    #[error(transparent)]
    Bucket(#[from] crate::intake::runpod_protocol::bucket::BucketError),
    #[error("cannot start the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

impl Settings {
    /// Resolve the platform settings (URLs needed) from the arguments.
    pub fn platform(config: &Config, args: &RunpodArgs) -> Result<Settings, SettingsError> {
        let (Some(take), Some(done)) = (args.job_take_url.as_deref(), args.job_done_url.as_deref())
        else {
            return Err(SettingsError::MissingUrls);
        };
        Self::build(config, args, take, done)
    }

    /// Settings for a local test run (no platform URLs needed).
    pub fn local(config: &Config, args: &RunpodArgs) -> Result<Settings, SettingsError> {
        Self::build(config, args, "", "")
    }

    fn build(
        config: &Config,
        args: &RunpodArgs,
        take: &str,
        done: &str,
    ) -> Result<Settings, SettingsError> {
        let pod_id = args.pod_id.clone().filter(|p| !p.is_empty());
        let worker_id = pod_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let urls = Urls::new(take, done, args.ping_url.as_deref(), &worker_id);
        let has_key = args.api_key.as_ref().is_some_and(|k| !k.is_empty());
        let has_ping = args.ping_url.as_deref().is_some_and(|p| !p.is_empty());
        let vars = BucketVars {
            endpoint_url: args.bucket_endpoint_url.clone(),
            access_key_id: args.bucket_access_key_id.clone(),
            secret_access_key: args.bucket_secret_access_key.clone(),
            bucket: args.bucket.clone(),
        };
        let bucket = Bucket::from_vars(&vars)?;
        if bucket.is_some() && config.output.is_some() {
            tracing::warn!("both MERCHGEN_OUTPUT and BUCKET_ENDPOINT_URL are set; MERCHGEN_OUTPUT is the default destination");
        }
        Ok(Settings {
            urls,
            client: PlatformClient::new(args.api_key.as_ref())?,
            worker_id,
            heartbeat: has_key && pod_id.is_some() && has_ping,
            ping_interval: Duration::from_millis(args.ping_interval_ms.max(100)),
            progress: args.progress,
            take_batch: args.take_batch.max(1),
            depth: config.pipeline_depth.max(1),
            take_timeout: Duration::from_secs(args.take_timeout_secs.max(1)),
            post_timeout: Duration::from_secs(args.post_timeout_secs.max(1)),
            done_retry: Duration::from_secs(args.done_retry_secs),
            throttle: Duration::from_millis(args.throttle_ms),
            error_backoff: Duration::from_millis(args.error_backoff_ms.max(10)),
            max_result_bytes: args.max_result_bytes,
            rules: RunRules::from_config(config, "runpod"),
            env_bucket: bucket.filter(|_| config.output.is_none()),
            base_output: config.output_config(),
            addresses: AddressPolicy::new(config.fetch_allow.clone()),
        })
    }
}

impl Settings {
    /// Pauses after a failed platform call (a job-take, a job-done post): the first
    /// `MERCHGEN_RUNPOD_ERROR_BACKOFF_MS`, doubling up to eight times it.
    pub(crate) fn error_backoff(&self) -> Backoff {
        Backoff::new(self.error_backoff, self.error_backoff * 8)
    }

    /// Output settings of one job: its request's `s3Config` bucket (its endpoint through the
    /// address guard), else the `BUCKET_*` bucket, else `None` (the worker's own:
    /// `MERCHGEN_OUTPUT`, or `inline`).
    pub(crate) async fn output_for(
        &self,
        s3_config: Option<&serde_json::Value>,
    ) -> Result<Option<crate::worker::OutputOverride>, crate::error::JobError> {
        if let Some(cfg) = s3_config {
            let bucket = Bucket::from_s3_config(cfg, &self.addresses)?;
            bucket.check_resolved(&self.addresses).await?;
            return Ok(Some(bucket.output_override(&self.base_output)));
        }
        Ok(self
            .env_bucket
            .as_ref()
            .map(|b| b.output_override(&self.base_output)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn error_backoff_doubles_and_caps_at_eight_times_the_setting() {
        let cli = Cli::try_parse_from(["merchgen", "runpod", "--error-backoff-ms", "100"]).unwrap();
        let Some(Command::Runpod(args)) = cli.command else {
            panic!("parsed as another command");
        };
        let settings = Settings::local(&cli.config, &args).unwrap();
        let got: Vec<u64> = (1..=6)
            .map(|n| settings.error_backoff().delay(n).as_millis() as u64)
            .collect();
        assert_eq!(got, [100, 200, 400, 800, 800, 800]);
    }
}
