#!/usr/bin/env bash
# `make parity` (not part of `make test`): install the reference stack (CPU PyTorch, diffusers,
# transformers, safetensors, gguf) into ./.venv-parity, build the debug merchgen binary, and compare
# merchgen with diffusers on a tiny random-weight FLUX (parity/flux_parity.py). Exit 1 when a goal
# is missed. docs/parity.md explains what is compared and the measured numbers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.venv-parity
if ! "$venv/bin/python" -c "import torch, diffusers, transformers, gguf, safetensors" 2>/dev/null; then
  python3 -m venv "$venv"
  # PyPI is the only index reachable here. Its x86-64 Linux torch wheel declares NVIDIA runtime
  # wheels as dependencies (about 3 GB); they are plain shared libraries that load without a GPU,
  # and torch then runs on the CPU. PyTorch's CPU-only builds live on its own index, which this
  # project cannot reach. See docs/parity.md.
  "$venv/bin/pip" install --quiet -r parity/requirements.txt
fi

cargo build --locked --bin merchgen
target_dir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target_dir/parity"
exec "$venv/bin/python" parity/flux_parity.py --merchgen "$target_dir/debug/merchgen" \
  --work "$target_dir/parity" --json "$target_dir/parity/results.json"
