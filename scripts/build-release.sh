#!/usr/bin/env bash
# build-release.sh [OUT]: builds the infergo binary (default bin/infergo) the one way this
# project builds it: `make build`, both Dockerfiles' builder stages and a test in `make test`
# (internal/dockerlint) all run this script, so what CI checks is what the images ship.
# cgo is on (package cuda's shim); ONNX Runtime is dlopened at run time, so the binary links
# against libc alone and runs on glibc 2.36+ (Debian 12, Ubuntu 24.04).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bin/infergo}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
mkdir -p "$(dirname "$out")"
CGO_ENABLED=1 ${GO:-go} build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/infergo
echo "build-release: $out ($version)" >&2
