#!/usr/bin/env bash
# `merchgen bench pipeline` against the local S3 server: 40 jobs with six mockups each, uploads to
# moto on loopback, at pipeline depths 1 (one job at a time), 2 and 3, and batched (4 images per
# forward pass, 8 jobs in flight), first on the
# benchmark-only simulated GPU (the engine thread sleeps per step, using no CPU), then 10 jobs on
# the tiny model (the real engine through the same path). Figures go to docs/benchmarks.md.
#
#   bench/pipeline.sh [BIN]      BIN defaults to target/release/merchgen, else target/debug
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin="${1:-}"
if [[ -z "$bin" ]]; then
    bin=target/release/merchgen
    [[ -x "$bin" ]] || bin=target/debug/merchgen
fi
export MERCHGEN_MOTO_STATE="$PWD/target/moto-bench"
endpoint="$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true MERCHGEN_S3_ENDPOINT="$endpoint" MERCHGEN_S3_PATH_STYLE=true \
    HF_HUB_OFFLINE=1 MERCHGEN_DEVICE=cpu MERCHGEN_LOG_FORMAT=json RUST_LOG=warn
"${MERCHGEN_VENV:-.venv}/bin/python" - "$endpoint" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.create_bucket(Bucket="bench")
PY
export MERCHGEN_OUTPUT=s3://bench/out
echo "== simulated GPU: 250 ms per step, 4 steps, 40 jobs x 6 mockups of 1024², uploads to $endpoint"
"$bin" bench pipeline --simulate-gpu-ms 250 --jobs 40 --steps 4 --size 512 --mockup-size 1024
tiny=target/tiny-model
"$bin" models tiny --out "$tiny" >/dev/null
echo "== tiny model on the CPU: 10 jobs, 4 steps, 256², 6 mockups of 1024²"
MERCHGEN_MODEL="$tiny" MERCHGEN_MIN_SIDE=64 MERCHGEN_WEIGHTS=quantized \
    "$bin" bench pipeline --jobs 10 --steps 4 --size 256 --mockup-size 1024
