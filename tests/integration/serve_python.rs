//! `merchgen serve` driven by RunPod's own Python client (`runpod` from PyPI, pinned in
//! tests/python/requirements.txt, installed into ./.venv by scripts/test.sh): the script
//! tests/python/runpod_client.py uses `Endpoint.run_sync`, `run`, `status`, `output`, `cancel`,
//! `health`, `purge_queue` against the server on the tiny model.

use crate::support;

use merchgen::engine::tiny::{self, TinyLayout};
use std::path::Path;
use std::process::Command;
use support::serve::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_works_with_runpods_python_client() {
    let Some(python) = support::peers::venv_bin("python") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 61, TinyLayout::Folder).unwrap();
    // One job at a time: the script purges a job it expects still queued behind a running one.
    let env = [
        ("MERCHGEN_API_KEY", "py-key"),
        ("MERCHGEN_PIPELINE_DEPTH", "1"),
    ];
    let server = Server::start(&model, dir.path(), &env).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/runpod_client.py");
    let base = format!("{}/v2", server.base);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .env("MERCHGEN_TEST_BASE", base)
            .env("MERCHGEN_TEST_API_KEY", "py-key")
            .env("RUNPOD_DEBUG_LEVEL", "ERROR")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed\nstdout: {stdout}\nstderr: {stderr}\nserver: {}",
        server.logs()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    assert_eq!(summary["run_sync"], "succeeded");
    assert_eq!(summary["run"]["final"], "COMPLETED");
    assert_eq!(summary["failed"], "FAILED");
    assert_eq!(summary["cancel"], "CANCELLED");
    assert_eq!(summary["waiting_after_purge"], "CANCELLED");
    assert!(
        summary["wrong_key"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("unauthorized"),
        "{summary}"
    );
    assert_eq!(server.stop(), 0);
}
