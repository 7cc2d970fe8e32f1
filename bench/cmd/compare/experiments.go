package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/infergo/infergo/bench/harness"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/tokenize"
)

// experiments runs the measurements behind the scheduler's defaults: the cost grid, or
// raw-loop variants (threads, callers, spinning) compared in rounds.
func experiments(dir, corpora string, rounds int, grid bool, raw string) error {
	env, err := ort.NewEnvironment("")
	if err != nil {
		return err
	}
	defer env.Close()
	graph := filepath.Join(dir, "onnx", "model.onnx")
	fmt.Printf("machine: %s; ORT %s\n", harness.MachineInfo(), env.Version())
	if grid {
		for _, threads := range []int{1, 2} {
			fmt.Printf("threads %d\n", threads)
			if _, err := harness.RunGrid(graph, threads, []int{1, 2, 4, 8, 16, 32}, []int{8, 16, 32, 64, 128, 256}, 15, os.Stdout); err != nil {
				return err
			}
		}
		return nil
	}
	var cases []harness.Case
	for _, spec := range strings.Split(raw, ",") {
		cfg, err := parseRaw(spec)
		if err != nil {
			return err
		}
		cases = append(cases, harness.RawCase(graph, cfg))
	}
	tok, err := tokenize.FromFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return err
	}
	for _, name := range strings.Split(corpora, ",") {
		c, err := harness.LoadCorpus(filepath.Join("bench", "testdata", name+".txt"), tok, 512)
		if err != nil {
			return err
		}
		t, err := harness.Compare(context.Background(), c, cases, rounds, os.Stdout)
		if err != nil {
			return err
		}
		t.Markdown(os.Stdout, cases[0].Name)
		fmt.Println()
	}
	return nil
}

// parseRaw reads "b32:2x1[:nospin][:unsorted]" (batch, callers × threads).
func parseRaw(spec string) (harness.RawConfig, error) {
	cfg := harness.RawConfig{Sorted: true}
	for i, part := range strings.Split(spec, ":") {
		switch {
		case i == 0 && strings.HasPrefix(part, "b"):
			n, err := strconv.Atoi(part[1:])
			if err != nil {
				return cfg, fmt.Errorf("raw spec %q: %w", spec, err)
			}
			cfg.Batch = n
		case i == 1:
			c, t, ok := strings.Cut(part, "x")
			cn, err1 := strconv.Atoi(c)
			tn, err2 := strconv.Atoi(t)
			if !ok || err1 != nil || err2 != nil {
				return cfg, fmt.Errorf("raw spec %q: want callersxthreads", spec)
			}
			cfg.Callers, cfg.Threads = cn, tn
		case part == "nospin":
			cfg.NoSpinning = true
		case part == "sessions":
			cfg.OwnSessions = true
		case part == "unsorted":
			cfg.Sorted = false
		default:
			return cfg, fmt.Errorf("raw spec %q: unknown part %q", spec, part)
		}
	}
	return cfg, nil
}
