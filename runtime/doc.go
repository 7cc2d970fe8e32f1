// Package runtime defines what Infergo needs from an inference engine: dense host tensors, a
// Session that runs one loaded graph, and an Opener that loads graphs. It imports no engine;
// runtime/ort implements it with ONNX Runtime, runtime/fake implements it for tests, and
// runtime/sched (the batching scheduler) is the only code above this package that calls Run.
package runtime
