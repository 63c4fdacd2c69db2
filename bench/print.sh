#!/usr/bin/env bash
# `merchgen bench print` against the reference vectoriser, in one run on one machine:
#   1. merchgen's print deliverables of a 1024² design on a t-shirt's print area at 300 DPI
#      (vector SVG in 8 colours, die-cut sticker PNG+SVG+PDF, 4-ink separations with underbase,
#      hard alpha): best and median of 3 runs after a warm-up, peak memory;
#   2. vtracer's Python binding (PyPI, pinned below) on the very image merchgen's tracer traces
#      (the design in its 8 inks, written by `--write-traced-input`), same runs;
#   3. the ratio of the vector stage's median to vtracer's.
# Needs a release build (`make build`); installs vtracer into ./.venv-bench. Figures go to
# docs/benchmarks.md ("Print deliverables").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
BIN="${BIN:-target/release/merchgen}"
VENV="${VENV:-.venv-bench}"
VTRACER="vtracer==0.6.15"
out=out/bench-print
mkdir -p "$out"
ensure_venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$VTRACER"

"$BIN" bench print --json --iterations 3 --write-traced-input "$out/traced.png" | tee "$out/merchgen.json"
"$VENV/bin/python" bench/vtracer_ref.py "$out/traced.png" --runs 3 --svg "$out/vtracer.svg" | tee "$out/vtracer.json"
"$VENV/bin/python" - "$out/merchgen.json" "$out/vtracer.json" <<'PY'
import json, sys
ours = json.load(open(sys.argv[1]))["stages"]["print_vector"]["median_ms"]
ref = json.load(open(sys.argv[2]))["median_ms"]
print(f"vector: merchgen {ours:.0f} ms, vtracer {ref:.0f} ms, ratio {ours / ref:.2f} (goal: at most 1.5)")
PY
