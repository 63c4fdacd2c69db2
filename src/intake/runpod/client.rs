//! HTTP calls to the RunPod platform with the headers runpod-python sends: the raw `Authorization`
//! key, JSON bodies labelled `application/x-www-form-urlencoded` with a separate `charset` header
//! (sic, as the SDK does), and `X-Request-ID` on posts. One attempt per call: the callers own
//! retries and backoff. Never logs the key or a URL's query string.

use crate::redact::Redacted;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use std::time::Duration;

/// What one platform answer came to.
#[derive(Debug)]
pub enum Answer {
    /// A 2xx status, with the content type and body.
    Ok {
        status: u16,
        json: bool,
        body: Vec<u8>,
    },
    /// A non-2xx status.
    Status(u16),
    /// No answer within the timeout.
    TimedOut,
    /// Connection refused, reset, or a broken response.
    Failed(String),
}

/// A client for one worker's platform calls. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
}

impl PlatformClient {
    /// A client sending `api_key` raw in `Authorization` (when set).
    pub fn new(api_key: Option<&Redacted>) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key.filter(|k| !k.is_empty()) {
            if let Ok(mut value) = HeaderValue::from_str(key.expose()) {
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            } else {
                tracing::warn!(
                    "RUNPOD_AI_API_KEY is not a valid header value; calls go unauthenticated"
                );
            }
        }
        let user_agent = concat!(
            "merchgen/",
            env!("CARGO_PKG_VERSION"),
            " (runpod-python/1.12.0 protocol)"
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(user_agent)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(PlatformClient { http })
    }

    /// `GET` with the SDK's JSON content type (job-take, job-stop, ping).
    pub async fn get(&self, url: &str, timeout: Duration) -> Answer {
        let req = self
            .http
            .get(url)
            .header(CONTENT_TYPE, "application/json")
            .timeout(timeout);
        send(req).await
    }

    /// `POST` a JSON body as the SDK posts results and progress.
    pub async fn post(&self, url: &str, job_id: &str, body: Vec<u8>, timeout: Duration) -> Answer {
        let req = self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("charset", "utf-8")
            .header("X-Request-ID", job_id)
            .body(body)
            .timeout(timeout);
        send(req).await
    }
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return classify(&e),
    };
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        return Answer::Status(status);
    }
    let json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    match resp.bytes().await {
        Ok(body) => Answer::Ok {
            status,
            json,
            body: body.to_vec(),
        },
        Err(e) => classify(&e),
    }
}

fn classify(e: &reqwest::Error) -> Answer {
    if e.is_timeout() {
        return Answer::TimedOut;
    }
    if e.is_connect() {
        return Answer::Failed("could not connect".into());
    }
    // Without the URL: it carries routing parameters and job ids, not worth a log line.
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<platform>");
    }
    Answer::Failed(text)
}
