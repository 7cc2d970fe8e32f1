package asr

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

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

type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) Rejected()            {}
func (b *batchSizes) Queued(time.Duration) {}
func (b *batchSizes) Dropped()             {}
func (b *batchSizes) Batch(s sched.BatchStats) {
	b.mu.Lock()
	b.sizes = append(b.sizes, s.Size)
	b.mu.Unlock()
}

// TestWhisperConcurrent runs different clips one at a time and then all at once: the results
// must be identical, the encoder must have batched windows of different requests, and the
// decode loop must have shared steps (fewer model calls than the requests alone).
func TestWhisperConcurrent(t *testing.T) {
	obs := &batchSizes{}
	r := loadRepo(t, whisperDir, LoadOptions{Sched: sched.Config{MaxQueueDelay: 200 * time.Millisecond, Observer: obs}})
	w := whisperOf(t, r)
	files := []string{"speech.wav", "speech.flac", "speech_stereo.ogg", "speech_22k_stereo.wav", "speech.mp3", "long.ogg"}
	pcms := make([][]float32, len(files))
	for i, f := range files {
		pcms[i] = loadPCM(t, filepath.Join(audioDir, f), 16000)
	}
	pcms = append(pcms, loadPCM(t, filepath.Join(whisperDir, "sample.wav"), 16000))
	opts := []Options{{Language: "en", MaxNewTokens: 30}, {MaxNewTokens: 20}} // detected language too
	ctx := context.Background()
	want := make([]Result, len(pcms))
	calls0 := w.loop.ModelCalls()
	for i, pcm := range pcms {
		res, err := r.Transcribe(ctx, pcm, opts[i%2])
		if err != nil {
			t.Fatal(err)
		}
		want[i] = res
	}
	alone := w.loop.ModelCalls() - calls0
	obs.mu.Lock()
	obs.sizes = nil
	obs.mu.Unlock()

	calls0 = w.loop.ModelCalls()
	got := make([]Result, len(pcms))
	errs := make([]error, len(pcms))
	var wg sync.WaitGroup
	for i, pcm := range pcms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = r.Transcribe(ctx, pcm, opts[i%2])
		}()
	}
	wg.Wait()
	together := w.loop.ModelCalls() - calls0
	for i := range pcms {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if got[i].Text != want[i].Text || !reflect.DeepEqual(got[i].Sequences, want[i].Sequences) {
			t.Fatalf("request %d: concurrent result differs from the lone one:\n%v\n%v", i, got[i].Sequences, want[i].Sequences)
		}
	}
	obs.mu.Lock()
	sizes := obs.sizes
	obs.mu.Unlock()
	if slices.Max(sizes) < 2 {
		t.Fatalf("encoder batches %v: windows of concurrent requests never shared a run", sizes)
	}
	if together >= alone {
		t.Fatalf("decode loop made %d model calls for the concurrent requests, %d for them one at a time", together, alone)
	}
	t.Logf("encoder batch sizes %v; decoder model calls %d together vs %d alone", sizes, together, alone)
}

// TestWhisperLongAudio transcribes 35 s of speech: two 30 s windows overlapping by 10 s,
// each decoded exactly as that stretch of audio alone, stitched into one text.
func TestWhisperLongAudio(t *testing.T) {
	r := loadRepo(t, whisperDir, LoadOptions{})
	pcm := loadPCM(t, filepath.Join(audioDir, "long.ogg"), 16000)
	if len(pcm) <= 480000 {
		t.Fatalf("long.ogg is %d samples, want more than 30 s", len(pcm))
	}
	ctx := context.Background()
	o := Options{Language: "en", MaxNewTokens: 40}
	res, err := r.Transcribe(ctx, pcm, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Windows != 2 || len(res.Sequences) != 2 {
		t.Fatalf("%d windows, want 2", res.Windows)
	}
	parts := [][]float32{pcm[:480000], pcm[320000:]}
	var texts [][]int32
	w := whisperOf(t, r)
	for i, part := range parts {
		one, err := r.Transcribe(ctx, part, o)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one.Sequences[0], res.Sequences[i]) {
			t.Fatalf("window %d decodes differently inside the long request", i)
		}
		var text []int32
		for _, id := range one.Sequences[0] {
			if !w.tok.IsSpecial(id) {
				text = append(text, id)
			}
		}
		texts = append(texts, text)
	}
	if want := w.decode(longestCommonSequence(texts)); res.Text != want || res.Text == "" {
		t.Fatalf("long text %q, want the stitched %q", res.Text, want)
	}
	// Explicit chunking parameters are honoured, and bad ones refused.
	res, err = r.Transcribe(ctx, pcm, Options{Language: "en", MaxNewTokens: 5, ChunkLength: 10, StrideLength: 2})
	if err != nil || res.Windows != 6 {
		t.Fatalf("10 s chunks: %d windows, %v", res.Windows, err)
	}
	var ie *InvalidError
	if _, err := r.Transcribe(ctx, pcm, Options{ChunkLength: 40}); !errors.As(err, &ie) {
		t.Fatalf("40 s chunks: %v", err)
	}
	if _, err := r.Transcribe(ctx, pcm, Options{ChunkLength: 10, StrideLength: 6}); !errors.As(err, &ie) {
		t.Fatalf("stride over half the chunk: %v", err)
	}
}

func TestWhisperOptions(t *testing.T) {
	r := loadRepo(t, whisperDir, LoadOptions{})
	pcm := loadPCM(t, filepath.Join(whisperDir, "sample.wav"), 16000)
	ctx := context.Background()
	var ie *InvalidError
	for _, o := range []Options{
		{Timestamps: true},    // no timestamp tokens in the fixture vocabulary
		{Language: "klingon"}, // unknown language
		{Task: "summarize"},   // unknown task
		{MaxNewTokens: 445},   // 4 + 445 > max_target_positions 448
		{Timestamps: true, WordTimestamps: true},
	} {
		if _, err := r.Transcribe(ctx, pcm, o); !errors.As(err, &ie) {
			t.Errorf("%+v: %v, want an InvalidError", o, err)
		}
	}
	// Language by name, code or token; task translate.
	for _, lang := range []string{"german", "de", "<|de|>", "German"} {
		res, err := r.Transcribe(ctx, pcm, Options{Language: lang, Task: "translate", MaxNewTokens: 2})
		if err != nil || !slices.Equal(res.Sequences[0][:4], []int32{1, 3, 4, 9}) {
			t.Fatalf("%s: %v %v", lang, res.Sequences, err)
		}
	}
	// Detection picks the most likely language token (the fixture's random model says de).
	res, err := r.Transcribe(ctx, pcm, Options{MaxNewTokens: 2})
	if err != nil || !slices.Equal(res.Sequences[0][:4], []int32{1, 3, 5, 9}) {
		t.Fatalf("detected prompt %v %v", res.Sequences, err)
	}
	// A cancelled request ends with the context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Transcribe(cctx, pcm, Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
