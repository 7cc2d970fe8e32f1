package asr

import (
	"context"
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/runtime"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/runtime/sched"
)

type whisperGolden struct {
	PromptIDs     []int32 `json:"prompt_ids"`
	GreedyNewIDs  []int32 `json:"greedy_new_ids"`
	Text          string  `json:"text"`
	TeacherForced struct {
		IDs        []int32   `json:"ids"`
		Argmax     []int32   `json:"argmax"`
		LogitAtMax []float64 `json:"logit_at_argmax"`
		LogitsSum  []float64 `json:"logits_sum"`
	} `json:"teacher_forced"`
}

func readGolden(t testing.TB, dir string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFile(t, filepath.Join(dir, "golden.json")), v); err != nil {
		t.Fatal(err)
	}
}

func openerT(t testing.TB) runtime.Opener {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	return env
}

// loadRepo loads a speech repo from dir with one intra-op thread per session.
func loadRepo(t testing.TB, dir string, o LoadOptions) Recognizer {
	t.Helper()
	repo, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	o.Opener = openerT(t)
	o.Runtime.IntraOpThreads = 1
	r, err := Load(context.Background(), repo, o)
	if err != nil {
		t.Fatalf("Load %s: %v", dir, err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func whisperOf(t testing.TB, r Recognizer) *Whisper {
	t.Helper()
	w, ok := r.(*closing).Unwrap().(*Whisper)
	if !ok {
		t.Fatalf("%T is not Whisper", r)
	}
	return w
}

func TestWhisperGreedyParity(t *testing.T) {
	var g whisperGolden
	readGolden(t, whisperDir, &g)
	r := loadRepo(t, whisperDir, LoadOptions{})
	pcm := loadPCM(t, filepath.Join(whisperDir, "sample.wav"), 16000)
	res, err := r.Transcribe(context.Background(), pcm, Options{Language: "en", MaxNewTokens: len(g.GreedyNewIDs)})
	if err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(g.PromptIDs), g.GreedyNewIDs...)
	if len(res.Sequences) != 1 || !slices.Equal(res.Sequences[0], want) {
		t.Fatalf("ids %v\nwant %v", res.Sequences, want)
	}
	if res.Text != g.Text {
		t.Fatalf("text %q, want %q", res.Text, g.Text)
	}
}

func TestWhisperTeacherForced(t *testing.T) {
	var g whisperGolden
	readGolden(t, whisperDir, &g)
	r := loadRepo(t, whisperDir, LoadOptions{})
	w := whisperOf(t, r)
	tf := g.TeacherForced
	prompt := len(g.PromptIDs)
	var argmaxes []int32
	var worstMax, worstSum float64
	w.dec.force = func(st *whisperSeq, logits []float32) (int32, bool) {
		// Position p's logits predict token p+1; the prompt pass reports only its last row,
		// so record from position prompt-1 on.
		p := len(st.ids) - 1
		a := argmax(logits)
		argmaxes = append(argmaxes, a)
		var sum float64
		for _, v := range logits {
			sum += float64(v)
		}
		worstMax = max(worstMax, math.Abs(float64(logits[a])-tf.LogitAtMax[p]))
		worstSum = max(worstSum, math.Abs(sum-tf.LogitsSum[p]))
		if p+1 < len(tf.IDs) {
			return tf.IDs[p+1], true
		}
		return 0, true
	}
	pcm := loadPCM(t, filepath.Join(whisperDir, "sample.wav"), 16000)
	steps := len(tf.IDs) - prompt + 1
	if _, err := r.Transcribe(context.Background(), pcm, Options{Language: "en", MaxNewTokens: steps}); err != nil {
		t.Fatal(err)
	}
	if want := tf.Argmax[prompt-1:]; !slices.Equal(argmaxes, want) {
		t.Fatalf("teacher-forced argmax %v, want %v", argmaxes, want)
	}
	// The positions inside the prompt: the prompt graph's other logits rows.
	mel := w.mel.Compute(pcm)
	enc, err := w.enc.Submit(context.Background(), []sched.Sequence{{Features: map[string]runtime.Tensor{
		"input_features": runtime.NewTensor([]int64{int64(w.mel.Mels()), int64(w.mel.Frames())}, mel)}}})
	if err != nil {
		t.Fatal(err)
	}
	st := &whisperSeq{ids: slices.Clone(tf.IDs[:prompt]), enc: enc[0].Outputs[w.encOut]}
	outs, err := w.dec.runFirst(context.Background(), []*whisperSeq{st}, prompt)
	if err != nil {
		t.Fatal(err)
	}
	lv := outs[w.dec.g.f.outLogits].Float32s()
	V := w.dec.g.vocab
	for p := 0; p < prompt-1; p++ { // prompt-1 was checked above
		row := lv[p*V : (p+1)*V]
		a := argmax(row)
		var sum float64
		for _, v := range row {
			sum += float64(v)
		}
		if a != tf.Argmax[p] || math.Abs(float64(row[a])-tf.LogitAtMax[p]) > 1e-3 || math.Abs(sum-tf.LogitsSum[p]) > 1e-2 {
			t.Fatalf("prompt position %d: argmax %d (%v, sum %v), golden %d (%v, sum %v)", p, a, row[a], sum, tf.Argmax[p], tf.LogitAtMax[p], tf.LogitsSum[p])
		}
		argmaxes = append(argmaxes, a)
	}
	t.Logf("teacher-forced positions %d: logit at argmax max |Δ| %.2g, logits sum max |Δ| %.2g", len(argmaxes), worstMax, worstSum)
	if worstMax > 1e-3 || worstSum > 1e-2 {
		t.Fatalf("logits drift: %g at argmax, %g in the sum", worstMax, worstSum)
	}
}
