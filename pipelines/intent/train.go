package intent

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/infergo/infergo/pipelines"
)

// Head is the classifier put on top of the sentence embeddings.
type Head string

// Heads.
const (
	// HeadLogReg is multinomial logistic regression: convex, fast, well calibrated (default).
	HeadLogReg Head = "logreg"
	// HeadMLP adds one ReLU hidden layer, for intent sets a linear boundary separates poorly.
	HeadMLP Head = "mlp"
)

// TrainOptions tune training. The zero value gives the defaults listed.
type TrainOptions struct {
	Head Head // default HeadLogReg
	// Seed makes training reproducible: the validation split, shuffling and initialisation
	// all derive from it (default 42, HumanFirst's reference seed).
	Seed uint64
	// L2 is the weight penalty ½·L2·‖W‖² added to the mean cross-entropy (default 1e-4).
	L2 float64
	// LearningRate is Adam's step size (default 0.1 for logreg, 0.01 for the MLP).
	LearningRate float64
	// BatchSize is the mini-batch size (default 32).
	BatchSize int
	// MaxEpochs bounds training (default 100).
	MaxEpochs int
	// Patience stops training after this many epochs without a better validation loss
	// (default 5).
	Patience int
	// ValidationFraction is the share of each class held out for early stopping (default
	// 0.1; negative disables early stopping). Classes with fewer than 3 phrases give none.
	ValidationFraction float64
	// FixedEpochs is the number of epochs when there is no validation split (default 40).
	FixedEpochs int
	// NoRefit keeps the early-stopped weights, trained without the validation phrases. By
	// default the head is retrained on every phrase for the best epoch count, which matters
	// for intents with a handful of phrases.
	NoRefit bool
	// Hidden is the MLP's hidden width (default 128).
	Hidden int
	// Delimiter joins ancestor names in class full names (default DefaultDelimiter).
	Delimiter string
	// Embed controls the trip to the embedding model.
	Embed EmbedConfig
	// Progress, when set, is called after every epoch of every fit (for logs and tests).
	Progress func(Progress)
}

// Progress reports one finished epoch.
type Progress struct {
	Epoch     int
	Refit     bool // the final fit on all phrases
	TrainLoss float64
	ValLoss   float64 // NaN without a validation split
}

func (o TrainOptions) withDefaults() TrainOptions {
	if o.Head == "" {
		o.Head = HeadLogReg
	}
	if o.Seed == 0 {
		o.Seed = 42
	}
	if o.L2 == 0 {
		o.L2 = 1e-4
	}
	if o.LearningRate == 0 {
		o.LearningRate = 0.1
		if o.Head == HeadMLP {
			o.LearningRate = 0.01
		}
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 32
	}
	if o.MaxEpochs <= 0 {
		o.MaxEpochs = 100
	}
	if o.Patience <= 0 {
		o.Patience = 5
	}
	if o.ValidationFraction == 0 {
		o.ValidationFraction = 0.1
	}
	if o.FixedEpochs <= 0 {
		o.FixedEpochs = 40
	}
	if o.Hidden <= 0 {
		o.Hidden = 128
	}
	return o
}

func (o TrainOptions) validate() error {
	switch o.Head {
	case HeadLogReg, HeadMLP:
	default:
		return fmt.Errorf("intent: unknown head %q (want %q or %q)", o.Head, HeadLogReg, HeadMLP)
	}
	if o.L2 < 0 || o.LearningRate < 0 || math.IsNaN(o.L2) || math.IsNaN(o.LearningRate) {
		return fmt.Errorf("intent: negative L2 or learning rate")
	}
	return nil
}

// TrainStats describes one training run.
type TrainStats struct {
	Phrases    int           `json:"phrases"`
	Classes    int           `json:"classes"`
	Validation int           `json:"validation_phrases"`
	BestEpoch  int           `json:"best_epoch"`
	Epochs     int           `json:"epochs"` // total epochs run, refit included
	TrainAcc   float64       `json:"train_accuracy"`
	ValAcc     float64       `json:"validation_accuracy,omitempty"`
	EmbedTime  time.Duration `json:"embed_ns"`
	FitTime    time.Duration `json:"fit_ns"`
}

