#!/usr/bin/env bash
# A build-only CUDA 13.0 toolkit from NVIDIA's PyPI wheels, laid out as a CUDA root, plus a
# link-time libcuda stub: enough to build candle's `cuda` feature on a machine with no GPU and no
# CUDA toolkit (the tested recipe). Idempotent and quiet:
# a second run with the toolkit in place only checks it.
#
#   scripts/setup-cuda13.sh PREFIX      -> PREFIX/root is the CUDA root, PREFIX/env.sh sets it up
#
# The wheels are pinned to 13.0.2, the set PyTorch 2.11 pulls in: a newer nvcc emits PTX that a
# driver-580 (CUDA 13.0) GPU machine refuses. The stub is for linking only: never put it on the
# run-time library path (the binary would fail with CUDA_ERROR_STUB_LIBRARY).
set -euo pipefail

PREFIX=${1:?usage: setup-cuda13.sh PREFIX}
PY=${PYTHON:-python3}
TOOLKIT_SPEC='cuda-toolkit[nvcc,crt,cccl,nvvm,cudart,cublas,curand,nvrtc]==13.0.2'
mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
ROOT="$PREFIX/root"

log() { echo "setup-cuda13: $*" >&2; }

ready() {
    [[ -f "$PREFIX/env.sh" && -x "$ROOT/bin/nvcc" && -f "$ROOT/lib64/stubs/libcuda.so" ]] \
        && "$ROOT/bin/nvcc" --version 2>/dev/null | grep -q 'release 13\.0'
}

if ready; then
    exit 0
fi

# 1. Toolkit wheels into a private venv.
if [[ ! -x "$PREFIX/venv/bin/python" ]]; then
    "$PY" -m venv "$PREFIX/venv"
fi
log "installing $TOOLKIT_SPEC into $PREFIX/venv (about 1.2 GB)"
"$PREFIX/venv/bin/pip" install -q --disable-pip-version-check "$TOOLKIT_SPEC" >&2
CU13=$("$PREFIX/venv/bin/python" -c 'import os, nvidia; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
test -x "$CU13/bin/nvcc"

# 2. A CUDA root: bin/include/nvvm as links, lib64 with unversioned .so links and the stub.
rm -rf "$ROOT"
mkdir -p "$ROOT/lib64/stubs"
ln -s "$CU13/bin" "$ROOT/bin"
ln -s "$CU13/include" "$ROOT/include"
ln -s "$CU13/nvvm" "$ROOT/nvvm"
for f in "$CU13"/lib/*.so.* "$CU13"/lib/*.a; do
    [[ -e "$f" ]] && ln -s "$f" "$ROOT/lib64/"
done
for l in cudart cublas cublasLt nvrtc; do
    ln -s "lib$l.so.13" "$ROOT/lib64/lib$l.so"
done
ln -s libcurand.so.10 "$ROOT/lib64/libcurand.so"

# 3. The libcuda.so link stub (SONAME libcuda.so.1): every driver entry point cuda.h 13.0 names,
#    plus every cu* function cudarc declares (when its source is in the cargo registry). Each
#    returns 34, CUDA_ERROR_STUB_LIBRARY, as NVIDIA's own stub does.
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo '#include <cuda.h>' | gcc -E -P -I"$CU13/include" -x c - | tr '\n' ' ' \
    | grep -oE '\bCUresult +cu[A-Za-z0-9_]+ *\(' | sed -E 's/CUresult +//; s/ *\($//' >"$W/names"
for f in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs; do
    [[ -f "$f" ]] && grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$f" | awk '{print $4}' >>"$W/names"
done
sort -u "$W/names" | awk '{print "int " $1 "(void) { return 34; }"}' >"$W/stub.c"
gcc -shared -fPIC -O2 -Wl,-soname,libcuda.so.1 -o "$ROOT/lib64/stubs/libcuda.so" "$W/stub.c"

cat >"$PREFIX/env.sh" <<ENV
# Source before \`cargo build --features cuda\` (written by scripts/setup-cuda13.sh).
export CUDA_ROOT="$ROOT"          # cudarc's link search: \$CUDA_ROOT/lib64 and lib64/stubs
export PATH="$ROOT/bin:\$PATH"     # cudarc runs 'nvcc --version'; cudaforge finds nvcc on PATH
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}   # no GPU to ask: one value per build (90 -> sm_90a)
export CUDAFORGE_THREADS=\${CUDAFORGE_THREADS:-\$(nproc)}  # cudaforge's default is half the cores
ENV
ready || { log "the toolkit in $PREFIX did not come out usable"; exit 1; }
log "CUDA 13.0 build toolkit ready in $PREFIX ($(sort -u "$W/names" | wc -l) stub symbols)"
