#!/usr/bin/env bash
# `make test`: every lint and every test, with real S3/SQS peers on loopback; installs what it
# needs. Laid out for a cold CI machine, where compiling is most of the time:
#
# 1. rustfmt (seconds).
# 2. In the background: the Python peers and linters, one pip install into ./.venv (moto's S3
#    and SQS server, RunPod's client, cargo-lambda's Runtime API emulator, cfn-lint, hadolint;
#    tests/python/requirements.txt), then cfn-lint on template.yaml and hadolint on the
#    Dockerfiles; and the print tests' checkers from Debian (qpdf, Ghostscript, librsvg:
#    scripts/print-tools.sh).
# 3. Meanwhile every test target is built once (`--tests`: the library, its unit tests, the
#    binary the integration tests start, and the integration tests), with clippy's lints
#    (`-D warnings`) run on merchgen's own code as it compiles: clippy-driver is the
#    workspace's compiler wrapper, so the dependencies compile once (for the tests) instead of
#    once more for a separate `cargo clippy` (`make clippy` still runs that).
# 4. moto on loopback, then every test. A test whose peer is missing fails here
#    (MERCHGEN_REQUIRE_PEERS=1); under a plain `cargo test` it says SKIPPED and passes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh

VENV="${MERCHGEN_VENV:-.venv}"
LOGS=target/test-logs
mkdir -p "$LOGS"
log() { echo "test.sh: $*" >&2; }
now() { date +%s; }
started=$(now)

# 1. Formatting (rustfmt and clippy: `make rust-components` adds them where rustup lacks them).
cargo fmt --all -- --check

# 2. Python peers and linters, and the print tests' Debian tools, in the background (reinstalled
# only when the pins change).
python_side() {
    scripts/print-tools.sh
    local requirements=tests/python/requirements.txt stamp="$VENV/.merchgen-python-requirements"
    if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
        echo "installing $requirements into $VENV"
        ensure_venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$stamp"
    fi
    MERCHGEN_VENV="$VENV" scripts/cfn-lint.sh
    MERCHGEN_VENV="$VENV" scripts/lint-docker.sh
}
python_side >"$LOGS/python.log" 2>&1 &
python_pid=$!

# 3. Build every test target once, linted by clippy as it compiles.
clippy_driver="$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)"
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-Dwarnings__CLIPPY_HACKERY__"
# A cold build gains nothing from incremental state, and writing it costs time.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo test --locked --tests --no-run
log "built and linted every target in $(($(now) - started)) s"

if ! wait "$python_pid"; then
    cat "$LOGS/python.log" >&2
    log "the Python peers or linters failed (log above)"
    exit 1
fi
cat "$LOGS/python.log" >&2

# 4. The peers on loopback, then every test.
endpoint="$(MERCHGEN_VENV="$VENV" scripts/moto.sh start)"
trap 'scripts/moto.sh stop >/dev/null 2>&1 || true' EXIT
export MERCHGEN_TEST_S3_ENDPOINT="$endpoint"
# moto takes any credentials; set, they keep the SDK's chains local (the tests themselves
# never change their process's environment).
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing-secret-key AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
# Tests must never reach the network: the hub client is kept offline.
export HF_HUB_OFFLINE=1
# Every peer was provided above, so a test that cannot find one fails instead of skipping.
export MERCHGEN_REQUIRE_PEERS=1
cargo test --locked --tests 2>&1
log "done in $(($(now) - started)) s"
