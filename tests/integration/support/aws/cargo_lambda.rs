//! cargo-lambda's own Runtime API emulator (`cargo lambda watch --only-lambda-apis`, from the
//! `cargo-lambda` package on PyPI, installed into ./.venv by `make test`) on a free loopback
//! port. It builds nothing: it reads the metadata of a one-file Cargo project written to a
//! temporary folder and serves the Runtime API; the test starts merchgen's own binary against
//! it and invokes through the emulator's invoke endpoint, as `cargo lambda invoke` does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The emulator as a child process; killed when dropped.
pub(crate) struct Emulator {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now (the emulator takes a port number, not `0`).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

impl Emulator {
    /// Start it and wait until it accepts connections; `None` when cargo-lambda is missing
    /// (a failure instead under `MERCHGEN_REQUIRE_PEERS=1`).
    pub(crate) async fn start() -> Option<Emulator> {
        let bin = crate::support::peers::venv_bin("cargo-lambda")?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let log = dir.path().join("emulator.log");
        let out = std::fs::File::create(&log).unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address"])
            .args(["127.0.0.1", "--invoke-port", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut emulator = Emulator {
            child,
            port,
            log,
            _dir: dir,
        };
        emulator.wait_ready(Duration::from_secs(60)).await;
        Some(emulator)
    }

    async fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            let exited = self.child.try_wait().unwrap();
            assert!(
                exited.is_none() && start.elapsed() < limit,
                "cargo-lambda's emulator did not start: {exited:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What the emulator printed.
    pub(crate) fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The environment it tells a function to run with (`AWS_LAMBDA_RUNTIME_API` carries a
    /// scheme and a base path).
    pub(crate) fn env(&self) -> HashMap<String, String> {
        [
            (
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            ),
            ("AWS_LAMBDA_FUNCTION_NAME", "_".to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "4096".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The emulator's invoke endpoint for the function (cargo-lambda names it `_`).
    pub(crate) fn invoke_url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/2015-03-31/functions/_/invocations",
            self.port
        )
    }
}

/// POST one payload to an invoke endpoint and wait at most `limit` for the answer: (HTTP
/// status, body). A free function, so a test can leave an invocation waiting in a task.
pub(crate) async fn invoke(
    url: String,
    payload: serde_json::Value,
    limit: Duration,
) -> (u16, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(limit)
        .build()
        .unwrap();
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .body(payload.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer from the emulator within {limit:?}: {e}"));
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}
