//! Tracing setup: JSON lines when deployed (Lambda, RunPod, no terminal), readable text on a
//! terminal. Logs go to stderr; stdout carries only outcomes. Text is coloured only on a
//! terminal: a file or a pipe gets plain text.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `format` is `auto`, `json` or `text`.
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let lambda_json =
        std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let json = match format {
        "json" => true,
        "text" => false,
        _ => lambda_json || !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // Ignore the error of a second init (tests start several workers in one process).
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.compact().try_init()
    };
}
