//! Settings of the SQS long-polling consumer (`merchgen sqs`). Kept apart from `Config`: only
//! that door reads them.

use clap::Args;

/// Settings of the SQS long-polling consumer (`merchgen sqs`, or no subcommand with
/// `MERCHGEN_SQS_QUEUE_URL` set).
#[derive(Debug, Clone, Args)]
pub struct SqsArgs {
    /// URL of the job queue (its RedrivePolicy decides when a poison message is dead-lettered).
    #[arg(long, env = "MERCHGEN_SQS_QUEUE_URL")]
    pub queue_url: String,
    /// SQS endpoint for SQS-compatible servers (`AWS_ENDPOINT_URL` also works).
    #[arg(long, env = "MERCHGEN_SQS_ENDPOINT")]
    pub(crate) sqs_endpoint: Option<String>,
    /// Long-poll wait per receive, in seconds (0 to 20).
    #[arg(long, env = "MERCHGEN_SQS_WAIT_SECS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub(crate) wait_secs: u32,
    /// Visibility timeout given to each received message and renewed while its job runs, in
    /// seconds. A crashed host's job reappears on the queue this long after its last heartbeat.
    #[arg(long, env = "MERCHGEN_SQS_VISIBILITY_SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=43_200))]
    pub(crate) visibility_secs: u32,
    /// Seconds between visibility heartbeats while a job runs (default: a third of the
    /// visibility timeout).
    #[arg(long, env = "MERCHGEN_SQS_HEARTBEAT_SECS")]
    pub(crate) heartbeat_secs: Option<u32>,
    /// Delay before a retryable failure is handed out again on its first delivery, in seconds;
    /// it doubles with each further delivery (ApproximateReceiveCount).
    #[arg(long, env = "MERCHGEN_SQS_RETRY_BASE_SECS", default_value_t = 10)]
    pub(crate) retry_base_secs: u32,
    /// Longest retry delay, in seconds.
    #[arg(long, env = "MERCHGEN_SQS_RETRY_MAX_SECS", default_value_t = 900, value_parser = clap::value_parser!(u32).range(0..=43_200))]
    pub(crate) retry_max_secs: u32,
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
    pub(crate) fn heartbeat_every_secs(&self) -> u32 {
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
mod tests {
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
