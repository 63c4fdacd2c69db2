//! A fake RunPod platform on `127.0.0.1:0` for the RunPod door's tests: it serves job-take
//! (single and batch), job-done, job-stop and ping under `/v2/ep/...` from scripts, records
//! every call (method, path, query, headers, body, time), and can answer 500, 429, garbage or
//! nothing at all. Plus helpers to run the real `merchgen` binary against it.

#![allow(dead_code)]

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// One recorded request.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Call {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub(crate) fn is_progress(&self) -> bool {
        self.json()["status"] == "IN_PROGRESS"
    }
    /// The `{"code", ...}` object inside a result's `error` string.
    pub(crate) fn error(&self) -> Option<Value> {
        serde_json::from_str(self.json()["error"].as_str()?).ok()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Status(u16),
    /// 200 with `application/json` and a body that is not JSON.
    Garbage,
    /// Hold the request this long, then 204.
    Hang(Duration),
    /// 200 with this JSON.
    Json(Value),
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    take: VecDeque<Reply>,
    done: VecDeque<Reply>,
    stop_ids: Vec<String>,
    /// Job ids whose first progress post makes job-stop name them.
    stop_on_progress: Vec<String>,
}

/// The fake platform. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Platform {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop_wake: Arc<Notify>,
}

impl Platform {
    pub(crate) async fn start() -> Platform {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let platform = Platform {
            addr,
            state: Arc::default(),
            stop_wake: Arc::new(Notify::new()),
        };
        let p = platform.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let p = p.clone();
                async move { p.handle(method, uri, headers, body).await }
            },
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        platform
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The env a RunPod worker gets, pointing at this platform.
    pub(crate) fn worker_env(&self) -> Vec<(String, String)> {
        let b = self.base();
        vec![
            (
                "RUNPOD_WEBHOOK_GET_JOB".into(),
                format!("{b}/v2/ep/job-take/$RUNPOD_POD_ID?gpu=TEST+GPU"),
            ),
            (
                "RUNPOD_WEBHOOK_POST_OUTPUT".into(),
                format!("{b}/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=TEST+GPU"),
            ),
            (
                "RUNPOD_WEBHOOK_PING".into(),
                format!("{b}/v2/ep/ping/$RUNPOD_POD_ID?gpu=TEST+GPU"),
            ),
            ("RUNPOD_AI_API_KEY".into(), "rp-key-123".into()),
            ("RUNPOD_POD_ID".into(), "pod-7".into()),
            ("RUNPOD_PING_INTERVAL".into(), "100".into()),
        ]
    }

    pub(crate) fn script_take(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().take.extend(replies);
    }

    pub(crate) fn script_done(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().done.extend(replies);
    }

    /// Ask (through job-stop) to stop `id` once its first progress post arrives.
    pub(crate) fn stop_on_first_progress(&self, id: &str) {
        self.state
            .lock()
            .unwrap()
            .stop_on_progress
            .push(id.to_owned());
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub(crate) fn calls_to(&self, kind: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.contains(&format!("/{kind}/")))
            .collect()
    }

    /// Result posts (not progress) for one job.
    pub(crate) fn results(&self, job: &str) -> Vec<Call> {
        self.calls_to("job-done")
            .into_iter()
            .filter(|c| c.path.ends_with(&format!("/{job}")) && !c.is_progress())
            .collect()
    }

    pub(crate) fn progress(&self, job: &str) -> Vec<Call> {
        self.calls_to("job-done")
            .into_iter()
            .filter(|c| c.path.ends_with(&format!("/{job}")) && c.is_progress())
            .collect()
    }

    /// Wait until `f` holds, at most `limit`.
    pub(crate) async fn until(&self, limit: Duration, what: &str, f: impl Fn(&Platform) -> bool) {
        let end = Instant::now() + limit;
        while !f(self) {
            assert!(
                Instant::now() < end,
                "timed out waiting for: {what}\ncalls: {:#?}",
                self.summary()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One line per call, for failure messages.
    pub(crate) fn summary(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|c| {
                format!(
                    "{} {}?{} {}",
                    c.method,
                    c.path,
                    c.query,
                    String::from_utf8_lossy(&c.body)
                        .chars()
                        .take(160)
                        .collect::<String>()
                )
            })
            .collect()
    }

    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let call = Call {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().unwrap_or_default().to_owned(),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
        };
        let path = call.path.clone();
        let progress_of = call
            .is_progress()
            .then(|| path.rsplit('/').next().unwrap_or_default().to_owned());
        self.state.lock().unwrap().calls.push(call);
        if path.contains("/job-take") {
            let next = self.state.lock().unwrap().take.pop_front();
            return answer(next.unwrap_or(Reply::Hang(Duration::from_millis(150)))).await;
        }
        if path.contains("/job-stop/") {
            return self.stop_poll().await;
        }
        if path.contains("/job-done/") {
            if let Some(job) = progress_of {
                self.maybe_stop(&job);
                return StatusCode::OK.into_response();
            }
            let next = self.state.lock().unwrap().done.pop_front();
            return answer(next.unwrap_or(Reply::Json(json!({})))).await;
        }
        StatusCode::OK.into_response()
    }

    fn maybe_stop(&self, job: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.stop_on_progress.iter().position(|j| j == job) {
            s.stop_on_progress.remove(i);
            s.stop_ids.push(job.to_owned());
            self.stop_wake.notify_waiters();
        }
    }

    /// Long poll: answer as soon as a stop is due, else 204 after a while.
    async fn stop_poll(&self) -> Response {
        let deadline = Instant::now() + Duration::from_millis(400);
        loop {
            let wake = self.stop_wake.notified();
            let ids: Vec<String> = std::mem::take(&mut self.state.lock().unwrap().stop_ids);
            if !ids.is_empty() {
                return axum::Json(json!({ "jobsToStop": ids })).into_response();
            }
            if Instant::now() >= deadline {
                return StatusCode::NO_CONTENT.into_response();
            }
            let _ = tokio::time::timeout(deadline - Instant::now(), wake).await;
        }
    }
}

async fn answer(reply: Reply) -> Response {
    match reply {
        Reply::Status(s) => StatusCode::from_u16(s).unwrap().into_response(),
        Reply::Garbage => {
            ([("content-type", "application/json")], "{\"id\": \"half").into_response()
        }
        Reply::Hang(d) => {
            tokio::time::sleep(d).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Reply::Json(v) => axum::Json(v).into_response(),
    }
}

/// The query string as pairs (decoded).
pub(crate) fn query(call: &Call) -> Vec<(String, String)> {
    url::form_urlencoded::parse(call.query.as_bytes())
        .into_owned()
        .collect()
}

/// Send SIGTERM to a child (no unsafe code: the `kill` command).
pub(crate) fn sigterm(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// Wait for a child to exit, at most `limit`; kills it and panics if it does not.
pub(crate) fn wait_exit(child: &mut std::process::Child, limit: Duration) -> i32 {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("merchgen did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
