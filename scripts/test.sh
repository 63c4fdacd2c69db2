#!/usr/bin/env bash
# `make test`, after `make lint` (rustfmt, clippy, cfn-lint on template.yaml, hadolint): install
# the test peers (moto's S3 and SQS server, RunPod's Python client and cargo-lambda's Runtime API
# emulator, from PyPI into ./.venv), start them on loopback, run every cargo test against them,
# and stop them whatever happens. A test whose peer is missing fails here
# (MERCHGEN_REQUIRE_PEERS=1); under a plain `cargo test` it says SKIPPED and passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

endpoint="$(scripts/moto.sh start)"
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
export MERCHGEN_TEST_S3_ENDPOINT="$endpoint"
# moto takes any credentials; set, they keep the SDK's chains local (the tests themselves
# never change their process's environment).
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret-key AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# RunPod's Python client (tests/integration/serve_python.rs) and cargo-lambda (tests/integration/lambda_emulators.rs),
# pinned; reinstalled only when the pins change.
requirements=tests/python/requirements.txt
stamp="${MERCHGEN_VENV:-.venv}/.merchgen-python-requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    echo "test.sh: installing $requirements into ${MERCHGEN_VENV:-.venv}" >&2
    "${MERCHGEN_VENV:-.venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    cp "$requirements" "$stamp"
fi
# Tests must never reach the network: the hub client is kept offline.
export HF_HUB_OFFLINE=1
# Every peer was provided above, so a test that cannot find one fails instead of skipping.
export MERCHGEN_REQUIRE_PEERS=1
cargo test --locked --all-targets 2>&1
