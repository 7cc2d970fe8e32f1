// Package gputest is the GPU test suite: the CPU parity tests (sentence-transformers goldens,
// the server's acceptance suite) run again with the CUDA execution provider. It holds only
// tests, gated by INFERGO_GPU_TESTS=1, so `make test` skips them on machines without a GPU;
// scripts/gpu-pack.sh compiles them (go test -c) for the lent GPU machine, which has no Go.
package gputest
