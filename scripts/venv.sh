#!/usr/bin/env bash
# Sourced by the scripts that install Python tools: `ensure_venv DIR` creates the virtual
# environment DIR if it is missing, first installing Debian's python3 and python3-venv when this
# machine lacks them (a fresh Debian has no ensurepip).
ensure_venv() {
    local venv="$1"
    [[ -x "$venv/bin/python" ]] && return 0
    if ! command -v python3 >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
        local sudo=""
        [[ "$(id -u)" == 0 ]] || sudo="sudo"
        echo "venv.sh: installing python3 and python3-venv (apt)" >&2
        $sudo apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >&2
    fi
    python3 -m venv "$venv"
}
