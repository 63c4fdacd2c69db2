//! `merchgen runpod` without a platform, like RunPod's local test: `--test-input '<json>'` and
//! `./test_input.json` run one job on the tiny model, print the job-done body, exit 0 or 1.

use crate::support;
use merchgen::engine::tiny::{self, TinyLayout};
use serde_json::{json, Value};
use std::path::Path;

fn runpod(cwd: &Path, model: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = support::binary::on_tiny_model(model)
        .arg("runpod")
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn runpod_test_input_and_test_input_json_run_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny::write(&dir.path().join("model"), 31, TinyLayout::Folder).unwrap();
    let job = json!({"input": {"prompt": "a fox", "width": 64, "height": 64, "num_inference_steps": 1, "seed": 9}});

    let (code, body, stderr) = runpod(dir.path(), &model, &["--test-input", &job.to_string()]);
    assert_eq!(code, 0, "{body} {stderr}");
    assert_eq!(body["output"]["id"], "local_test", "the SDK's default id");
    assert_eq!(body["output"]["status"], "succeeded");
    assert!(
        body["output"]["images"][0]["base64"].is_string(),
        "inline, as on RunPod"
    );

    let (code, body, stderr) = runpod(dir.path(), &model, &[]);
    assert_eq!(
        (code, body.clone()),
        (1, Value::Null),
        "no test_input.json: exit 1"
    );
    assert!(stderr.contains("test_input.json"), "{stderr}");

    let bad = json!({"id": "t-2", "input": {"prompt": "x", "width": 100}});
    std::fs::write(dir.path().join("test_input.json"), bad.to_string()).unwrap();
    let (code, body, _) = runpod(dir.path(), &model, &[]);
    assert_eq!(code, 1);
    let error: Value =
        serde_json::from_str(body["error"].as_str().expect("error is a string")).unwrap();
    assert_eq!(
        (error["code"].as_str(), error["field"].as_str()),
        (Some("invalid_input"), Some("width"))
    );

    let (code, _, stderr) = runpod(
        dir.path(),
        &model,
        &["--test-input", r#"{"prompt": "no input"}"#],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("`input`"), "{stderr}");
}
