//! The HTTP routes: RunPod's endpoint API under `/v2/{endpoint_id}/` (`run`, `runsync`,
//! `status/{id}`, `status-sync/{id}`, `cancel/{id}`, `health`, `purge-queue`), so RunPod's own
//! clients work against it, plus `/healthz` (ready once the model is loaded) and `/metrics`. Every
//! job goes through the store; nothing here touches the worker.

use super::body::{self, BodyRate};
use super::keys::{ApiKeys, Caller, Limited};
use super::metrics::Metrics;
use super::record::Submission;
use super::store::Store;
use super::webhook::StatusWebhook;
use crate::job::strict_json::{self, StrictJson};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Longest `policy.executionTimeout` and `policy.ttl` accepted (RunPod's: 7 days).
const MAX_POLICY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Shared by every route.
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub hooks: StatusWebhook,
    /// The keys callers authenticate with, and their limits.
    pub keys: Arc<ApiKeys>,
    /// Set once the model is loaded.
    pub ready: AtomicBool,
    pub runsync_wait: Duration,
    pub execution_timeout: Duration,
    pub ttl: Duration,
    pub shutdown: CancellationToken,
}

type Shared = Arc<AppState>;

/// All routes.
pub fn router(state: Shared, rate: BodyRate) -> Router {
    let api = Router::new()
        .route("/run", post(run))
        .route("/runsync", post(runsync))
        .route("/status/{id}", get(status).post(status))
        .route("/status-sync/{id}", get(status_sync).post(status_sync))
        .route("/cancel/{id}", post(cancel))
        .route("/health", get(health))
        .route("/purge-queue", post(purge))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .nest("/v2/{endpoint_id}", api)
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(crate::job::parse::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(rate, body::read_at_rate))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Find the caller's key (401 without one), count the request against its limits (429 over
/// them), and hand the caller to the route.
async fn authorize(State(state): State<Shared>, mut req: Request, next: Next) -> Response {
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = match state.keys.identify(header) {
        Ok(caller) => caller.cloned(),
        Err(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized: send the API key in Authorization (raw or Bearer)",
            )
        }
    };
    if let Some(caller) = caller {
        if let Err(limited) = state.keys.admit_request(&caller) {
            return too_many(&state, &caller, limited);
        }
        req.extensions_mut().insert(caller);
    }
    next.run(req).await
}

/// 429 for a key over one of its limits, with `Retry-After`; logged and counted by its name.
fn too_many(state: &AppState, caller: &Caller, limited: Limited) -> Response {
    tracing::warn!(api_key = %caller.name, limit = limited.limit, retry_after_secs = limited.retry_after.as_secs(), "a key is over its limit");
    state.metrics.limited(&caller.name, limited.limit);
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "this key is over its {} limit; retry after {} s",
            limited.limit,
            limited.retry_after.as_secs()
        ),
    );
    if let Ok(value) = header::HeaderValue::from_str(&limited.retry_after.as_secs().to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The checked body of `run` / `runsync`.
fn submission(state: &AppState, body: &[u8]) -> Result<Submission, String> {
    let StrictJson(mut value) =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    if let Some(key) = strict_json::take_mark(&mut value) {
        return Err(format!(
            "invalid_input: {key} appears more than once in its object; send each key once"
        ));
    }
    let obj = value.as_object().ok_or("the body must be a JSON object")?;
    let input = obj
        .get("input")
        .cloned()
        .ok_or("input is required (the merchgen job)")?;
    let webhook = match obj.get("webhook") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => return Err("webhook must be a URL string".into()),
    };
    let s3_config = obj.get("s3Config").filter(|v| !v.is_null()).cloned();
    let policy = obj.get("policy").filter(|v| !v.is_null());
    let millis = |key: &str, default: Duration| -> Result<Duration, String> {
        match policy.and_then(|p| p.get(key)) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .filter(|ms| *ms > 0)
                .map(|ms| Duration::from_millis(ms).min(MAX_POLICY))
                .ok_or(format!(
                    "policy.{key} must be a positive number of milliseconds"
                )),
        }
    };
    let execution_timeout = millis("executionTimeout", state.execution_timeout)?;
    let ttl = millis("ttl", state.ttl)?;
    Ok(Submission {
        input,
        webhook,
        s3_config,
        execution_timeout,
        ttl,
        key: None,
    })
}

/// Queue a job for `caller` (within its jobs per day and concurrent jobs); the error is the
/// response to give (boxed: a response is large next to an id).
fn enqueue(
    state: &AppState,
    caller: Option<&Caller>,
    body: &[u8],
    id: String,
) -> Result<String, Box<Response>> {
    let mut sub =
        submission(state, body).map_err(|m| Box::new(error(StatusCode::BAD_REQUEST, m)))?;
    if let Some(caller) = caller {
        let active = state.store.active_for(&caller.name);
        if let Err(limited) = state.keys.admit_job(caller, active) {
            return Err(Box::new(too_many(state, caller, limited)));
        }
        sub.key = Some(caller.name.clone());
    }
    let key = sub.key.clone();
    match state.store.submit(id.clone(), sub) {
        Ok(()) => {
            state.metrics.submitted();
            tracing::info!(job_id = %id, api_key = key.as_deref(), "job queued");
            Ok(id)
        }
        Err(full) => {
            state.metrics.rejected();
            Err(Box::new(error(
                StatusCode::TOO_MANY_REQUESTS,
                full.to_string(),
            )))
        }
    }
}

