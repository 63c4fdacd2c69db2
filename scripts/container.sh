#!/usr/bin/env bash
# `make container` / `make container-lambda`: build an image where a Docker engine runs.
#
#   scripts/container.sh DOCKERFILE TAG [docker build options...]
#   e.g. scripts/container.sh container/Dockerfile merchgen:cuda --build-arg CUDA_ARCHS=90
#
# Fails with a clear message (exit 1) where only the docker client is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DOCKERFILE=${1:?usage: container.sh DOCKERFILE TAG [docker build options...]}
TAG=${2:?usage: container.sh DOCKERFILE TAG [docker build options...]}
shift 2

if ! command -v docker >/dev/null 2>&1; then
    echo "container: no docker command here; install Docker (with BuildKit) to build $TAG" >&2
    exit 1
fi
if ! docker info >/dev/null 2>&1; then
    echo "container: the docker client cannot reach a Docker engine (is dockerd running, or DOCKER_HOST set?); $TAG was not built" >&2
    exit 1
fi
DOCKER_BUILDKIT=1 docker build -f "$DOCKERFILE" -t "$TAG" "$@" .
