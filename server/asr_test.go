package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/infergo/infergo/bench/whispermodel"
	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/runtime/ort"
	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

// The speech recognition route through the real server with the real fixture models.

func loadSpeechFixture(t *testing.T, fixture string) *pipelines.Model {
	t.Helper()
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(testutil.Fixture(fixture))
	if err != nil {
		t.Fatal(err)
	}
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{Opener: env})
	if err != nil {
		t.Fatalf("load %s: %v", fixture, err)
	}
	if m.SpeechRecognizer == nil || m.Info.Task != pipelines.TaskSpeechRecognition {
		t.Fatalf("%s loaded as %q", fixture, m.Info.Task)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func startSpeech(t *testing.T, m *pipelines.Model, task string) *st.Instance {
	t.Helper()
	in := st.Start(t, server.Config{Task: task, Load: func(context.Context) (*pipelines.Model, error) { return m, nil }})
	waitHealthy(t, in.URL)
	return in
}

func audioFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Root(), "testdata", "audio", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// direct transcribes body through the pipeline, as the route should.
func direct(t *testing.T, m *pipelines.Model, body []byte, o pipelines.TranscribeOptions) string {
	t.Helper()
	pcm, err := m.SpeechRecognizer.DecodeAudio(context.Background(), body)
	if err != nil {
		t.Fatal(err)
	}
	tr, _, err := m.SpeechRecognizer.Transcribe(context.Background(), pcm, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr.Text
}

func textOf(t *testing.T, r *st.Response) string {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	var out map[string]any
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatalf("%s: %v", r.Body, err)
	}
	if len(out) != 1 {
		t.Fatalf("keys of %s: want exactly {text}", r.Body)
	}
	s, ok := out["text"].(string)
	if !ok {
		t.Fatalf("text in %s", r.Body)
	}
	return s
}

func TestASRWhisperHTTP(t *testing.T) {
	m := loadSpeechFixture(t, "tiny-whisper")
	in := startSpeech(t, m, "automatic-speech-recognition")
	sample, err := os.ReadFile(testutil.Fixture("tiny-whisper", "sample.wav"))
	if err != nil {
		t.Fatal(err)
	}

	// Raw bytes, upstream's contract: {"text"} and the audio length header.
	r := st.Do(t, "POST", in.URL+"/", sample)
	if got, want := textOf(t, r), direct(t, m, sample, pipelines.TranscribeOptions{}); got != want {
		t.Fatalf("text %q, want the pipeline's %q", got, want)
	}
	if h := r.Header.Get("x-compute-audio-length"); h != "3.0" {
		t.Fatalf("x-compute-audio-length %q, want 3.0", h)
	}
	if r.Header.Get("x-compute-time") == "" || r.Header.Get("x-compute-type") != "cpu" {
		t.Fatalf("compute headers %v", r.Header)
	}

	// The hosted API's JSON form selects language and length: the fixture's golden text.
	var golden struct {
		Text   string  `json:"text"`
		NewIDs []int32 `json:"greedy_new_ids"`
	}
	testutil.LoadJSON(t, testutil.Fixture("tiny-whisper", "golden.json"), &golden)
	req := map[string]any{"inputs": base64.StdEncoding.EncodeToString(sample),
		"parameters": map[string]any{"generate_kwargs": map[string]any{"language": "en", "max_new_tokens": len(golden.NewIDs)}}}
	body, _ := json.Marshal(req)
	if got := textOf(t, st.Do(t, "POST", in.URL+"/", body)); got != golden.Text {
		t.Fatalf("JSON request text %q, want golden %q", got, golden.Text)
	}

	// Every container the route accepts (ffmpeg ones included) transcribes.
	for _, f := range []string{"speech.flac", "speech_stereo.ogg", "speech.webm", "speech.opus", "speech.m4a", "speech.mp3", "speech_f32.wav"} {
		r := st.Do(t, "POST", in.URL+"/", audioFile(t, f))
		if got, want := textOf(t, r), direct(t, m, audioFile(t, f), pipelines.TranscribeOptions{}); got != want {
			t.Fatalf("%s: %q, want %q", f, got, want)
		}
	}

	// Malformed audio: exact body, no x-compute headers (upstream's normalisation step).
	for _, body := range [][]byte{audioFile(t, "malformed.flac"), []byte("This is a test"), []byte(`{"inputs": "not base64!"}`), nil} {
		r := st.Do(t, "POST", in.URL+"/", body)
		if r.Status != 400 || string(r.Body) != `{"error":"Malformed soundfile"}` {
			t.Fatalf("%q: %d %s", body, r.Status, r.Body)
		}
		if r.Header.Get("x-compute-time") != "" || r.Header.Get("x-compute-audio-length") != "" {
			t.Fatalf("malformed answer carries compute headers: %v", r.Header)
		}
	}

	// Parameter errors are 400s with a string error.
	for _, params := range []map[string]any{
		{"return_timestamps": true}, // the fixture vocabulary has no timestamp tokens
		{"foo": 1},
		{"generate_kwargs": map[string]any{"language": "xx"}},
		{"generate_kwargs": map[string]any{"max_new_tokens": 1000}},
		{"return_timestamps": "char"},
	} {
		body, _ := json.Marshal(map[string]any{"inputs": base64.StdEncoding.EncodeToString(sample), "parameters": params})
		r := st.Do(t, "POST", in.URL+"/", body)
		var e struct{ Error string }
		if r.Status != 400 || json.Unmarshal(r.Body, &e) != nil || e.Error == "" {
			t.Fatalf("%v: %d %s", params, r.Status, r.Body)
		}
	}
}

// TestASRConcurrentHTTP sends different audio concurrently: the encoder batches and the
// decode loop's shared steps must give every request what it gets alone.
func TestASRConcurrentHTTP(t *testing.T) {
	m := loadSpeechFixture(t, "tiny-whisper")
	in := startSpeech(t, m, "")
	files := []string{"speech.wav", "speech.flac", "speech_stereo.ogg", "speech_22k_stereo.wav", "speech.mp3", "speech_f32.wav"}
	params := `,"parameters":{"generate_kwargs":{"language":"en","max_new_tokens":40}}}`
	bodies := make([][]byte, len(files))
	want := make([]string, len(files))
	for i, f := range files {
		bodies[i] = []byte(`{"inputs":"` + base64.StdEncoding.EncodeToString(audioFile(t, f)) + `"` + params)
		want[i] = textOf(t, st.Do(t, "POST", in.URL+"/", bodies[i]))
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4*len(files))
	for round := 0; round < 4; round++ {
		for i := range files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := st.DoErr("POST", in.URL+"/", bodies[i])
				if err != nil || r.Status != 200 {
					errs <- files[i] + ": request failed"
					return
				}
				var out struct{ Text string }
				if json.Unmarshal(r.Body, &out) != nil || out.Text != want[i] {
					errs <- files[i] + ": concurrent text differs from the sequential one"
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestASRCTCHTTP(t *testing.T) {
	m := loadSpeechFixture(t, "tiny-wav2vec2-ctc")
	in := startSpeech(t, m, "automatic-speech-recognition")
	sample, err := os.ReadFile(testutil.Fixture("tiny-wav2vec2-ctc", "sample.wav"))
	if err != nil {
		t.Fatal(err)
	}
	var golden struct{ Text string }
	testutil.LoadJSON(t, testutil.Fixture("tiny-wav2vec2-ctc", "golden.json"), &golden)
	r := st.Do(t, "POST", in.URL+"/", sample)
	if got := textOf(t, r); got != golden.Text {
		t.Fatalf("text %q, want %q", got, golden.Text)
	}
	if h := r.Header.Get("x-compute-audio-length"); h != "2.0" {
		t.Fatalf("x-compute-audio-length %q", h)
	}
	// Word timestamps: chunks whose text joins back to the transcript's words.
	body, _ := json.Marshal(map[string]any{"inputs": base64.StdEncoding.EncodeToString(sample), "parameters": map[string]any{"return_timestamps": "word"}})
	r = st.Do(t, "POST", in.URL+"/", body)
	var out struct {
		Text   string
		Chunks []struct {
			Text      string
			Timestamp []float64
		}
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || out.Text != golden.Text || len(out.Chunks) == 0 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	prev := 0.0
	for _, c := range out.Chunks {
		if len(c.Timestamp) != 2 || c.Timestamp[0] < prev || c.Timestamp[1] < c.Timestamp[0] || c.Timestamp[1] > 2.0 {
			t.Fatalf("chunk %+v", c)
		}
		prev = c.Timestamp[1]
	}
	// Whisper-only parameters are refused for CTC.
	body, _ = json.Marshal(map[string]any{"inputs": base64.StdEncoding.EncodeToString(sample), "parameters": map[string]any{"return_timestamps": true}})
	if r := st.Do(t, "POST", in.URL+"/", body); r.Status != 400 {
		t.Fatalf("return_timestamps=true on CTC: %d %s", r.Status, r.Body)
	}
}

// TestASRWrongModel: the ASR task on an embeddings model is upstream's 500.
func TestASRWrongModel(t *testing.T) {
	m := st.NewModel("test/embed", "feature-extraction", dim)
	in := startWith(t, "automatic-speech-recognition", m)
	r := st.Do(t, "POST", in.URL+"/", audioFile(t, "speech.wav"))
	if r.Status != 500 || !json.Valid(r.Body) {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
}

// TestASRTimestampsHTTP: with timestamps asked, the body is {"text", "chunks"} and every
// chunk is {"text", "timestamp": [start, end]} (Whisper-shaped model with timestamp tokens).
func TestASRTimestampsHTTP(t *testing.T) {
	shape := whispermodel.Shape{Name: "small", DModel: 64, Heads: 4, FFN: 128, EncoderLayers: 2,
		DecoderLayers: 2, Vocab: 51865, Mels: 80, SourcePositions: 1500, TargetPosits: 448}
	dir, err := whispermodel.Write(testutil.Root(), t.TempDir(), shape)
	if err != nil {
		t.Fatal(err)
	}
	env, err := ort.NewEnvironment("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	repo, err := models.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pipelines.Load(context.Background(), repo, pipelines.LoadOptions{Opener: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	in := startSpeech(t, m, "")
	body, _ := json.Marshal(map[string]any{"inputs": base64.StdEncoding.EncodeToString(audioFile(t, "speech.flac")),
		"parameters": map[string]any{"return_timestamps": true, "generate_kwargs": map[string]any{"language": "en", "max_new_tokens": 40}}})
	r := st.Do(t, "POST", in.URL+"/", body)
	var out map[string]json.RawMessage
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || len(out) != 2 || out["text"] == nil || out["chunks"] == nil {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var chunks []map[string]json.RawMessage
	if err := json.Unmarshal(out["chunks"], &chunks); err != nil || len(chunks) == 0 {
		t.Fatalf("chunks %s", out["chunks"])
	}
	for _, c := range chunks {
		var ts []*float64
		if len(c) != 2 || json.Unmarshal(c["timestamp"], &ts) != nil || len(ts) != 2 || ts[0] == nil {
			t.Fatalf("chunk %v", c)
		}
	}
	// Asked without timestamps, the same request has only "text".
	body, _ = json.Marshal(map[string]any{"inputs": base64.StdEncoding.EncodeToString(audioFile(t, "speech.flac")),
		"parameters": map[string]any{"generate_kwargs": map[string]any{"language": "en", "max_new_tokens": 5}}})
	textOf(t, st.Do(t, "POST", in.URL+"/", body))
}
