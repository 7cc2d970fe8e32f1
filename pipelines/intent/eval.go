package intent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/infergo/infergo/pipelines"
)

// EvalOptions tune Evaluate. The zero value runs 5-fold cross-validation with seed 42.
type EvalOptions struct {
	// Folds is k for k-fold cross-validation (default 5, at least 2).
	Folds int
	// Seed drives the fold assignment and, unless Train.Seed is set, training.
	Seed uint64
	// TestSet trains once on the training phrases and scores the Test-tagged ones (Studio's
	// "regression" run) instead of cross-validating.
	TestSet bool
	// Train tunes each fold's training, as for TrainModel.
	Train TrainOptions
	// Progress, when set, is called after each fold.
	Progress func(fold, folds int)
}

// Evaluate measures how well classifiers trained on ws generalise, the way HumanFirst Studio
// evaluates an integration's engine: train on a split, classify the held-out phrases, compare
// with their labels. Every phrase is embedded once up front (the folds share the vectors); each
// fold then trains exactly as TrainModel does. Test-tagged phrases never take part in k-fold
// cross-validation; with TestSet they are the phrases scored.
func Evaluate(ctx context.Context, emb pipelines.Embedder, ws *Workspace, o EvalOptions) (*Report, error) {
	if o.Folds == 0 {
		o.Folds = 5
	}
	if o.Folds < 2 && !o.TestSet {
		return nil, fmt.Errorf("intent: evaluate: %d folds (need at least 2)", o.Folds)
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.Train.Seed == 0 {
		o.Train.Seed = o.Seed
	}
	o.Train = o.Train.withDefaults()
	if err := o.Train.validate(); err != nil {
		return nil, err
	}
	ds := ws.Dataset(o.Train.Delimiter)
	samples := ds.Train
	if o.TestSet {
		if len(ds.Test) == 0 {
			return nil, dataErrorf("examples", "no phrases tagged %q to evaluate on", TestTagName)
		}
		if len(ds.Train) == 0 {
			return nil, dataErrorf("examples", "no training phrases besides the %q ones", TestTagName)
		}
		samples = append(append([]Sample(nil), ds.Train...), ds.Test...)
	} else if len(samples) < o.Folds {
		return nil, dataErrorf("examples", "%d labeled phrases for %d folds", len(samples), o.Folds)
	}
	texts := make([]string, len(samples))
	labels := make([]int, len(samples))
	for i, s := range samples {
		texts[i], labels[i] = s.Text, s.Label
	}
	t0 := time.Now()
	cfg := o.Train.Embed
	cfg.RetryOverloaded = true
	vecs, err := EmbedTexts(ctx, emb, texts, cfg)
	if err != nil {
		return nil, err
	}
	r := newReport(ds.Classes)
	r.EmbedTime = time.Since(t0)
	r.Seed = o.Seed

	// splits lists, per round, the indices trained on and those scored.
	type split struct{ train, test []int }
	var splits []split
	if o.TestSet {
		r.Mode = fmt.Sprintf("test set (phrases tagged %q)", TestTagName)
		s := split{}
		for i, smp := range samples {
			if smp.TestSplit {
				s.test = append(s.test, i)
			} else {
				s.train = append(s.train, i)
			}
		}
		splits = append(splits, s)
	} else {
		r.Mode = fmt.Sprintf("%d-fold cross-validation", o.Folds)
		r.Folds = o.Folds
		fold := stratifiedFolds(labels, len(ds.Classes), o.Folds, o.Seed)
		for f := range o.Folds {
			s := split{}
			for i, fi := range fold {
				if fi == f {
					s.test = append(s.test, i)
				} else {
					s.train = append(s.train, i)
				}
			}
			splits = append(splits, s)
		}
	}
	t1 := time.Now()
	for f, s := range splits {
		trainVecs := make([][]float32, len(s.train))
		trainLabels := make([]int, len(s.train))
		for j, i := range s.train {
			trainVecs[j], trainLabels[j] = vecs[i], labels[i]
		}
		clf, _, err := fit(ctx, trainVecs, trainLabels, len(ds.Classes), o.Train)
		if err != nil {
			return nil, fmt.Errorf("intent: evaluate fold %d: %w", f+1, err)
		}
		testVecs := make([][]float32, len(s.test))
		for j, i := range s.test {
			testVecs[j] = vecs[i]
		}
		probs, err := clf.probabilities(testVecs)
		if err != nil {
			return nil, err
		}
		for j, i := range s.test {
			r.add(labels[i], argmax(probs[j]))
		}
		if o.Progress != nil {
			o.Progress(f+1, len(splits))
		}
	}
	r.TrainTime = time.Since(t1)
	r.finish()
	return r, nil
}

// EvaluateFile reads a HumanFirst JSON workspace (plain or gzip) and evaluates it: the
// `infergo humanfirst evaluate` command in one call.
func EvaluateFile(ctx context.Context, emb pipelines.Embedder, path string, o EvalOptions) (*Report, error) {
	ws, err := ReadWorkspaceFile(path)
	if err != nil {
		return nil, err
	}
	return Evaluate(ctx, emb, ws, o)
}

// stratifiedFolds assigns each sample a fold in [0, k): every class's samples, shuffled with
// the seed, are dealt round-robin, continuing where the previous class stopped so the folds
// come out within one phrase of the same size.
func stratifiedFolds(labels []int, classes, k int, seed uint64) []int {
	byClass := make([][]int, classes)
	for i, y := range labels {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0xda3e39cb94b95bdb))
	fold := make([]int, len(labels))
	next := 0
	for _, members := range byClass {
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		for _, i := range members {
			fold[i] = next % k
			next++
		}
	}
	return fold
}
