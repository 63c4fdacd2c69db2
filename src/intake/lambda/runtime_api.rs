//! What merchgen says to the Lambda Runtime API outside `lambda_runtime`'s invocation loop: the
//! init-error report, and the no-op internal extension that makes Lambda send SIGTERM before it
//! shuts an environment down (graceful shutdown).
//!
//! `AWS_LAMBDA_RUNTIME_API` is `host:port` on Lambda, but local emulators give a URL with a
//! scheme and a base path (cargo-lambda: `http://[::]:9000/.rt`); both forms are accepted, as
//! the runtime's own client accepts them. A Runtime API without the Extensions API is not an
//! error: the function then runs without graceful shutdown, and says so in the log.

use crate::shutdown;
use std::time::Duration;

/// Name of the extension registered for graceful shutdown (subscribed to no events).
pub(crate) const SHUTDOWN_EXTENSION: &str = "merchgen-graceful-shutdown";

/// Longest wait for the Runtime API to answer a registration or an init-error report.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// `{api}{path}` for `api` given as `host:port` or as `scheme://host:port[/base]`.
pub(crate) fn endpoint(api: &str, path: &str) -> String {
    let api = api.trim().trim_end_matches('/');
    let path = path.trim_start_matches('/');
    if api.contains("://") {
        format!("{api}/{path}")
    } else {
        format!("http://{api}/{path}")
    }
}

/// Tell Lambda the init failed (`POST /2018-06-01/runtime/init/error`); best effort.
pub(crate) async fn report_init_error(message: &str) {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        return;
    };
    let body = serde_json::json!({"errorType": "merchgen.InitError", "errorMessage": message});
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(CALL_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::warn!(error = %e, "could not build a client for the Runtime API");
            return;
        }
    };
    let sent = client
        .post(endpoint(&api, "/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "merchgen.InitError")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    match sent.and_then(reqwest::Response::error_for_status) {
        Ok(_) => tracing::info!("init error reported to the Runtime API"),
        Err(e) => tracing::warn!(error = %e, "could not report the init error to the Runtime API"),
    }
}

/// Register the no-op extension (must happen before the invocation loop starts) and, on
/// SIGTERM or SIGINT, run `hook` and exit 0. Returns whether graceful shutdown is in place.
pub(crate) async fn graceful_shutdown<F, Fut>(hook: F) -> bool
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let register = lambda_extension::Extension::new()
        .with_events(&[])
        .with_extension_name(SHUTDOWN_EXTENSION)
        .register();
    let extension = match tokio::time::timeout(CALL_TIMEOUT, register).await {
        Ok(Ok(extension)) => extension,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the Runtime API has no usable Extensions API; running without graceful shutdown (SIGKILL at the end of the environment)");
            return false;
        }
        Err(_) => {
            tracing::warn!("the Extensions API did not answer within {CALL_TIMEOUT:?}; running without graceful shutdown");
            return false;
        }
    };
    let signals = shutdown::on_signals();
    tokio::spawn(async move {
        tokio::select! {
            biased;
            _ = signals.cancelled() => {
                hook().await;
                std::process::exit(0);
            }
            // Never answers (no events subscribed); an error only means no more SIGTERM.
            ended = extension.run() => {
                if let Err(e) = ended {
                    tracing::warn!(error = %e, "the graceful-shutdown extension stopped");
                }
                signals.cancelled().await;
                hook().await;
                std::process::exit(0);
            }
        }
    });
    true
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoint_of_bare_host_port_gets_http() {
        assert_eq!(
            endpoint("127.0.0.1:9001", "/2018-06-01/runtime/init/error"),
            "http://127.0.0.1:9001/2018-06-01/runtime/init/error"
        );
    }

    #[test]
    fn endpoint_of_url_with_scheme_and_base_path_keeps_both() {
        assert_eq!(
            endpoint("http://[::1]:9000/.rt/", "/2018-06-01/runtime/init/error"),
            "http://[::1]:9000/.rt/2018-06-01/runtime/init/error"
        );
        assert_eq!(
            endpoint("https://api.example:443", "2018-06-01/runtime/init/error"),
            "https://api.example:443/2018-06-01/runtime/init/error"
        );
    }
}
