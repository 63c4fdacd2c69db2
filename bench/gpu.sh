#!/usr/bin/env bash
# One command on a GPU machine: merchgen's random-weight benchmark (the CUDA binary from
# `make build-cuda`) in both weight modes, and diffusers' FluxTransformer2DModel with random bf16
# weights at the same configuration (bench/diffusers_flux.py), then ms/step side by side with
# the merchgen/diffusers ratio, and a row for docs/benchmarks.md.
#
#   bench/gpu.sh                       # FLUX.1-schnell size, 1024x1024, 4 steps, 3 timed runs
#   SCALE=tiny SIZE=64 DEVICE=cpu MERCHGEN_BIN=target/debug/merchgen bench/gpu.sh   # harness check
#
# Environment: MERCHGEN_BIN (default target/cuda/release/merchgen; a .gz beside it is unpacked),
# PYTHON (default python3, the one with PyTorch), DEVICE (cuda:0), SCALE (full|tiny), SIZE (1024),
# STEPS (4), ITERATIONS (3), RESULTS (folder for the JSON lines, default target/bench-gpu),
# MODES ("bf16 quantized"), BATCHES (images per pass besides 1, default "2 4"; empty: none),
# SKIP_LOAD=1 (no cold-start run), LORA_RANK (32; empty: no LoRA run), SKIP_DIFFUSERS=1.
# diffusers is installed from .whl/ (bench/fetch-wheels.sh) when PYTHON cannot import it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

BIN=${MERCHGEN_BIN:-target/cuda/release/merchgen}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda:0}
SCALE=${SCALE:-full}
SIZE=${SIZE:-1024}
STEPS=${STEPS:-4}
ITERATIONS=${ITERATIONS:-3}
RESULTS=${RESULTS:-target/bench-gpu}
MODES=${MODES:-bf16 quantized}
mkdir -p "$RESULTS"
RESULTS=$(cd "$RESULTS" && pwd)

if [[ ! -x "$BIN" && -f "$BIN.gz" ]]; then
    gunzip -c "$BIN.gz" >"$BIN" && chmod +x "$BIN"
fi
[[ -x "$BIN" ]] || { echo "gpu.sh: no merchgen binary at $BIN (make build-cuda, or set MERCHGEN_BIN)" >&2; exit 2; }