// classifier is a trained head plus the input standardisation it was trained with.
type classifier struct {
	head   Head
	mean   []float32 // per-feature mean of the training embeddings
	invStd []float32 // per-feature 1/std, scaled (see standardize)
	net    *mlp
}

// Train embeds the workspace's training phrases (Test-tagged phrases excluded) with emb and
// fits a classifier on them. The returned Model has no id yet; the caller names and saves it.
// Cancelling ctx stops training promptly with ctx.Err().
func Train(ctx context.Context, emb pipelines.Embedder, ws *Workspace, o TrainOptions) (*Model, error) {
	o = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	ds := ws.Dataset(o.Delimiter).trainOnly()
	if len(ds.Train) == 0 {
		return nil, dataErrorf("examples", "no labeled training phrases (need at least one phrase with a non-negative intent and no Test tag)")
	}
	t0 := time.Now()
	texts := make([]string, len(ds.Train))
	labels := make([]int, len(ds.Train))
	for i, s := range ds.Train {
		texts[i], labels[i] = s.Text, s.Label
	}
	o.Embed.RetryOverloaded = true
	vecs, err := EmbedTexts(ctx, emb, texts, o.Embed)
	if err != nil {
		return nil, err
	}
	embedTime := time.Since(t0)
	clf, stats, err := fit(ctx, vecs, labels, len(ds.Classes), o)
	if err != nil {
		return nil, err
	}
	stats.EmbedTime = embedTime
	gz, warnings := newGazetteer(ws)
	hidden := 0
	if o.Head == HeadMLP {
		hidden = o.Hidden
	}
	return &Model{
		Meta: Meta{
			FormatVersion: FormatVersion,
			Created:       time.Now().UTC().Truncate(time.Second),
			Head:          o.Head,
			Hidden:        hidden,
			Classes:       ds.Classes,
			Dimensions:    len(vecs[0]),
			Stats:         stats,
			Warnings:      warnings,
			Gazetteer:     gz.entries,
		},
		clf: clf,
		gaz: gz,
	}, nil
}

// trainOnly keeps the training split and the classes it uses (Test-only intents cannot be
// learned), relabelling samples.
func (ds *Dataset) trainOnly() *Dataset {
	counts := classCounts(ds.Train, len(ds.Classes))
	remap := make([]int, len(ds.Classes))
	out := &Dataset{SkippedNegative: ds.SkippedNegative}
	for i, c := range ds.Classes {
		remap[i] = -1
		if counts[i] > 0 {
			remap[i] = len(out.Classes)
			out.Classes = append(out.Classes, c)
		}
	}
	for _, s := range ds.Train {
		s.Label = remap[s.Label]
		out.Train = append(out.Train, s)
	}
	return out
}

// fit trains a head on vecs (one per label) for k classes: early stopping on a stratified
// validation split finds the epoch count, then (unless NoRefit) the head is refitted on
// every vector for that many epochs.
func fit(ctx context.Context, vecs [][]float32, labels []int, k int, o TrainOptions) (*classifier, TrainStats, error) {
	o = o.withDefaults()
	t0 := time.Now()
	d := len(vecs[0])
	clf := &classifier{head: o.Head}
	clf.mean, clf.invStd = standardization(vecs)
	x := make([]float32, len(vecs)*d)
	for i, v := range vecs {
		clf.standardize(v, x[i*d:(i+1)*d])
	}
	stats := TrainStats{Phrases: len(vecs), Classes: k}
	train, val := splitValidation(labels, k, o.ValidationFraction, o.Seed)
	stats.Validation = len(val)
	sizes := []int{d, k}
	if o.Head == HeadMLP {
		sizes = []int{d, o.Hidden, k}
	}
	var net *mlp
	var err error
	if len(val) == 0 {
		stats.BestEpoch = o.FixedEpochs
		net, stats.Epochs, err = runEpochs(ctx, x, labels, all(len(labels)), nil, sizes, o, o.FixedEpochs, false)
	} else {
		var best *mlp
		var ran int
		best, ran, stats.BestEpoch, err = earlyStopping(ctx, x, labels, train, val, sizes, o)
		stats.Epochs = ran
		if err == nil {
			stats.ValAcc = accuracy(best, x, labels, val)
			net = best
			if !o.NoRefit {
				var n int
				net, n, err = runEpochs(ctx, x, labels, all(len(labels)), nil, sizes, o, stats.BestEpoch, true)
				stats.Epochs += n
			}
		}
	}
	if err != nil {
		return nil, stats, err
	}
	clf.net = net
	stats.TrainAcc = accuracy(net, x, labels, all(len(labels)))
	stats.FitTime = time.Since(t0)
	return clf, stats, nil
}

