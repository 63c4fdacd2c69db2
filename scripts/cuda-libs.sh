#!/usr/bin/env bash
# Copy the CUDA libraries that the given binaries link (their ELF NEEDED entries found in
# LIBDIR), and the libraries those need in turn, into DEST under their sonames. libcuda.so.1 is
# never copied: it belongs to the driver on the GPU host. Used by container/Dockerfile.
#
#   scripts/cuda-libs.sh LIBDIR DEST BINARY...
#   e.g. scripts/cuda-libs.sh .tools/cuda/root/lib64 /tmp/lib target/cuda/release/merchgen
set -euo pipefail

LIBDIR=${1:?usage: cuda-libs.sh LIBDIR DEST BINARY...}
DEST=${2:?usage: cuda-libs.sh LIBDIR DEST BINARY...}
shift 2
[[ $# -gt 0 ]] || { echo "cuda-libs: name at least one binary" >&2; exit 2; }
mkdir -p "$DEST"

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }

queue=()
for bin in "$@"; do
    mapfile -t -O "${#queue[@]}" queue < <(needed "$bin")
done
declare -A seen=()
while [[ ${#queue[@]} -gt 0 ]]; do
    lib=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -n "${seen[$lib]:-}" || "$lib" == libcuda.so* ]] && continue
    seen[$lib]=1
    [[ -e "$LIBDIR/$lib" ]] || continue # a system library (libc, libstdc++, ...)
    cp -L "$LIBDIR/$lib" "$DEST/$lib"
    mapfile -t -O "${#queue[@]}" queue < <(needed "$LIBDIR/$lib")
done
echo "cuda-libs: $(find "$DEST" -maxdepth 1 -type f -printf '%f ' | sort)" >&2
