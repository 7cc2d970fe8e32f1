package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/infergo/infergo/server"
	st "github.com/infergo/infergo/server/servertest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestRequestLogCarriesStages: an inference request's log line says where its time went
// (tokenization, queue, inference) and how much it carried, next to status and duration.
func TestRequestLogCarriesStages(t *testing.T) {
	var buf syncBuffer
	m := st.NewModel("m", "feature-extraction", dim)
	in := startWith(t, "feature-extraction", m, func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	if r := st.Post(t, in.URL+"/embed", `{"inputs":["a b","c"]}`); r.Status != 200 {
		t.Fatalf("embed: %d %s", r.Status, r.Body)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "http request" || rec["route"] != "POST /embed" {
			continue
		}
		for _, k := range []string{"status", "duration", "request_id", "inputs", "tokens", "tokenization", "queue", "inference"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("request log lacks %q: %s", k, line)
			}
		}
		if rec["inputs"] != 2.0 {
			t.Errorf("inputs = %v, want 2", rec["inputs"])
		}
		return
	}
	t.Fatalf("no request log line for POST /embed in:\n%s", buf.String())
}