if [[ "$DEVICE" == cuda* ]]; then
    # The CUDA 13 libraries merchgen links come from PyTorch's own venv (README "GPU build").
    CU13_LIB=$("$PY" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
    export LD_LIBRARY_PATH="$CU13_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if ldd "$BIN" | grep 'not found' >&2; then
        echo "gpu.sh: $BIN misses libraries (above) with LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >&2
        exit 2
    fi
    # Keep the driver's PTX compilations between runs of this script (first run pays them once).
    export CUDA_CACHE_PATH=${CUDA_CACHE_PATH:-$RESULTS/nv-compute-cache}
    nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader >"$RESULTS/gpu.txt"
else
    echo "$DEVICE" >"$RESULTS/gpu.txt"
fi

for mode in $MODES; do
    echo "gpu.sh: merchgen $mode" >&2
    "$BIN" --device "$DEVICE" --weights "$mode" bench --random-weights --scale "$SCALE" \
        --width "$SIZE" --height "$SIZE" --steps "$STEPS" --iterations "$ITERATIONS" --json \
        >"$RESULTS/merchgen-$mode.json"
done

# Images per second: one forward pass over N images (bf16; batch 1 is the run above).
for n in ${BATCHES-2 4}; do
    echo "gpu.sh: merchgen bf16, $n images per pass" >&2
    "$BIN" --device "$DEVICE" --weights bf16 bench --random-weights --scale "$SCALE" \
        --width "$SIZE" --height "$SIZE" --steps "$STEPS" --iterations "$ITERATIONS" --images "$n" \
        --json >"$RESULTS/merchgen-bf16-x$n.json"
done

# LoRAs: first apply, switching between two rank-LORA_RANK LoRAs, taking them off, and
# one step with and without, in each weight mode (merged on bf16, side path on quantized).
if [[ -n "${LORA_RANK-32}" ]]; then
    for mode in $MODES; do
        echo "gpu.sh: LoRA rank ${LORA_RANK-32}, $mode" >&2
        "$BIN" --device "$DEVICE" --weights "$mode" bench --random-weights --scale "$SCALE" \
            --lora "${LORA_RANK-32}" --width "$SIZE" --height "$SIZE" --steps 1 --iterations "$ITERATIONS" \
            >"$RESULTS/lora-$mode.json"
    done
fi

# Cold start from local disk: the written GGUF files loaded against a plain read (page cache
# dropped before each), medians of 3 rounds. SKIP_LOAD=1 leaves it out.
if [[ -z "${SKIP_LOAD:-}" ]]; then
    echo "gpu.sh: cold start (load only)" >&2
    "$BIN" --device "$DEVICE" --weights quantized bench --random-weights --scale "$SCALE" \
        --load-only >"$RESULTS/load-only.json"
fi

rm -f "$RESULTS/diffusers.json"
if [[ -z "${SKIP_DIFFUSERS:-}" ]]; then
    if ! "$PY" -c 'import diffusers' 2>/dev/null; then
        if compgen -G ".whl/*.whl" >/dev/null; then
            "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
                --target "$RESULTS/site" .whl/*.whl >&2
            export PYTHONPATH="$RESULTS/site${PYTHONPATH:+:$PYTHONPATH}"
        else
            echo "gpu.sh: $PY has no diffusers and .whl/ is empty (run bench/fetch-wheels.sh where PyPI is reachable)" >&2
            exit 2
        fi
    fi
    echo "gpu.sh: diffusers" >&2
    tiny=()
    [[ "$SCALE" == tiny ]] && tiny=(--tiny)
    "$PY" bench/diffusers_flux.py "${tiny[@]}" --device "${DEVICE%%:*}" --width "$SIZE" --height "$SIZE" \
        --steps "$STEPS" --iterations "$ITERATIONS" --json >"$RESULTS/diffusers.json"
fi

"$PY" - "$RESULTS" "$*" <<'EOF'
import datetime, json, os, sys
results = sys.argv[1]
def load(name):
    path = os.path.join(results, name)
    return json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else None
gpu = open(os.path.join(results, "gpu.txt")).read().strip()
runs = {m: load(f"merchgen-{m}.json") for m in ("bf16", "quantized")}
ref = load("diffusers.json")
ref_ms = ref["step_ms_median"] if ref else None
print(f"\nGPU: {gpu}")
print(f"{'':22}{'ms/step':>10}{'TFLOP/s':>10}{'vs diffusers':>14}{'VAE ms':>9}{'T5 ms':>8}{'CLIP ms':>9}{'peak GB':>9}{'GGUF GB/s':>11}")
for mode, r in runs.items():
    if not r:
        continue
    ratio = f"{r['step_ms_median'] / ref_ms:.2f}x" if ref_ms else "-"
    print(f"{'merchgen ' + r['weights_label']:22}{r['step_ms_median']:10.1f}{r['achieved_tflops']:10.1f}{ratio:>14}"
          f"{r['vae_decode_ms']:9.1f}{r['t5_ms']:8.1f}{r['clip_ms']:9.1f}{r['peak_memory_bytes'] / 1e9:9.2f}"
          f"{r['gguf_load_gb_per_s']:11.2f}")
if ref:
    peak = f"{ref['peak_memory_bytes'] / 1e9:9.2f}" if ref.get("peak_memory_bytes") else f"{'-':>9}"
    print(f"{'diffusers ' + ref['dtype']:22}{ref_ms:10.1f}{ref['achieved_tflops']:10.1f}{'1.00x':>14}{'-':>9}{'-':>8}{'-':>9}{peak}{'-':>11}")
for mode, r in runs.items():
    if r and r.get("warmup"):
        # The bench's first generation (its warm-up) against the median of the timed ones.
        first = sum(r["warmup"]["step_ms"]) + r["warmup"]["vae_decode_ms"]
        later = r["denoise_ms"] + r["vae_decode_ms"]
        print(f"first generation {mode} (no warm-up pass in the bench): {first:.0f} ms against {later:.0f} ms later ({first / later:.2f}x; goal for a worker, whose warm-up pass runs first: <= 1.10)")
for name in sorted(os.listdir(results)):
    if name.startswith("merchgen-bf16-x"):
        r = load(name)
        n, step = r["images"], r["step_ms_median"]
        print(f"bf16 batch {n}: {step:.1f} ms/step, {n * 1000 / (step * r['steps']):.2f} images/s denoising")
if runs.get("bf16"):
    r = runs["bf16"]
    print(f"bf16 batch 1: {r['step_ms_median']:.1f} ms/step, {1000 / (r['step_ms_median'] * r['steps']):.2f} images/s denoising")
lo = load("load-only.json")
for f in (lo or {}).get("files", []):
    print(f"load {f['file']}: read {f['plain_read_ms']:.0f} ms, load {f['load_ms']:.0f} ms ({f['load_over_read']:.2f}x), peak host {f['peak_over_file']:.2f}x file")
b, q = runs.get("bf16"), runs.get("quantized")
if b and q:
    name, driver = (gpu.split(", ") + ["?", "?"])[:2]
    cell = lambda v, f="{:.1f}": f.format(v) if v is not None else "-"
    ratio = lambda r: f"{r['step_ms_median'] / ref_ms:.2f}" if ref_ms else "-"
    print("\nRow for docs/benchmarks.md (GPU section):")
    print(f"| {name} | {driver} | {datetime.date.today()} | `bench/gpu.sh` | {cell(b['step_ms_median'])} | "
          f"{cell(q['step_ms_median'])} | {cell(ref_ms)} | {ratio(b)} / {ratio(q)} | "
          f"{cell(b['vae_decode_ms'])} | {cell(b['t5_ms'])} | {cell(b['clip_ms'])} | "
          f"{b['peak_memory_bytes'] / 1e9:.1f} / {q['peak_memory_bytes'] / 1e9:.1f} GB | "
          f"{q['gguf_load_gb_per_s']:.2f} ({q['gguf_cache']}) |")
EOF
