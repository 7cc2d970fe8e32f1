// Package bench holds Infergo's performance suites: `go test -bench . ./bench` compares, on
// the MiniLM-L6-shaped benchmark model (`make bench-model`), (a) a raw ONNX Runtime loop over
// pre-tokenised, length-sorted fixed batches, (b) Infergo in process, (c) Infergo over HTTP
// with 32 clients and (d) Infergo without batching, each on the short-query and passage
// corpora. The helpers live in bench/harness; the one-run comparison with rounds and ratios
// is bench/cmd/compare, and bench/RESULTS.md records the numbers.
package bench
