#!/usr/bin/env bash
# gen-onnx-proto.sh: regenerates models/onnxgraph/onnxpb/onnx.pb.go from onnx.proto (the ONNX
# project's proto2 schema, Apache-2.0, copied verbatim from github.com/onnx/onnx onnx/onnx.proto at
# commit f7546912001bc31e92a238b17068a21b373d882e). Same tools and pins as gen-proto.sh: protoc
# from Debian's protobuf-compiler and protoc-gen-go v1.36.12 in bin/tools.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
TOOLS="$PWD/bin/tools"
MODULE=github.com/infergo/infergo
DIR=models/onnxgraph/onnxpb

if ! command -v protoc >/dev/null 2>&1; then
  echo "onnx-proto: installing protoc (Debian protobuf-compiler)"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq protobuf-compiler
fi
mkdir -p "$TOOLS"
if [ "$("$TOOLS/protoc-gen-go" --version 2>/dev/null || true)" != "protoc-gen-go $PROTOC_GEN_GO_VERSION" ]; then
  GOBIN="$TOOLS" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
fi
rm -f "$DIR/onnx.pb.go"
# The schema has no go_package option (it is upstream's file, unedited): map it here.
protoc -I "$DIR" \
  --plugin=protoc-gen-go="$TOOLS/protoc-gen-go" \
  --go_out=. --go_opt=module="$MODULE" \
  --go_opt=Monnx.proto="$MODULE/$DIR;onnxpb" \
  onnx.proto
echo "onnx-proto: generated $DIR/onnx.pb.go"
