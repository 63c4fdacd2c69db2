#!/usr/bin/env bash
# Check template.yaml (AWS SAM) with cfn-lint, installed from PyPI into ./.venv (idempotent).
# `make lint` and `make test` run it.
#
# cfn-lint is pinned: 1.51 runs the real SAM transform (aws-sam-translator) before linting, so it
# checks the function, its SQS trigger and the queue together. Later releases validate SAM
# resources without the transform and let mistakes such as a visibility timeout below the
# function timeout pass; the canary below fails loudly if the installed cfn-lint does that.
#
# Environment: MERCHGEN_VENV (default ./.venv).
set -euo pipefail
# shellcheck source=scripts/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MERCHGEN_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
CFN_LINT_VERSION='1.51.0'
TEMPLATE="$ROOT/template.yaml"

log() { echo "cfn-lint.sh: $*" >&2; }

install() {
    if [[ -x "$VENV/bin/cfn-lint" ]] && "$PY" -c 'import samtranslator' 2>/dev/null \
        && [[ "$("$VENV/bin/cfn-lint" --version 2>/dev/null)" == "cfn-lint $CFN_LINT_VERSION" ]]; then
        return 0
    fi
    log "installing cfn-lint $CFN_LINT_VERSION into $VENV"
    ensure_venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2
}

# A copy of the template whose queue hides messages for less than the function may run must be
# rejected (E3505): proof that the SAM transform ran and the real checks apply.
canary() {
    local broken
    broken="$(mktemp --suffix=.yaml)"
    trap 'rm -f "$broken"' RETURN
    sed 's/VisibilityTimeout: 5400/VisibilityTimeout: 60/' "$TEMPLATE" >"$broken"
    local found
    found="$("$VENV/bin/cfn-lint" "$broken" || true)"
    if [[ "$found" == *E3505* ]]; then
        return 0
    fi
    log "canary failed: cfn-lint accepted a queue visibility timeout below the function timeout"
    return 1
}

install
"$VENV/bin/cfn-lint" "$TEMPLATE"
canary
log "template.yaml passes cfn-lint $CFN_LINT_VERSION"
