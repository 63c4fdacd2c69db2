//! `merchgen invoke FILE`: load the model only if a job generates, run the file's jobs, print
//! the outcome JSON. Exit 0 when every job succeeded, 1 when one failed, 2 on a usage error.

use crate::app::{self, Door};
use crate::config::Config;
use crate::engine::NoiseOverride;
use crate::intake::claim_check::ClaimCheck;
use crate::intake::event_file;
use crate::intake::sqs_batch::BatchRunner;
use crate::job::outcome::JobOutcome;
use crate::job::parse::EventShape;
use crate::worker::Worker;
use std::path::Path;

/// Files for parity runs: noise to start from, and where to save the final latents.
#[derive(Debug, Clone, Copy, Default)]
pub struct DebugFiles<'a> {
    pub initial_noise: Option<&'a Path>,
    pub dump_latents: Option<&'a Path>,
}

pub async fn run(config: &Config, file: &Path, out: &str, debug: DebugFiles<'_>) -> i32 {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("merchgen invoke: cannot read {}: {e}", file.display());
            return 2;
        }
    };
    let event = match event_file::read_event(&bytes) {
        Ok(event) => event,
        Err(e) => {
            return print_outcomes(
                &serde_json::to_value(JobOutcome::failed("unknown", e)).unwrap_or_default(),
                false,
            )
        }
    };
    // The products' layers are drawn while the model loads (or the first job reads its design).
    app::prewarm_mockups_for(config, event_file::mockups_wanted(&event));
    let engine = if event_file::needs_model(&event) {
        match app::start_engine(config).await {
            Ok(engine) => Some(engine),
            Err(e) => {
                eprintln!("merchgen: the model could not be loaded: {e}");
                eprintln!("hint: without network access or cached weights, run `make demo` to try merchgen on a tiny random-weight model");
                let error: crate::error::JobError = e.into();
                let outcomes: Vec<(String, JobOutcome)> = event
                    .jobs
                    .iter()
                    .map(|d| {
                        let id = d
                            .body
                            .get("id")
                            .and_then(|v| v.as_str())
                            .or(d.delivery_id.as_deref())
                            .unwrap_or("unknown");
                        (id.to_owned(), JobOutcome::failed(id, error.clone()))
                    })
                    .collect();
                return print_outcomes(&event_file::render(event.shape, &outcomes), false);
            }
        }
    } else {
        None
    };
    let destination = config.output.clone().unwrap_or_else(|| out.to_owned());
    let noise = match debug.initial_noise.map(NoiseOverride::load).transpose() {
        Ok(noise) => noise,
        Err(e) => {
            eprintln!("merchgen invoke: --initial-noise: {e:#}");
            return 2;
        }
    };
    let worker = match app::build_parts(config, Door::Invoke, destination) {
        Ok(mut parts) => {
            parts.initial_noise = noise;
            parts.dump_latents = debug.dump_latents.map(Path::to_owned);
            match app::finisher(config, engine.as_ref()) {
                Ok(f) => parts.finisher = Some(f),
                Err(e) => {
                    eprintln!("merchgen: {e:#}");
                    return 2;
                }
            }
            Worker::new(engine, parts)
        }
        Err(e) => {
            eprintln!("merchgen: {e:#}");
            return 2;
        }
    };
    // Each job counts as done once its webhooks went out (the door runtime waits for them).
    let rules = crate::intake::runtime::RunRules::from_config(config, "invoke");
    let shape = event.shape;
    if shape == EventShape::SqsBatch {
        let mut runner =
            BatchRunner::new(worker, ClaimCheck::new(config.s3_settings(), None), rules);
        // Nothing hands a record of a local file out again: every failure is the job's end.
        runner.max_receives = Some(0);
        return match event_file::run_sqs_batch(&runner, &bytes).await {
            Ok((answer, ok)) => print_outcomes(&answer, ok),
            Err(e) => print_outcomes(
                &serde_json::to_value(JobOutcome::failed("unknown", e)).unwrap_or_default(),
                false,
            ),
        };
    }
    let outcomes = event_file::run(&worker, event, &rules).await;
    let ok = outcomes.iter().all(|(_, o)| o.succeeded());
    print_outcomes(&event_file::render(shape, &outcomes), ok)
}

fn print_outcomes(value: &serde_json::Value, ok: bool) -> i32 {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    if ok {
        0
    } else {
        1
    }
}
