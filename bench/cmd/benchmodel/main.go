// Command benchmodel writes the benchmark model (MiniLM-L6-shaped graph, random weights, real
// bert-base-uncased tokenizer) to bench/testdata/model, or to the directory given.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/infergo/infergo/bench/benchmodel"
)

func main() {
	root := flag.String("root", ".", "repository root")
	flag.Parse()
	dir := filepath.Join(*root, "bench", "testdata", "model")
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	out, err := benchmodel.Ensure(*root, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(out)
}
