#!/usr/bin/env bash
# gen-proto.sh: regenerates the Go code for the HumanFirst integration protos (proto/ →
# server/humanfirst/pb/*). It installs its own tools so `make proto` works on a fresh Debian
# machine: protoc from Debian's protobuf-compiler (3.21.12 on Debian 12) and the two Go
# generators at pinned versions into bin/tools (git-ignored). The pinned versions are written
# into every generated header, so regenerating with them reproduces the committed files byte
# for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_WANT="libprotoc 3.21.12"
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
TOOLS="$PWD/bin/tools"
MODULE=github.com/infergo/infergo

if ! command -v protoc >/dev/null 2>&1; then
  echo "proto: installing protoc (Debian protobuf-compiler)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq protobuf-compiler
fi
have=$(protoc --version)
if [ "$have" != "$PROTOC_WANT" ]; then
  # Only the "// protoc vX" header line depends on this; warn rather than fail.
  echo "proto: warning: $have found, the committed code was generated with $PROTOC_WANT" >&2
fi

mkdir -p "$TOOLS"
if [ "$("$TOOLS/protoc-gen-go" --version 2>/dev/null || true)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]; then
  GOBIN="$TOOLS" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
if [ "$("$TOOLS/protoc-gen-go-grpc" --version 2>/dev/null || true)" != "protoc-gen-go-grpc ${PROTOC_GEN_GO_GRPC_VERSION#v}" ]; then
  GOBIN="$TOOLS" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi

[ -d server/humanfirst/pb ] && find server/humanfirst/pb -name "*.pb.go" -delete
protoc -I proto \
  --plugin=protoc-gen-go="$TOOLS/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$TOOLS/protoc-gen-go-grpc" \
  --go_out=. --go_opt=module="$MODULE" \
  --go-grpc_out=. --go-grpc_opt=module="$MODULE" \
  $(cd proto && find . -name '*.proto' | sed 's#^\./##' | LC_ALL=C sort)
echo "proto: generated $(find server/humanfirst/pb -name '*.go' | wc -l) files under server/humanfirst/pb"
