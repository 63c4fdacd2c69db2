#!/usr/bin/env bash
# A real S3-compatible server on loopback for the integration tests: moto's server from PyPI,
# installed into ./.venv (idempotent, quiet) and started on a free port.
#
#   scripts/moto.sh install   install moto[server] into ./.venv if it is missing
#   scripts/moto.sh start     install if needed, start (or reuse) the server, print its endpoint
#   scripts/moto.sh stop      stop the server started by `start`
#
# Typical use (what `make test` does):
#   export MERCHGEN_TEST_S3_ENDPOINT="$(scripts/moto.sh start)"
#   cargo test; scripts/moto.sh stop
#
# Environment: MERCHGEN_VENV (default ./.venv), MERCHGEN_MOTO_STATE (default ./target/moto).
set -euo pipefail
# shellcheck source=scripts/venv.sh
source "$(dirname "${BASH_SOURCE[0]}")/venv.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MERCHGEN_VENV:-$ROOT/.venv}"
STATE="${MERCHGEN_MOTO_STATE:-$ROOT/target/moto}"
PY="$VENV/bin/python"
MOTO_SPEC='moto[server]>=5,<6'

log() { echo "moto.sh: $*" >&2; }

install() {
    if [[ -x "$PY" ]] && "$PY" -c 'import moto.server, flask, werkzeug' 2>/dev/null; then
        return 0
    fi
    log "installing $MOTO_SPEC into $VENV"
    ensure_venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check "$MOTO_SPEC" >&2
}

# Answers when the server on $1 (http://127.0.0.1:PORT) serves requests.
alive() {
    "$PY" - "$1" <<'EOF' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=2).read()
EOF
}

start() {
    install
    mkdir -p "$STATE"
    if [[ -f "$STATE/pid" && -f "$STATE/endpoint" ]] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null \
        && alive "$(cat "$STATE/endpoint")"; then
        cat "$STATE/endpoint"
        return 0
    fi
    local port endpoint pid
    port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    endpoint="http://127.0.0.1:$port"
    "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$STATE/log" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/pid"
    for _ in $(seq 1 150); do
        if alive "$endpoint"; then
            echo "$endpoint" >"$STATE/endpoint"
            log "moto on $endpoint (pid $pid, log $STATE/log)"
            echo "$endpoint"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        sleep 0.2
    done
    log "moto did not start; its log follows"
    cat "$STATE/log" >&2
    kill "$pid" 2>/dev/null || true
    return 1
}

stop() {
    if [[ -f "$STATE/pid" ]]; then
        kill "$(cat "$STATE/pid")" 2>/dev/null || true
        rm -f "$STATE/pid" "$STATE/endpoint"
    fi
}

case "${1:-start}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