// minImprovement is the relative drop in validation loss that counts as progress for early
// stopping; smaller gains are noise from the mini-batches and only cost epochs.
const minImprovement = 0.01

// earlyStopping trains on train, scores val after every epoch and returns the best weights.
func earlyStopping(ctx context.Context, x []float32, labels, train, val []int, sizes []int, o TrainOptions) (best *mlp, ran, bestEpoch int, err error) {
	bestLoss := math.Inf(1)
	var since int
	_, ran, err = runEpochs(ctx, x, labels, train, val, sizes, o, o.MaxEpochs, false, func(epoch int, n *mlp, valLoss float64) bool {
		if valLoss < bestLoss*(1-minImprovement) {
			bestLoss, bestEpoch, best, since = valLoss, epoch, n.clone(), 0
			return true
		}
		since++
		return since < o.Patience
	})
	if err == nil && best == nil { // the loss never became finite
		err = fmt.Errorf("intent: training diverged (validation loss %v)", bestLoss)
	}
	return best, ran, bestEpoch, err
}

// runEpochs trains a fresh network on the rows in idx for up to epochs epochs. After each
// epoch, when val is non-empty, it computes the validation loss and asks each hook whether to
// go on. It returns the final network and the number of epochs run.
func runEpochs(ctx context.Context, x []float32, labels, idx, val []int, sizes []int, o TrainOptions, epochs int, refit bool,
	hooks ...func(epoch int, n *mlp, valLoss float64) bool) (*mlp, int, error) {
	rng := rand.New(rand.NewPCG(o.Seed, 0x9e3779b97f4a7c15))
	net := newMLP(sizes, rng)
	d, k := sizes[0], sizes[len(sizes)-1]
	opt := newAdam(net, o.LearningRate, o.L2)
	bs := min(o.BatchSize, len(idx))
	s := net.newScratch(bs)
	order := append([]int(nil), idx...)
	batchLabels := make([]int, bs)
	params := net.params()
	for epoch := 1; epoch <= epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss float64
		for lo := 0; lo < len(order); lo += bs {
			if err := ctx.Err(); err != nil {
				return nil, epoch - 1, err
			}
			hi := min(lo+bs, len(order))
			rows := hi - lo
			for r, i := range order[lo:hi] {
				copy(s.acts[0][r*d:(r+1)*d], x[i*d:(i+1)*d])
				batchLabels[r] = labels[i]
			}
			logits := net.forward(s, rows)
			loss += softmaxXent(logits, batchLabels[:rows], k, s.grads[len(s.grads)-1][:rows*k])
			net.backward(s, rows)
			opt.update(params, s.pg)
		}
		p := Progress{Epoch: epoch, Refit: refit, TrainLoss: loss/float64(len(order)) + net.l2Penalty(o.L2), ValLoss: math.NaN()}
		if len(val) > 0 {
			p.ValLoss = meanLoss(net, x, labels, val)
		}
		if o.Progress != nil {
			o.Progress(p)
		}
		for _, h := range hooks {
			if !h(epoch, net, p.ValLoss) {
				return net, epoch, nil
			}
		}
	}
	return net, epochs, ctx.Err()
}

// evalChunk is the number of rows scored at once outside training.
const evalChunk = 256

