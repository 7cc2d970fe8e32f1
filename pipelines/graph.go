package pipelines

import (
	"context"
	"log/slog"
	"sync"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/onnxgraph"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/bucket"
	"github.com/infergo/infergo/runtime/sched"
)

// GraphOptions adapt a model's graph to the device it runs on. The zero value loads the graph
// as it is, which is what the CPU wants.
type GraphOptions struct {
	// PoolInGraph appends the sentence-transformers pooling to encoder graphs (when the repo
	// has a pooling config), so sessions return [batch, hidden] instead of [batch, seq,
	// hidden]: on a GPU that is most of the time a batch spends. Token-level requests then
	// use one more session on the same graph, opened on first use.
	PoolInGraph bool
	// Float16 converts the graph's weights and arithmetic to float16, inputs and outputs
	// staying float32 (CUDA only: the CPU has few float16 kernels).
	Float16 bool
	// FuseAttention replaces the exported attention blocks of encoder graphs with ONNX
	// Runtime's fused MultiHeadAttention operator (whose CUDA kernels are flash/memory-
	// efficient attention); graphs of another form are left as they are.
	FuseAttention bool
	// AttentionMask is the form the fused attention gets the padding in (see onnxgraph).
	AttentionMask onnxgraph.AttentionMask
	// SeqBucket pads each batch's sequence length up to a multiple of it (≤ 1: off), so a GPU
	// sees a few shapes rather than one per length.
	SeqBucket int
}

// prepared is the graph sessions are opened on.
type prepared struct {
	path   string
	task   string // inferred here when the rewrite needed it; "" otherwise
	pooled bool
}

// prepareGraph applies o's rewrites to the graph at path. The task is inferred from the
// graph file itself, since sessions on a pooled graph no longer show its token-level output.
// When the rewrite cannot be made (a read-only model folder, a graph it does not understand)
// the graph is served as it is, after a warning: the rewrites change speed, not answers.
func prepareGraph(repo *models.Repo, path string, o LoadOptions, log *slog.Logger) (prepared, error) {
	g := o.Graph
	if !g.PoolInGraph && !g.Float16 && !g.FuseAttention {
		return prepared{path: path}, nil
	}
	task := o.Task
	if task == "" {
		ranks, err := onnxgraph.OutputRanks(path)
		if err != nil {
			return prepared{}, err
		}
		if task, err = repo.InferTask(ranks); err != nil {
			return prepared{}, err
		}
	}
	encoder := task == TaskFeatureExtraction || task == TaskSentenceSimilarity
	// Only encoder graphs are rewritten: those are what the rewrites were checked on.
	spec := onnxgraph.Spec{Float16: g.Float16 && encoder, FuseAttention: g.FuseAttention && encoder, AttentionMask: g.AttentionMask}
	if spec.Empty() && !(g.PoolInGraph && encoder) {
		return prepared{path: path, task: task}, nil
	}
	if g.PoolInGraph && encoder {
		st, err := repo.SentenceTransformers()
		if err != nil {
			return prepared{}, err
		}
		if st != nil && st.Pooling != "" {
			spec.Pool = &onnxgraph.PoolSpec{Mode: st.Pooling}
		}
	}
	out, err := onnxgraph.Prepare(path, spec)
	if err != nil {
		log.Warn("serving the graph as exported: the device rewrite failed", "model", repo.ID, "err", err.Error())
		return prepared{path: path, task: task}, nil
	}
	return prepared{path: out, task: task, pooled: spec.Pool != nil}, nil
}

// bucketed wraps each session so batches are padded to g.SeqBucket.
func bucketed(sessions []runtime.Session, g GraphOptions, maxLen int, padID int64) ([]runtime.Session, error) {
	if g.SeqBucket <= 1 {
		return sessions, nil
	}
	out := make([]runtime.Session, len(sessions))
	for i, s := range sessions {
		b, err := bucket.Wrap(s, bucket.Config{Multiple: g.SeqBucket, MaxLength: maxLen, PadID: padID})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// lazyTokens opens, on first use, the session and scheduler that serve token-level requests
// for a pooled model. A failed attempt is retried by the next request.
type lazyTokens struct {
	open func(ctx context.Context) (runtime.Session, *sched.Scheduler, error)

	mu     sync.Mutex
	sess   runtime.Session
	sched  *sched.Scheduler
	output int
	closed bool
}

func (l *lazyTokens) get(ctx context.Context) (*sched.Scheduler, int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, 0, sched.ErrClosed
	}
	if l.sched == nil {
		sess, s, err := l.open(ctx)
		if err != nil {
			return nil, 0, err
		}
		l.sess, l.sched, l.output = sess, s, tokenOutput(s.Info())
	}
	return l.sched, l.output, nil
}

func (l *lazyTokens) close(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.sched == nil {
		return nil
	}
	err := l.sched.Close(ctx)
	l.sess.Close()
	return err
}
