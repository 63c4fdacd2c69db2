#!/usr/bin/env bash
# `make parity` (not part of `make test`): install the reference stack (CPU PyTorch, diffusers,
# transformers, safetensors, gguf, spandrel; backgroundremover's U²-Net and dis-inference's IS-Net
# model files) into ./.venv-parity, build the debug merchgen binary, and compare merchgen with the
# references on random weights: FLUX with diffusers (parity/flux_parity.py; FLUX.1-dev, true CFG
# and LoRAs in parity/flux_extras_parity.py), the Real-ESRGAN
# upscalers with spandrel (parity/upscale_parity.py), U²-Net/U²-NetP/IS-Net matting
# (parity/matting_parity.py). Exit 1 when any goal is missed. docs/parity.md has the figures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv=.venv-parity
if ! "$venv/bin/python" -c "import torch, diffusers, transformers, gguf, safetensors, spandrel, peft" 2>/dev/null; then
  python3 -m venv "$venv"
  # PyPI is the only index reachable here. Its x86-64 Linux torch wheel declares NVIDIA runtime
  # wheels as dependencies (about 3 GB); they are plain shared libraries that load without a GPU,
  # and torch then runs on the CPU. PyTorch's CPU-only builds live on its own index, which this
  # project cannot reach. See docs/parity.md.
  "$venv/bin/pip" install --quiet -r parity/requirements.txt
fi
if ! "$venv/bin/python" -c "import backgroundremover, dis_inference" 2>/dev/null; then
  # Only their PyTorch model files are used; --no-deps keeps their heavy extras out.
  "$venv/bin/pip" install --quiet --no-deps -r parity/matting-requirements.txt
fi

cargo build --locked --bin merchgen
target_dir="${CARGO_TARGET_DIR:-target}"
# A copy, so another build into target/debug cannot swap the binary mid-run.
bin="$target_dir/parity/merchgen"
mkdir -p "$target_dir/parity"
cp "$target_dir/debug/merchgen" "$bin"
status=0
"$venv/bin/python" parity/flux_parity.py --merchgen "$bin" \
  --work "$target_dir/parity" --json "$target_dir/parity/results.json" || status=1
"$venv/bin/python" parity/flux_extras_parity.py --merchgen "$bin" \
  --work "$target_dir/parity/extras" --json "$target_dir/parity/extras.json" || status=1
"$venv/bin/python" parity/upscale_parity.py --merchgen "$bin" \
  --work "$target_dir/parity/upscale" --json "$target_dir/parity/upscale.json" || status=1
"$venv/bin/python" parity/matting_parity.py --merchgen "$bin" \
  --work "$target_dir/parity/matting" --json "$target_dir/parity/matting.json" || status=1
exit "$status"
