//! A small Lambda Runtime API on `127.0.0.1:0`, enough to drive the real `lambda_runtime` loop
//! of the real binary: `invocation/next` (answers when the test queues an event), `/response`,
//! `/error`, `init/error`, and the Extensions API calls `spawn_graceful_shutdown_handler` makes
//! (`extension/register`; `extension/event/next` never answers, as when no event is subscribed).
//! `Options` make it behave like local emulators: a constant deadline header, no Extensions
//! API, a scheme in `AWS_LAMBDA_RUNTIME_API`. One request per connection; requests are read by
//! `support::http`'s reader.

use crate::support::http::read_request;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

/// What the function answered.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The invocation's request id, or `init` for an init error.
    pub request_id: String,
    /// `response`, `error` or `init_error`.
    pub kind: String,
    pub body: Value,
}

/// How the fake differs from Lambda.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Options {
    /// Send this `lambda-runtime-deadline-ms` instead of ten minutes from now (cargo-lambda's
    /// emulator sends 600000).
    pub constant_deadline_ms: Option<u64>,
    /// Give each invocation this long (Lambda's function timeout) instead of ten minutes.
    pub timeout: Option<Duration>,
    /// Answer the Extensions API with 404, as a Runtime API without it does.
    pub no_extensions_api: bool,
    /// Give `AWS_LAMBDA_RUNTIME_API` as `http://host:port` (as emulators do).
    pub url_with_scheme: bool,
}

#[derive(Default)]
struct State {
    options: Options,
    answers: Mutex<Vec<Answer>>,
    extensions: Mutex<Vec<String>>,
    arrived: Notify,
}

/// The fake Runtime API; stops when dropped.
pub(crate) struct RuntimeApi {
    pub addr: SocketAddr,
    events: mpsc::UnboundedSender<(String, Value)>,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RuntimeApi {
    pub(crate) async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub(crate) async fn start_with(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (events, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let state = Arc::new(State {
            options,
            ..State::default()
        });
        let served = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (rx, state) = (Arc::clone(&rx), Arc::clone(&served));
                tokio::spawn(async move {
                    let _ = serve(stream, rx, state).await;
                });
            }
        });
        RuntimeApi {
            addr,
            events,
            state,
            task,
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (host:port, no scheme, unless the options say so).
    pub(crate) fn host(&self) -> String {
        if self.state.options.url_with_scheme {
            format!("http://{}", self.addr)
        } else {
            self.addr.to_string()
        }
    }

    /// Environment the runtime needs besides `AWS_LAMBDA_RUNTIME_API`.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.host()),
            ("AWS_LAMBDA_FUNCTION_NAME", "merchgen-test".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_LOG_FORMAT", "json".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queue an invocation; the function receives it on its next `/next`.
    pub(crate) fn invoke(&self, request_id: &str, payload: Value) {
        self.events.send((request_id.to_owned(), payload)).unwrap();
    }

    /// Wait for the answer to `request_id` (or `init`), at most `limit`.
    pub(crate) async fn answer(&self, request_id: &str, limit: Duration) -> Answer {
        let found = tokio::time::timeout(limit, async {
            loop {
                let arrived = self.state.arrived.notified();
                if let Some(a) = self
                    .state
                    .answers
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|a| a.request_id == request_id)
                {
                    return a.clone();
                }
                arrived.await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("no answer to {request_id} within {limit:?}"))
    }

    /// Names of the extensions registered (the graceful-shutdown helper registers one).
    pub(crate) fn extensions(&self) -> Vec<String> {
        self.state.extensions.lock().unwrap().clone()
    }
}

type Events = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Value)>>>;

async fn serve(mut stream: TcpStream, events: Events, state: Arc<State>) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let (method, path, body) = (&request.method, &request.path, &request.body);
    let header = |name: &str| request.header(name).unwrap_or_default().to_owned();
    let record = |request_id: &str, kind: &str| {
        let body = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        state.answers.lock().unwrap().push(Answer {
            request_id: request_id.to_owned(),
            kind: kind.to_owned(),
            body,
        });
        state.arrived.notify_waiters();
    };
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["2018-06-01", "runtime", "invocation", "next"]) => {
            let next = events.lock().await.recv().await;
            let Some((request_id, payload)) = next else {
                return Ok(());
            };
            let deadline = state.options.constant_deadline_ms.map_or_else(
                || {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap()
                        .as_millis()
                        + state.options.timeout.map_or(600_000, |t| t.as_millis())
                },
                u128::from,
            );
            let extra = format!(
                "lambda-runtime-aws-request-id: {request_id}\r\nlambda-runtime-deadline-ms: {deadline}\r\n\
                 lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:merchgen-test\r\n\
                 lambda-runtime-trace-id: Root=1-00000000-000000000000000000000000\r\n"
            );
            reply(&mut stream, 200, &extra, payload.to_string().as_bytes()).await
        }
        ("POST", ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")]) => {
            record(id, kind);
            reply(&mut stream, 202, "", b"{}").await
        }
        ("POST", ["2018-06-01", "runtime", "init", "error"]) => {
            record("init", "init_error");
            reply(&mut stream, 202, "", b"{}").await
        }
        ("POST" | "GET", ["2020-01-01", "extension", ..]) if state.options.no_extensions_api => {
            reply(&mut stream, 404, "", b"{}").await
        }
        ("POST", ["2020-01-01", "extension", "register"]) => {
            state
                .extensions
                .lock()
                .unwrap()
                .push(header("lambda-extension-name"));
            let body = br#"{"functionName":"merchgen-test","functionVersion":"$LATEST","handler":"bootstrap"}"#;
            reply(
                &mut stream,
                200,
                "lambda-extension-identifier: ext-1\r\n",
                body,
            )
            .await
        }
        // No event is subscribed: Lambda would hold this until shutdown.
        ("GET", ["2020-01-01", "extension", "event", "next"]) => std::future::pending().await,
        _ => reply(&mut stream, 404, "", b"{}").await,
    }
}

async fn reply(
    stream: &mut TcpStream,
    status: u16,
    extra_headers: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra_headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.shutdown().await
}
