#!/usr/bin/env bash
# `make build-cuda`: build merchgen with candle's CUDA backend on any Linux x86-64 machine, with
# or without a GPU or a CUDA toolkit. Installs a build-only CUDA 13.0 toolkit from PyPI into
# .tools/cuda (scripts/setup-cuda13.sh), then builds target/cuda/release/merchgen.
#
# Environment:
#   CUDA_COMPUTE_CAP          target GPU, one value per build (default 90: H100/H200, sm_90a;
#                             80 A100, 86 A10/A40, 89 L4/L40S). A binary runs on its own
#                             architecture family only: build one per architecture.
#   MERCHGEN_CUDA_TOOLS       toolkit folder (default .tools/cuda)
#   MERCHGEN_CUDA_TARGET_DIR  cargo target dir (default target/cuda; the kernels are rebuilt
#                             whenever CUDA_COMPUTE_CAP changes, so keep one per architecture)
#
# The binary needs at run time: the driver's libcuda.so.1 (R580 / CUDA 13.0 or newer) and
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 (README "GPU build").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

TOOLS=${MERCHGEN_CUDA_TOOLS:-$ROOT/.tools/cuda}
TARGET_DIR=${MERCHGEN_CUDA_TARGET_DIR:-$ROOT/target/cuda}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}

if [[ ! "$CUDA_COMPUTE_CAP" =~ ^[0-9]+$ ]]; then
    echo "build-cuda: CUDA_COMPUTE_CAP must be one number such as 90 (cudaforge takes one per build), not '$CUDA_COMPUTE_CAP'" >&2
    exit 2
fi

# cudarc's stub symbol list comes from its source in the registry: fetch before the set-up.
cargo fetch --locked >/dev/null 2>&1 || cargo fetch --locked
scripts/setup-cuda13.sh "$TOOLS"
# shellcheck source=/dev/null
source "$TOOLS/env.sh"

echo "build-cuda: building for compute capability $CUDA_COMPUTE_CAP into $TARGET_DIR" >&2
CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release --locked --features cuda

BIN="$TARGET_DIR/release/merchgen"
cp "$BIN" "$TARGET_DIR/merchgen-sm$CUDA_COMPUTE_CAP"
echo "build-cuda: $BIN ($(du -h "$BIN" | cut -f1), sm_$CUDA_COMPUTE_CAP; also $TARGET_DIR/merchgen-sm$CUDA_COMPUTE_CAP)"
echo "build-cuda: needs $(readelf -d "$BIN" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
