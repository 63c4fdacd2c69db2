#!/usr/bin/env bash
# Download what bench/diffusers_flux.py needs on a GPU machine that has PyTorch but no network:
# diffusers' wheel and the pure-Python packages it needs that the machine's image lacks, into
# .whl/ (git-ignored). Idempotent and quiet. bench/gpu.sh installs them from there with
# `pip install --no-index --no-deps --target`. Run it here (PyPI reachable), then carry `.whl`.
#
#   bench/fetch-wheels.sh [DEST]      (default .whl)
#
# The GPU image (Python 3.12, torch 2.11) already holds diffusers' other needs: filelock,
# huggingface-hub, numpy, regex, requests, safetensors, pillow, httpx, zipp.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DEST=${1:-.whl}
WHEELS=("diffusers==0.42.1" "importlib-metadata==10.2.0")
mkdir -p "$DEST"
for spec in "${WHEELS[@]}"; do
    name=${spec%%==*}
    version=${spec##*==}
    # Wheel file names spell the project with underscores.
    if compgen -G "$DEST/${name//-/_}-$version-*.whl" >/dev/null; then
        continue
    fi
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform any \
        -d "$DEST" "$spec"
done
