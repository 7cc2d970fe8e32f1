package pipelines

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/runtime/sched"
)

type gptGolden struct {
	Greedy []struct {
		Prompt        string  `json:"prompt"`
		PromptIDs     []int32 `json:"prompt_ids"`
		NewIDs        []int32 `json:"new_ids"`
		GeneratedText string  `json:"generated_text"`
		NewText       string  `json:"new_text"`
	} `json:"greedy"`
}

func loadGPT(t *testing.T, o LoadOptions) (*Model, gptGolden) {
	t.Helper()
	m := loadFixture(t, "tiny-gpt2", o)
	var g gptGolden
	testutil.LoadJSON(t, testutil.Fixture("tiny-gpt2", "golden.json"), &g)
	return m, g
}

func ids(gen Generation) []int32 {
	out := make([]int32, len(gen.Tokens))
	for i, t := range gen.Tokens {
		out[i] = t.ID
	}
	return out
}

func TestTextGenerationGolden(t *testing.T) {
	for _, graph := range []string{"", "onnx/model.onnx"} {
		t.Run("graph="+graph, func(t *testing.T) {
			m, g := loadGPT(t, LoadOptions{ONNXFile: graph, Task: map[string]string{"": "", "onnx/model.onnx": TaskTextGeneration}[graph]})
			if m.Info.Task != TaskTextGeneration || m.Generator == nil {
				t.Fatalf("task %q, generator %v", m.Info.Task, m.Generator)
			}
			gen := m.Generator
			p := gen.GenerateDefaults()
			if p.MaxNewTokens != 20 || p.DoSample {
				t.Fatalf("defaults from generation_config.json: %+v", p)
			}
			for _, c := range g.Greedy {
				var streamed strings.Builder
				out, stats, err := gen.Generate(context.Background(), c.Prompt, p, func(ev GenerateEvent) error {
					streamed.WriteString(ev.Token.Text)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(ids(out[0])) != fmt.Sprint(c.NewIDs) {
					t.Errorf("%q: ids %v, want %v", c.Prompt, ids(out[0]), c.NewIDs)
				}
				if out[0].Text != c.NewText || c.Prompt+out[0].Text != c.GeneratedText {
					t.Errorf("%q: text %q, want %q", c.Prompt, out[0].Text, c.NewText)
				}
				if out[0].FinishReason != FinishLength || stats.Tokens != len(c.PromptIDs) {
					t.Errorf("finish %q, prompt tokens %d", out[0].FinishReason, stats.Tokens)
				}
				// Streamed pieces never split a character; they add up to the text except
				// for a trailing incomplete character.
				if !strings.HasPrefix(out[0].Text, streamed.String()) {
					t.Errorf("streamed %q is not a prefix of %q", streamed.String(), out[0].Text)
				}
				if strings.Contains(streamed.String(), "\uFFFD") && !strings.Contains(c.NewText, "\uFFFD") {
					t.Errorf("streamed text has a broken character: %q", streamed.String())
				}
			}
		})
	}
}

func TestTextGenerationStopSequence(t *testing.T) {
	m, g := loadGPT(t, LoadOptions{})
	c := g.Greedy[1] // "Hello" → "enceooiveiveo WebDAive ..."
	p := m.Generator.GenerateDefaults()
	p.Stop = []string{"xyz", "WebDA"}
	var safe strings.Builder
	n := 0
	out, _, err := m.Generator.Generate(context.Background(), c.Prompt, p, func(ev GenerateEvent) error {
		safe.WriteString(ev.Safe)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	gen := out[0]
	at := strings.Index(c.NewText, "WebDA")
	if gen.FinishReason != FinishStopSequence || gen.StopIndex != at || !strings.HasPrefix(gen.Text, c.NewText[:at+len("WebDA")]) {
		t.Fatalf("got %+v, want a stop at %d in %q", gen, at, c.NewText)
	}
	if len(gen.Tokens) >= 20 || n != len(gen.Tokens) {
		t.Errorf("%d tokens, %d events after the stop", len(gen.Tokens), n)
	}
	// Safe text stops right before the stop sequence.
	if safe.String() != c.NewText[:at] {
		t.Errorf("safe text %q, want %q", safe.String(), c.NewText[:at])
	}
}

func TestTextGenerationSampling(t *testing.T) {
	m, _ := loadGPT(t, LoadOptions{})
	gen := m.Generator
	seed := uint64(42)
	p := gen.GenerateDefaults()
	p.DoSample, p.Temperature, p.TopK, p.TopP, p.Seed, p.MaxNewTokens, p.RepetitionPenalty = true, 0.9, 40, 0.95, &seed, 15, 1.3
	p.NumReturnSequences = 3
	a, _, err := gen.Generate(context.Background(), "Once upon a time", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := gen.Generate(context.Background(), "Once upon a time", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 || *a[0].Seed != 42 {
		t.Fatalf("%d sequences, seed %v", len(a), a[0].Seed)
	}
	for i := range a {
		if fmt.Sprint(ids(a[i])) != fmt.Sprint(ids(b[i])) {
			t.Errorf("sequence %d differs across runs with one seed:\n%v\n%v", i, ids(a[i]), ids(b[i]))
		}
	}
	if fmt.Sprint(ids(a[0])) == fmt.Sprint(ids(a[1])) && fmt.Sprint(ids(a[1])) == fmt.Sprint(ids(a[2])) {
		t.Errorf("the returned sequences are identical: %v", ids(a[0]))
	}
	other := uint64(7)
	p.Seed = &other
	c, _, _ := gen.Generate(context.Background(), "Once upon a time", p, nil)
	if fmt.Sprint(ids(c[0])) == fmt.Sprint(ids(a[0])) {
		t.Errorf("another seed gave the same tokens")
	}
	for _, tok := range a[0].Tokens {
		if tok.LogProb > 0 {
			t.Errorf("logprob %v > 0", tok.LogProb)
		}
	}
}

func TestTextGenerationValidation(t *testing.T) {
	m, _ := loadGPT(t, LoadOptions{})
	gen := m.Generator
	cases := []struct {
		mod  func(*GenerateParams)
		text string
		want string
	}{
		{func(p *GenerateParams) { p.MaxNewTokens = 0 }, "hi", "`max_new_tokens` must be strictly positive"},
		{func(p *GenerateParams) { p.MaxNewTokens = 300 }, "hi", "`max_new_tokens` must be <= 256. Given: 300"},
		{func(p *GenerateParams) { p.MaxNewTokens = 254 }, "Hello", "`inputs` tokens + `max_new_tokens` must be <= 256. Given: 3 `inputs` tokens and 254 `max_new_tokens`"},
		{func(p *GenerateParams) { p.DoSample, p.Temperature = true, 0 }, "hi", "`temperature` (=0.0) has to be a strictly positive float"},
		{func(p *GenerateParams) { p.RepetitionPenalty = 0 }, "hi", "`penalty` has to be a strictly positive float, but is 0.0"},
		{func(p *GenerateParams) { p.Stop = []string{"a", "b", "c", "d", "e"} }, "hi", "`stop` supports up to 4 stop sequences. Given: 5"},
		{func(p *GenerateParams) {}, "", "`inputs` cannot be empty"},
	}
	for _, c := range cases {
		p := gen.GenerateDefaults()
		c.mod(&p)
		_, _, err := gen.Generate(context.Background(), c.text, p, nil)
		var ve *ValidationError
		if !errors.As(err, &ve) || !strings.HasPrefix(ve.Msg, c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
}

func TestTextGenerationCancelAndOverload(t *testing.T) {
	m, _ := loadGPT(t, LoadOptions{Sched: sched.Config{MaxConcurrentRequests: 1}})
	gen := m.Generator
	p := gen.GenerateDefaults()
	p.MaxNewTokens = 200
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	var emitted int
	go func() {
		_, _, err := gen.Generate(ctx, "Hello", p, func(GenerateEvent) error {
			emitted++
			once.Do(func() { close(started) })
			time.Sleep(time.Millisecond)
			return nil
		})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("generation ended before its first token: %v", err)
	}
	if _, _, err := gen.Generate(context.Background(), "Hello", p, nil); !errors.Is(err, sched.ErrOverloaded) {
		t.Errorf("second request: %v, want ErrOverloaded", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if emitted >= 200 {
		t.Errorf("cancelled generation ran to the end")
	}
	// The slot is free again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.MaxNewTokens = 2
		_, _, err := gen.Generate(context.Background(), "Hello", p, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, sched.ErrOverloaded) || time.Now().After(deadline) {
			t.Fatalf("after cancel: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	// An emit error stops generation and is returned.
	boom := errors.New("client gone")
	p.MaxNewTokens = 50
	_, _, err := gen.Generate(context.Background(), "Hello", p, func(GenerateEvent) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
}

func TestGenerationDefaults(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("config.json", `{"model_type":"gpt2","eos_token_id":5}`)
	repo, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, eos, err := generationDefaults(repo)
	if err != nil || fmt.Sprint(eos) != "[5]" || p.MaxNewTokens != 20 || p.TopK != 50 || p.DoSample {
		t.Errorf("config.json only: %+v %v %v", p, eos, err)
	}
	write("generation_config.json", `{"eos_token_id":[1,2],"do_sample":true,"top_k":10,"top_p":0.9,"temperature":0.7,"max_new_tokens":64,"repetition_penalty":1.1}`)
	p, eos, err = generationDefaults(repo)
	if err != nil || fmt.Sprint(eos) != "[1 2]" || !p.DoSample || p.TopK != 10 || p.TopP != 0.9 || p.Temperature != 0.7 || p.MaxNewTokens != 64 || p.RepetitionPenalty != 1.1 {
		t.Errorf("generation_config.json: %+v %v %v", p, eos, err)
	}
	write("generation_config.json", `{"eos_token_id":"x"}`)
	if _, _, err := generationDefaults(repo); err == nil {
		t.Error("bad eos_token_id: no error")
	}
}