// predictRows runs the rows in idx through n and calls fn with each row's probabilities.
func predictRows(n *mlp, x []float32, idx []int, fn func(i int, probs []float32)) {
	d, k := n.inputs(), n.outputs()
	s := n.newScratch(min(evalChunk, max(len(idx), 1)))
	for lo := 0; lo < len(idx); lo += evalChunk {
		hi := min(lo+evalChunk, len(idx))
		for r, i := range idx[lo:hi] {
			copy(s.acts[0][r*d:(r+1)*d], x[i*d:(i+1)*d])
		}
		logits := n.forward(s, hi-lo)
		for r := 0; r < hi-lo; r++ {
			p := logits[r*k : (r+1)*k]
			softmax(p)
			fn(idx[lo+r], p)
		}
	}
}

func meanLoss(n *mlp, x []float32, labels, idx []int) float64 {
	var loss float64
	predictRows(n, x, idx, func(i int, p []float32) {
		loss -= math.Log(math.Max(float64(p[labels[i]]), 1e-12))
	})
	return loss / float64(len(idx))
}

func accuracy(n *mlp, x []float32, labels, idx []int) float64 {
	if len(idx) == 0 {
		return 0
	}
	var ok int
	predictRows(n, x, idx, func(i int, p []float32) {
		if argmax(p) == labels[i] {
			ok++
		}
	})
	return float64(ok) / float64(len(idx))
}

func argmax(p []float32) int {
	best := 0
	for j, v := range p {
		if v > p[best] {
			best = j
		}
	}
	return best
}

func all(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// splitValidation holds out round(frac·n) phrases (at least one) of every class with three or
// more, chosen by a seeded shuffle; it returns the training and validation indices, sorted.
func splitValidation(labels []int, k int, frac float64, seed uint64) (train, val []int) {
	if frac <= 0 {
		return all(len(labels)), nil
	}
	byClass := make([][]int, k)
	for i, y := range labels {
		byClass[y] = append(byClass[y], i)
	}
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	isVal := make([]bool, len(labels))
	for _, members := range byClass {
		if len(members) < 3 {
			continue
		}
		rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		n := max(1, int(math.Round(frac*float64(len(members)))))
		for _, i := range members[:n] {
			isVal[i] = true
		}
	}
	for i, v := range isVal {
		if v {
			val = append(val, i)
		} else {
			train = append(train, i)
		}
	}
	// Early stopping on a handful of phrases from one class is noise: train for FixedEpochs.
	if len(val) < 2 {
		return all(len(labels)), nil
	}
	return train, val
}

// standardization returns per-feature means and inverse standard deviations, the latter
// scaled by 1/√d so a standardised vector has unit expected norm: logits then move by O(step)
// per Adam step whatever the embedding size.
func standardization(vecs [][]float32) (mean, invStd []float32) {
	d := len(vecs[0])
	m := make([]float64, d)
	v := make([]float64, d)
	for _, x := range vecs {
		for j, xj := range x {
			m[j] += float64(xj)
		}
	}
	n := float64(len(vecs))
	for j := range m {
		m[j] /= n
	}
	for _, x := range vecs {
		for j, xj := range x {
			dx := float64(xj) - m[j]
			v[j] += dx * dx
		}
	}
	mean, invStd = make([]float32, d), make([]float32, d)
	scale := 1 / math.Sqrt(float64(d))
	for j := range m {
		sd := math.Sqrt(v[j] / n)
		if sd < 1e-6 {
			sd = 1 // a constant feature carries no information; keep it at zero
		}
		mean[j] = float32(m[j])
		invStd[j] = float32(scale / sd)
	}
	return mean, invStd
}

func (c *classifier) standardize(v, dst []float32) {
	for j, x := range v {
		dst[j] = (x - c.mean[j]) * c.invStd[j]
	}
}

// probabilities returns one probability row per vector (each sums to 1, in class order).
func (c *classifier) probabilities(vecs [][]float32) ([][]float32, error) {
	d := len(c.mean)
	x := make([]float32, len(vecs)*d)
	for i, v := range vecs {
		if len(v) != d {
			return nil, fmt.Errorf("intent: %d-dim embedding for a classifier trained on %d dims", len(v), d)
		}
		c.standardize(v, x[i*d:(i+1)*d])
	}
	out := make([][]float32, len(vecs))
	predictRows(c.net, x, all(len(vecs)), func(i int, p []float32) {
		out[i] = append([]float32(nil), p...)
	})
	return out, nil
}
