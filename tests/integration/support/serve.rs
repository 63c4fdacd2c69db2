//! Start `merchgen serve --port 0` on the tiny model and talk to it: the bound address is read
//! from its first stdout line; a small JSON client over reqwest; SIGTERM at the end.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Server {
    pub child: Child,
    pub base: String,
    pub log: std::path::PathBuf,
}

impl Server {
    /// Start the server and wait until `/healthz` says ready.
    pub(crate) async fn start(model: &Path, dir: &Path, extra: &[(&str, &str)]) -> Server {
        let log = dir.join("serve.log");
        let mut cmd = crate::support::binary::on_tiny_model(model);
        cmd.args(["serve", "--port", "0"])
            .env("MERCHGEN_LOG_FORMAT", "text")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            base.starts_with("http://127.0.0.1:"),
            "first line: {line:?}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let server = Server { child, base, log };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, _) = server.get("/healthz", None).await;
            if status == 200 {
                break;
            }
            assert!(Instant::now() < end, "never ready\n{}", server.logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn get(&self, path: &str, auth: Option<&str>) -> (u16, Value) {
        request(
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            auth,
            None,
        )
        .await
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        request(
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            auth,
            body,
        )
        .await
    }

    pub(crate) async fn text(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Poll `status/{id}` until `done(status)` or `limit`.
    pub(crate) async fn until_status(
        &self,
        id: &str,
        auth: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Value {
        let end = Instant::now() + limit;
        loop {
            let (code, body) = self.get(&format!("/v2/ep/status/{id}"), Some(auth)).await;
            if code == 200 && done(body["status"].as_str().unwrap_or_default()) {
                return body;
            }
            assert!(
                Instant::now() < end,
                "job {id} never reached the state; last {code} {body}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGTERM and wait for the exit status.
    pub(crate) fn stop(mut self) -> i32 {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("serve did not stop\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A test that fails before `stop` leaves no server behind.
impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) async fn request(
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, url)
        .timeout(Duration::from_secs(120));
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    if let Some(body) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
