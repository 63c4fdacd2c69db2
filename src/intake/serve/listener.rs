//! The endpoint API's connections, accepted by its own loop rather than `axum::serve`, for
//! what a port open to clients needs: at most `max_connections` at once (one more is closed as
//! soon as it is accepted, and counted), and a connection that has not sent a request's headers
//! within `header_timeout` closed (hyper's header read timeout). HTTP/1.1, keep-alive. At
//! shutdown no new connection is taken and open ones finish their request in flight.

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a connection may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
}

/// How long open connections get to finish their request once shutdown starts.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Connections closed at once because `max_connections` were open.
pub(crate) static REFUSED: AtomicU64 = AtomicU64::new(0);

/// Serve `app` on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut open = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        while open.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    refused,
                    max = limits.max_connections,
                    "connection limit reached: connections closed at once"
                );
            }
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let stop = shutdown.clone();
        open.spawn(async move {
            let _slot = slot;
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while open.join_next().await.is_some() {}
    })
    .await;
}
