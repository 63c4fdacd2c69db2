//! merchgen's entry point: parse the configuration, set up logging, run the chosen door.

use clap::Parser;
use merchgen::cli::{Cli, Command};
use merchgen::{commands, config, intake, memory, telemetry};

fn main() {
    memory::tune();
    let cli = Cli::parse();
    telemetry::init(&cli.config.log_format);
    if let Err(e) = cli.config.check() {
        eprintln!("merchgen: {e}");
        std::process::exit(2);
    }
    let code = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(dispatch(cli)),
        Err(e) => {
            eprintln!("merchgen: cannot start the async runtime: {e}");
            2
        }
    };
    std::process::exit(code);
}

async fn dispatch(cli: Cli) -> i32 {
    let config = cli.config;
    match &cli.command {
        Some(Command::Invoke {
            file,
            out,
            initial_noise,
            dump_latents,
        }) => {
            let debug = commands::invoke::DebugFiles {
                initial_noise: initial_noise.as_deref(),
                dump_latents: dump_latents.as_deref(),
            };
            commands::invoke::run(&config, file, out, debug).await
        }
        Some(Command::Models { action }) => {
            let config = config.clone();
            let action = action.clone();
            tokio::task::spawn_blocking(move || commands::models::run(&config, &action))
                .await
                .unwrap_or(1)
        }
        Some(Command::Bench {
            what: Some(merchgen::cli::BenchWhat::Pipeline(b)),
            ..
        }) => commands::bench::jobs::run(&config, b).await,
        Some(Command::Bench { what, pipeline }) => {
            commands::bench::run(&config, what.as_ref(), pipeline)
        }
        Some(Command::Runpod(args)) => intake::runpod::run(&config, args).await,
        Some(Command::Serve(args)) => intake::serve::run(&config, args).await,
        Some(Command::Lambda) => intake::lambda::run(&config).await,
        Some(Command::Sqs(args)) => intake::sqs::run(&config, args).await,
        Some(Command::Net {
            family,
            weights,
            input,
            output,
        }) => commands::net::run(*family, weights, input, output),
        None => {
            if config::on_runpod() {
                return intake::runpod::run_from_env(&config).await;
            }
            if config::on_lambda() {
                return intake::lambda::run(&config).await;
            }
            if config::sqs_queue_url().is_some() {
                return match config::SqsArgs::from_env() {
                    Ok(args) => intake::sqs::run(&config, &args).await,
                    Err(e) => {
                        eprintln!("merchgen: {e}");
                        2
                    }
                };
            }
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            2
        }
    }
}