async fn run(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    body: Bytes,
) -> Response {
    let caller = caller.map(|Extension(c)| c);
    match enqueue(
        &state,
        caller.as_ref(),
        &body,
        uuid::Uuid::new_v4().to_string(),
    ) {
        Ok(id) => Json(json!({ "id": id, "status": "IN_QUEUE" })).into_response(),
        Err(response) => *response,
    }
}

#[derive(serde::Deserialize)]
struct Wait {
    /// Milliseconds (RunPod: 1000 to 300000).
    wait: Option<u64>,
}

async fn runsync(
    State(state): State<Shared>,
    caller: Option<Extension<Caller>>,
    Query(q): Query<Wait>,
    body: Bytes,
) -> Response {
    let caller = caller.map(|Extension(c)| c);
    let id = format!("sync-{}", uuid::Uuid::new_v4());
    let id = match enqueue(&state, caller.as_ref(), &body, id) {
        Ok(id) => id,
        Err(response) => return *response,
    };
    let wait = q.wait.map_or(state.runsync_wait, |ms| {
        Duration::from_millis(ms.clamp(1_000, 300_000))
    });
    match state
        .store
        .wait_final(&id, Instant::now() + wait, &state.shutdown)
        .await
    {
        Some(body) => Json(body).into_response(),
        None => error(StatusCode::NOT_FOUND, "job not found (its ttl ran out)"),
    }
}

async fn status(State(state): State<Shared>, Path((_, id)): Path<(String, String)>) -> Response {
    match state.store.status(&id) {
        Some(body) => Json(body).into_response(),
        None => error(StatusCode::NOT_FOUND, "job not found"),
    }
}

/// `status-sync/{id}?wait=ms` (undocumented, used by RunPod's JavaScript client): `status`
/// once the job is final or after the wait (1 to 90 s, default 90 s).
async fn status_sync(
    State(state): State<Shared>,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<Wait>,
) -> Response {
    let wait = Duration::from_millis(q.wait.unwrap_or(90_000).clamp(1_000, 90_000));
    match state
        .store
        .wait_final(&id, Instant::now() + wait, &state.shutdown)
        .await
    {
        Some(body) => Json(body).into_response(),
        None => error(StatusCode::NOT_FOUND, "job not found"),
    }
}

/// How long `cancel` waits for a running job to stop (it stops at its next denoising step) or
/// to finish, before answering `IN_PROGRESS`.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// A waiting job ends `CANCELLED` at once. A running one is asked to stop, and the answer is
/// its real final state once it has one (`CANCELLED` when it stopped, `COMPLETED` when it was
/// too far along to stop), the same `status`, `result.json` and the webhooks report.
async fn cancel(State(state): State<Shared>, Path((_, id)): Path<(String, String)>) -> Response {
    let Some((body, finished)) = state.store.cancel(&id) else {
        return error(StatusCode::NOT_FOUND, "job not found");
    };
    if let Some(f) = finished {
        tracing::info!(job_id = %id, "job cancelled");
        state.hooks.announce(&state.metrics, f);
        return Json(body).into_response();
    }
    if body["status"] != "IN_PROGRESS" {
        return Json(body).into_response();
    }
    tracing::info!(job_id = %id, "cancel requested: the running job stops at its next step");
    let until = Instant::now() + CANCEL_WAIT;
    match state.store.wait_final(&id, until, &state.shutdown).await {
        Some(body) => Json(body).into_response(),
        None => error(StatusCode::NOT_FOUND, "job not found (its ttl ran out)"),
    }
}

async fn purge(State(state): State<Shared>) -> Response {
    let purged = state.store.purge();
    let removed = purged.len();
    for f in purged {
        state.hooks.announce(&state.metrics, f);
    }
    Json(json!({ "removed": removed, "status": "completed" })).into_response()
}

async fn health(State(state): State<Shared>) -> Response {
    let counts = state.store.counts();
    let ready = state.ready.load(Ordering::Relaxed);
    let totals = state.metrics.totals();
    let running = usize::from(counts.in_progress > 0);
    let idle = usize::from(ready && counts.in_progress == 0);
    Json(json!({
        "jobs": {"completed": totals.completed, "failed": totals.failed, "inProgress": counts.in_progress,
                 "inQueue": counts.in_queue, "retried": 0},
        "workers": {"idle": idle, "running": running,
                    "initializing": usize::from(!ready), "ready": usize::from(ready), "throttled": 0},
    }))
    .into_response()
}

async fn healthz(State(state): State<Shared>) -> Response {
    if state.ready.load(Ordering::Relaxed) {
        Json(json!({"status": "ready"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "loading"})),
        )
            .into_response()
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    let text = state
        .metrics
        .render(state.store.counts(), state.store.expired());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
