#!/bin/sh
# The image's `merchgen`: picks the CUDA build matching this GPU, then runs it with the same
# arguments. candle's kernels are compiled for one architecture per build (sm_90 builds are
# sm_90a, which only Hopper runs), so the image holds one binary per compute capability:
# /opt/merchgen/bin/merchgen-sm<CC>.
#
# Choice: MERCHGEN_CUDA_ARCH if set (e.g. 90), else the GPU's compute capability from nvidia-smi.
# An exact build wins; else the newest build of the same major version that is not newer than
# the GPU (sm_86 code runs on 8.7 and 8.9; sm_90a runs on 9.0 only); else the newest build not
# newer than the GPU, whose PTX kernels the driver can compile but whose quantized (MMQ) kernels
# will be missing, with a warning; with no GPU to ask, the newest build, with a warning.
#
# Also: the driver's PTX JIT cache goes to the RunPod volume when one is mounted, so
# kernels compiled on one cold start are reused by the next; an empty HF_HUB_CACHE (image built
# without BAKE_MODEL) is unset so merchgen's own cache lookup applies.
set -eu

BIN_DIR=${MERCHGEN_BIN_DIR:-/opt/merchgen/bin}

warn() { echo "merchgen-launch: $*" >&2; }

if [ -z "${HF_HUB_CACHE:-}" ]; then
    unset HF_HUB_CACHE
fi

if [ -z "${CUDA_CACHE_PATH:-}" ] && [ -d /runpod-volume ] && [ -w /runpod-volume ]; then
    CUDA_CACHE_PATH=/runpod-volume/.cache/nv-compute
    if mkdir -p "$CUDA_CACHE_PATH" 2>/dev/null; then
        export CUDA_CACHE_PATH
        # candle's PTX compiles to about 8 MB per architecture; the driver's default cap is 256 MiB.
        export CUDA_CACHE_MAXSIZE="${CUDA_CACHE_MAXSIZE:-1073741824}"
    else
        unset CUDA_CACHE_PATH
    fi
fi

# Compute capabilities present in the image, as integers (sm_86 -> 86), ascending.
built=$(for f in "$BIN_DIR"/merchgen-sm*; do
    [ -x "$f" ] && echo "${f##*/merchgen-sm}"
done | sort -n)
if [ -z "$built" ]; then
    warn "no merchgen-sm* binaries in $BIN_DIR"
    exit 127
fi
newest=$(echo "$built" | tail -n 1)

gpu=${MERCHGEN_CUDA_ARCH:-}
if [ -z "$gpu" ] && command -v nvidia-smi >/dev/null 2>&1; then
    # "9.0" -> 90, "12.0" -> 120; first GPU only (merchgen drives one GPU per process).
    gpu=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .\r') || gpu=""
fi

pick=""
case "$gpu" in
    '' | *[!0-9]*)
        warn "cannot read the GPU's compute capability (no nvidia-smi or no GPU); using sm_$newest"
        pick=$newest
        ;;
    *)
        major=$((gpu / 10))
        for cc in $built; do
            if [ "$cc" -eq "$gpu" ]; then
                pick=$cc
            elif [ -z "$pick" ] || [ "$pick" -ne "$gpu" ]; then
                # Same major, not newer, and not an arch-specific (sm_90a-style) build.
                if [ $((cc / 10)) -eq "$major" ] && [ "$cc" -lt "$gpu" ] && [ "$cc" -ne 90 ]; then
                    pick=$cc
                fi
            fi
        done
        if [ -z "$pick" ]; then
            for cc in $built; do
                if [ "$cc" -lt "$gpu" ] && [ "$cc" -ne 90 ]; then pick=$cc; fi
            done
            if [ -n "$pick" ]; then
                warn "no build for compute capability $gpu; using sm_$pick (PTX compiled by the driver; quantized matmul kernels missing)"
            else
                warn "no build can run on compute capability $gpu (built: $(echo "$built" | tr '\n' ' ')); using sm_$newest"
                pick=$newest
            fi
        fi
        ;;
esac

exec "$BIN_DIR/merchgen-sm$pick" "$@"
