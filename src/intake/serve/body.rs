//! Request bodies read at a minimum rate: a body gets `grace` to start, then must keep up
//! `min_rate` bytes per second on average, or the request is answered 408 and its connection
//! closed (a client that trickles a body holds a connection and a buffer for nothing). The body
//! is read here, within `MAX_BODY_BYTES` (413 beyond), and handed on in one piece.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

/// How fast a request body must arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyRate {
    /// Time any body gets before the rate applies.
    pub grace: Duration,
    /// Bytes per second, on average, after the grace.
    pub min_rate: u64,
    /// Largest body accepted.
    pub limit: usize,
}

impl Default for BodyRate {
    /// `serve`'s defaults: 10 s, then 16 KiB/s; `MAX_BODY_BYTES`.
    fn default() -> Self {
        BodyRate {
            grace: Duration::from_secs(10),
            min_rate: 16_384,
            limit: crate::job::parse::MAX_BODY_BYTES,
        }
    }
}

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    TooSlow,
    TooLarge,
    Broken,
}

/// Middleware: read the body at `BodyRate`, then run the route with it.
pub(crate) async fn read_at_rate(
    State(rate): State<BodyRate>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    match collect(body, rate).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(Refused::TooSlow) => {
            tracing::warn!(
                min_rate = rate.min_rate,
                "a request body arrived too slowly: closing its connection"
            );
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body arrived slower than {} bytes per second",
                    rate.min_rate
                ),
            )
        }
        Err(Refused::TooLarge) => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {} bytes", rate.limit),
        ),
        Err(Refused::Broken) => {
            refuse(StatusCode::BAD_REQUEST, "the body could not be read".into())
        }
    }
}

fn refuse(status: StatusCode, message: String) -> Response {
    let mut response = (status, Json(json!({ "error": message }))).into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

async fn collect(mut body: Body, rate: BodyRate) -> Result<Bytes, Refused> {
    let started = Instant::now();
    let mut buf = BytesMut::new();
    loop {
        // What has arrived buys time: at `min_rate`, each byte is worth 1/min_rate seconds.
        let earned = Duration::from_secs_f64(buf.len() as f64 / rate.min_rate.max(1) as f64);
        let due = started + rate.grace + earned;
        let frame = match tokio::time::timeout_at(due, body.frame()).await {
            Err(_) => return Err(Refused::TooSlow),
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(_))) => return Err(Refused::Broken),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > rate.limit {
                return Err(Refused::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate() -> BodyRate {
        BodyRate {
            grace: Duration::from_millis(200),
            min_rate: 1_000,
            limit: 64,
        }
    }

    #[tokio::test]
    async fn a_body_in_time_is_read_whole_and_a_large_one_refused() {
        assert_eq!(collect(Body::from("hello"), rate()).await.unwrap(), "hello");
        let big = Body::from(vec![b'x'; 65]);
        assert_eq!(collect(big, rate()).await, Err(Refused::TooLarge));
    }

    /// One byte, then nothing ever again (a client that stopped sending).
    struct Stalls(bool);

    impl hyper::body::Body for Stalls {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if std::mem::replace(&mut self.0, true) {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(b"a")))))
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_stalls_past_its_grace_is_too_slow() {
        let started = std::time::Instant::now();
        assert_eq!(
            collect(Body::new(Stalls(false)), rate()).await,
            Err(Refused::TooSlow)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
