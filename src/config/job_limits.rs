//! The job limits as settings (`MERCHGEN_MAX_*`, listed by `merchgen --help`): how many images,
//! steps, prompt characters, mockup pixels and print DPI one job may ask for. Defaults are
//! `Limits::default()`, so a worker configured with nothing keeps the limits it always had.
//! Values that would refuse every job, or let one job exhaust the host, fail at start-up.

use crate::job::Limits;
use clap::Args;

/// Per-job caps, flattened into `Config`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LimitArgs {
    /// Most images one job may ask for (`num_images`).
    #[arg(long, env = "MERCHGEN_MAX_IMAGES", default_value_t = Limits::default().max_images, global = true)]
    pub(crate) max_images: u32,
    /// Most denoising steps one job may ask for (`num_inference_steps`).
    #[arg(long, env = "MERCHGEN_MAX_STEPS", default_value_t = Limits::default().max_steps, global = true)]
    pub(crate) max_steps: u32,
    /// Longest `prompt` (and `negative_prompt`), in characters.
    #[arg(long, env = "MERCHGEN_MAX_PROMPT_CHARS", default_value_t = Limits::default().max_prompt_chars, global = true)]
    pub(crate) max_prompt_chars: usize,
    /// Largest mockup side a job may ask for (`mockups.size`), in pixels.
    #[arg(long, env = "MERCHGEN_MAX_MOCKUP_SIDE", default_value_t = Limits::default().max_mockup_side, global = true)]
    pub(crate) max_mockup_side: u32,
    /// Highest print-file resolution a job may ask for (`output.print_dpi`).
    #[arg(long, env = "MERCHGEN_MAX_PRINT_DPI", default_value_t = Limits::default().max_print_dpi, global = true)]
    pub(crate) max_print_dpi: u32,
}

/// Largest sensible mockup side: beyond it one mockup's layers alone take gigabytes.
const MOCKUP_SIDE_CEILING: u32 = 16_384;

impl LimitArgs {
    /// Copy the caps into `limits`.
    pub(crate) fn apply(&self, limits: Limits) -> Limits {
        Limits {
            max_images: self.max_images,
            max_steps: self.max_steps,
            max_prompt_chars: self.max_prompt_chars,
            max_mockup_side: self.max_mockup_side,
            max_print_dpi: self.max_print_dpi,
            ..limits
        }
    }

    /// Start-up check: every cap must admit at least the smallest job, and none may be absurd.
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        let at_least = |name: &str, value: u64, min: u64| {
            if value < min {
                anyhow::bail!("{name} ({value}) must be at least {min}, or every job is refused");
            }
            Ok(())
        };
        at_least("MERCHGEN_MAX_IMAGES", self.max_images.into(), 1)?;
        at_least("MERCHGEN_MAX_STEPS", self.max_steps.into(), 1)?;
        at_least("MERCHGEN_MAX_PROMPT_CHARS", self.max_prompt_chars as u64, 1)?;
        // Mockup sizes start at 64 pixels and print files at 72 DPI (see job validation).
        at_least("MERCHGEN_MAX_MOCKUP_SIDE", self.max_mockup_side.into(), 64)?;
        at_least("MERCHGEN_MAX_PRINT_DPI", self.max_print_dpi.into(), 72)?;
        if self.max_mockup_side > MOCKUP_SIDE_CEILING {
            anyhow::bail!(
                "MERCHGEN_MAX_MOCKUP_SIDE ({}) must be at most {MOCKUP_SIDE_CEILING}",
                self.max_mockup_side
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::Cli;
    use crate::job::Limits;
    use clap::{CommandFactory, Parser};

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(["merchgen"].iter().chain(args)).unwrap()
    }

    #[test]
    fn limit_settings_unset_keep_todays_limits() {
        let config = parse(&[]).config;
        config.check().unwrap();
        assert_eq!(
            config.limits(),
            Limits {
                addresses: config.limits().addresses,
                output_allow: config.limits().output_allow,
                input_s3_allow: config.limits().input_s3_allow,
                ..Limits::default()
            }
        );
    }

    #[test]
    fn limit_settings_given_reach_the_job_limits() {
        let args = [
            "--max-images",
            "2",
            "--max-steps",
            "8",
            "--max-prompt-chars",
            "100",
            "--max-mockup-side",
            "1024",
            "--max-print-dpi",
            "150",
        ];
        let limits = parse(&args).config.limits();
        assert_eq!(
            (limits.max_images, limits.max_steps, limits.max_prompt_chars),
            (2, 8, 100)
        );
        assert_eq!((limits.max_mockup_side, limits.max_print_dpi), (1024, 150));
    }

    #[test]
    fn limit_settings_nonsensical_values_fail_the_startup_check() {
        for (flag, value, name) in [
            ("--max-images", "0", "MERCHGEN_MAX_IMAGES"),
            ("--max-steps", "0", "MERCHGEN_MAX_STEPS"),
            ("--max-prompt-chars", "0", "MERCHGEN_MAX_PROMPT_CHARS"),
            ("--max-mockup-side", "32", "MERCHGEN_MAX_MOCKUP_SIDE"),
            ("--max-mockup-side", "100000", "MERCHGEN_MAX_MOCKUP_SIDE"),
            ("--max-print-dpi", "10", "MERCHGEN_MAX_PRINT_DPI"),
        ] {
            let err = parse(&[flag, value]).config.check().unwrap_err();
            assert!(err.to_string().contains(name), "{flag} {value}: {err}");
        }
    }

    #[test]
    fn help_lists_every_limit_setting() {
        let help = Cli::command().render_long_help().to_string();
        for name in [
            "MERCHGEN_MAX_IMAGES",
            "MERCHGEN_MAX_STEPS",
            "MERCHGEN_MAX_PROMPT_CHARS",
            "MERCHGEN_MAX_MOCKUP_SIDE",
            "MERCHGEN_MAX_PRINT_DPI",
            "MERCHGEN_MIN_SIDE",
            "MERCHGEN_MAX_SIDE",
        ] {
            assert!(help.contains(name), "{name} missing from --help");
        }
    }
}
