package harness

import (
	"fmt"
	"io"
	"time"

	ortgo "github.com/yalue/onnxruntime_go"
)

// GridPoint is the median time of one Run of an n×L batch.
type GridPoint struct {
	N, L int
	Time time.Duration
}

// RunGrid times Runs of synthetic n×L batches on one session with the given intra-op
// threads: the data behind the scheduler's cost model (a fixed cost per run plus a cost per
// padded token). Each point is the median of reps Runs after one warm-up Run.
func RunGrid(graph string, threads int, ns, ls []int, reps int, progress io.Writer) ([]GridPoint, error) {
	opts, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("harness: grid: %w", err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(max(threads, 1)); err != nil {
		return nil, fmt.Errorf("harness: grid: %w", err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("harness: grid: %w", err)
	}
	sess, err := ortgo.NewDynamicAdvancedSession(graph, []string{"input_ids", "attention_mask", "token_type_ids"}, []string{"last_hidden_state"}, opts)
	if err != nil {
		return nil, fmt.Errorf("harness: grid: open %s: %w", graph, err)
	}
	defer sess.Destroy()
	var out []GridPoint
	for _, L := range ls {
		for _, n := range ns {
			ids := make([]int64, n*L)
			mask := make([]int64, n*L)
			for i := range ids {
				ids[i], mask[i] = int64(1000+i%20000), 1
			}
			c := &Corpus{}
			for r := 0; r < n; r++ {
				row := make([]int32, L)
				for p := range row {
					row[p] = int32(ids[r*L+p])
				}
				c.IDs = append(c.IDs, row)
			}
			batches, err := buildRawBatches(c, n, false, 384)
			if err != nil {
				return nil, err
			}
			b := batches[0]
			times := make([]float64, 0, reps)
			for k := 0; k <= reps; k++ {
				t := time.Now()
				if err := sess.Run(b.inputs, []ortgo.Value{b.output}); err != nil {
					b.destroy()
					return nil, fmt.Errorf("harness: grid run %d×%d: %w", n, L, err)
				}
				if k > 0 {
					times = append(times, float64(time.Since(t)))
				}
			}
			b.destroy()
			p := GridPoint{N: n, L: L, Time: time.Duration(Median(times))}
			out = append(out, p)
			if progress != nil {
				fmt.Fprintf(progress, "grid n=%d L=%d %.3f ms (%.2f µs/token)\n", n, L, ms(p.Time), float64(p.Time)/1e3/float64(n*L))
			}
		}
	}
	return out, nil
}
