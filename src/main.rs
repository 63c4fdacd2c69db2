//! merchgen's entry point: parse the configuration, set up logging, run the chosen door.

use clap::Parser;
use merchgen::cli::{Cli, Command};
use merchgen::{commands, config, telemetry};

fn main() {
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
        Some(Command::Bench { what, pipeline }) => {
            commands::bench::run(&config, what.as_ref(), pipeline)
        }
        Some(Command::Runpod(args)) => merchgen::intake::runpod::run(&config, args).await,
        Some(Command::Serve(args)) => merchgen::intake::serve::run(&config, args).await,
        None if config::on_runpod() => merchgen::intake::runpod::run_from_env(&config).await,
        None => {
            if config::on_runpod() || config::on_lambda() || config::sqs_queue_url().is_some() {
                eprintln!("merchgen: this build has no RunPod, Lambda or SQS door yet; see `merchgen --help`");
                return 2;
            }
            use clap::CommandFactory;
            let _ = Cli::command().print_help();
            2
        }
    }
}
