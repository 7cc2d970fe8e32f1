# Infergo build. `make test` and `make run` work on a fresh clone: both fetch what they need
# (the ONNX Runtime library from the npm registry) through `make deps` first.

GO            ?= go
BIN           := bin/infergo
ORT_VERSION   := 1.30.0
ORT_LIB       := .deps/onnxruntime/libonnxruntime.so.1
ORT_SHA256    := ffb75a925ba05e47b235bb66e3e3911714a80b328a9c9425539feb204aa32a23
ORT_SIZE      := 45828512
# The CUDA execution provider (make deps-gpu): ORT 1.29 built for CUDA 13, loaded by the 1.30
# core as a plugin. The shared helper must also sit beside the core library, where ORT looks.
CUDA_PKG      := com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
CUDA_DIR      := .deps/cuda
CUDA_MEMBER   := package/Plugins/Linux/x64
CUDA_LIB      := $(CUDA_DIR)/libonnxruntime_providers_cuda.so
CUDA_SHA256   := 56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
CUDA_SIZE     := 229780440
SHARED_SHA256 := c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772
SHARED_SIZE   := 14632
# Tests and `run` find the library through this variable, wherever they are started from.
export INFERGO_ORT_LIB := $(CURDIR)/$(ORT_LIB)
# Budget of each fuzz target in `make fuzz` (0 disables). A count (`Nx`), not a duration:
# Go 1.26's fuzz coordinator reports a spurious "context deadline exceeded" when a duration
# expires while a worker is mid-call on a loaded machine (golang/go#75804, fixed in Go 1.27).
FUZZTIME      ?= 20000x
PKGS          := ./...

.PHONY: all deps deps-gpu build test test-short fuzz run bench bench-model bench-compare bench-saturation bench-rss lint clean proto

all: build

## deps: fetch the ONNX Runtime core library (npm onnxruntime-node@$(ORT_VERSION)) into .deps/
## and make sure ffmpeg is installed (speech recognition decodes Opus/WebM/MP4 audio with it)
deps: $(ORT_LIB) ffmpeg

# Speech recognition decodes WAV, FLAC, MP3 and Ogg Vorbis in Go and hands every other
# container to ffmpeg, as the Python containers do; its tests cover every format, so the
# binary must be there. Installed from Debian when missing (root on CI; sudo otherwise).
.PHONY: ffmpeg
ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || scripts/install-ffmpeg.sh

$(ORT_LIB):
	scripts/fetch-npm-lib.sh onnxruntime-node@$(ORT_VERSION) \
		package/bin/napi-v6/linux/x64/libonnxruntime.so.1 $@ $(ORT_SHA256) $(ORT_SIZE)

## deps-gpu: fetch the CUDA execution provider (npm $(CUDA_PKG)) into .deps/cuda/
deps-gpu: deps
	scripts/fetch-npm-lib.sh $(CUDA_PKG) \
		$(CUDA_MEMBER)/libonnxruntime_providers_cuda.so $(CUDA_LIB) $(CUDA_SHA256) $(CUDA_SIZE) \
		$(CUDA_MEMBER)/libonnxruntime_providers_shared.so $(CUDA_DIR)/libonnxruntime_providers_shared.so $(SHARED_SHA256) $(SHARED_SIZE) \
		$(CUDA_MEMBER)/libonnxruntime_providers_shared.so $(dir $(ORT_LIB))libonnxruntime_providers_shared.so $(SHARED_SHA256) $(SHARED_SIZE)

## build: compile bin/infergo (scripts/build-release.sh: the same build the Dockerfiles run)
build:
	GO=$(GO) scripts/build-release.sh $(BIN)

## test: lint, then every test with the race detector (fuzz targets replay their seeds and
## every input under testdata/fuzz; new inputs come from `make fuzz`, which explores at random
## and so is kept out of this deterministic gate)
test: deps lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## test-short: the unit tests without -race and fuzzing (quick local loop)
test-short: deps
	$(GO) test -count=1 $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each; commit what it finds under testdata/fuzz
fuzz: deps
	scripts/fuzz-all.sh $(FUZZTIME)

## run: serve the embedded default model on :8000 (no network needed)
run: $(ORT_LIB) build
	$(BIN) serve --addr :8000

## bench-model: write the MiniLM-shaped benchmark model (90 MB of random weights) to bench/testdata/model
bench-model:
	$(GO) run ./bench/cmd/benchmodel

## bench: run the go test benchmarks (see bench/RESULTS.md for the full protocol)
bench: deps bench-model
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

## bench-compare: raw ONNX Runtime loop vs Infergo (in process, HTTP, no batching), 3 rounds, one process
bench-compare: deps bench-model
	$(GO) run ./bench/cmd/compare -rounds 3 -extra

## bench-saturation: peak goodput, then open loop at 2x the peak: only 200/429, goodput >= 0.9x peak
bench-saturation: deps build bench-model
	$(GO) run ./bench/cmd/saturation

## bench-rss: 100k requests of random lengths; server RSS must stay within 5% of its post-warm-up size
bench-rss: deps build bench-model
	$(GO) run ./bench/cmd/rss

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.deps/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## proto: regenerate server/humanfirst/pb from proto/ (installs protoc and the pinned generators)
proto:
	scripts/gen-proto.sh

clean:
	rm -rf bin
