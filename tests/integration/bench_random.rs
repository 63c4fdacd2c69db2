//! `merchgen bench --random-weights` at tiny scale on the CPU through the real binary, in both
//! weight modes: the one JSON line that bench/gpu.sh collects has every field it reads, and the
//! scratch GGUF files are gone afterwards.

use crate::support;
use serde_json::Value;

fn bench_json(weights: &str) -> Value {
    let tmp = tempfile::tempdir().unwrap();
    let out = support::binary::offline()
        .args([
            "--device",
            "cpu",
            "--weights",
            weights,
            "bench",
            "--random-weights",
            "--scale",
            "tiny",
        ])
        .args([
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "1",
            "--iterations",
            "1",
            "--json",
        ])
        .env("TMPDIR", tmp.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .expect("merchgen runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line on stdout, got {stdout:?}");
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "scratch files left behind: {leftovers:?}"
    );
    serde_json::from_str(lines[0]).expect("stdout is JSON")
}

fn number(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("field {field} missing or not a number in {v}"))
}

fn check_common(v: &Value) {
    assert_eq!(v["bench"], "random_weights");
    assert_eq!(v["scale"], "tiny");
    assert_eq!(v["device"], "cpu");
    assert_eq!(
        (
            v["width"].as_u64(),
            v["height"].as_u64(),
            v["steps"].as_u64()
        ),
        (Some(64), Some(64), Some(1))
    );
    for field in [
        "t5_ms",
        "clip_ms",
        "vae_decode_ms",
        "step_ms_median",
        "step_ms_mean",
        "denoise_ms",
        "gguf_load_ms",
        "gguf_write_ms",
    ] {
        assert!(number(v, field) > 0.0, "{field} should be positive in {v}");
    }
    for field in [
        "gguf_bytes",
        "t5_gguf_bytes",
        "transformer_params",
        "peak_memory_bytes",
    ] {
        assert!(
            v[field].as_u64().unwrap_or(0) > 0,
            "{field} should be a positive integer in {v}"
        );
    }
    assert!(number(v, "gguf_load_gb_per_s") > 0.0);
    assert!(number(v, "model_tflop_per_step") > 0.0);
    assert!(number(v, "achieved_tflops") > 0.0);
    assert_eq!(
        v["step_ms"].as_array().map(Vec::len),
        Some(1),
        "one timed step"
    );
    assert_eq!(
        v["warmup"]["step_ms"].as_array().map(Vec::len),
        Some(1),
        "one warm-up step"
    );
    assert!(v["gguf_cache"].as_str().is_some());
    assert!(v["peak_memory_source"]
        .as_str()
        .unwrap_or("")
        .starts_with("vmhwm"));
}

#[test]
fn bench_random_tiny_bf16_json_has_every_field() {
    let v = bench_json("bf16");
    check_common(&v);
    assert_eq!(v["weights"], "bf16");
    // On the CPU the dense dtype is f32: bf16 matmuls are slow there.
    assert_eq!(v["weights_label"], "f32-from-q4_0");
    assert_eq!(v["activation_dtype"], "f32");
}

#[test]
fn bench_random_tiny_quantized_json_has_every_field() {
    let v = bench_json("quantized");
    check_common(&v);
    assert_eq!(v["weights"], "quantized");
    assert_eq!(v["weights_label"], "q4_0");
}
