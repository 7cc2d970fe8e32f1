package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/server"
	"github.com/infergo/infergo/server/servertest"
)

// fakeReloader hands out numbered fake models; Wants accepts pushes to org/model's main.
type fakeReloader struct {
	mu     sync.Mutex
	calls  []bool // force flag per Reload
	delay  time.Duration
	n      atomic.Int64
	models []*servertest.Model
	fail   bool
}

func (r *fakeReloader) Wants(ev *server.HubEvent) bool {
	if ev.Repo.Type != "model" || ev.Repo.Name != "org/model" {
		return false
	}
	for _, u := range ev.UpdatedRefs {
		if u.Ref == "refs/heads/main" {
			return true
		}
	}
	return false
}

func (r *fakeReloader) Reload(ctx context.Context, force bool) (*pipelines.Model, error) {
	r.mu.Lock()
	r.calls = append(r.calls, force)
	fail := r.fail
	r.mu.Unlock()
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if fail {
		return nil, fmt.Errorf("hub unreachable")
	}
	k := r.n.Add(1)
	m := servertest.NewModel(fmt.Sprintf("org/model@%d", k), "feature-extraction", 8)
	r.mu.Lock()
	r.models = append(r.models, m)
	r.mu.Unlock()
	return m.Model, nil
}

func (r *fakeReloader) forces() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.calls...)
}

func payload(repo, ref string, version int) string {
	b, _ := json.Marshal(map[string]any{
		"event":       map[string]any{"action": "update", "scope": "repo.content"},
		"repo":        map[string]any{"type": "model", "name": repo, "id": "x", "private": false, "headSha": "227c7834aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "url": map[string]any{"web": "w"}, "owner": map[string]any{"id": "o"}},
		"webhook":     map[string]any{"id": "wh1", "version": version},
		"updatedRefs": []map[string]any{{"ref": ref, "oldSha": nil, "newSha": "227c7834aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
	})
	return string(b)
}

func modelID(t *testing.T, url string) string {
	t.Helper()
	r := servertest.Get(t, url+"/info")
	var info struct {
		ModelID string `json:"model_id"`
	}
	if err := json.Unmarshal(r.Body, &info); err != nil {
		t.Fatalf("/info: %d %s", r.Status, r.Body)
	}
	return info.ModelID
}

func startWithReloader(t *testing.T, secret string, rl server.Reloader) (*servertest.Instance, *servertest.Model) {
	first := servertest.NewModel("org/model@0", "feature-extraction", 8)
	in := servertest.Start(t, server.Config{
		WebhookSecret: secret,
		Reloader:      rl,
		Load:          func(context.Context) (*pipelines.Model, error) { return first.Model, nil },
	})
	waitUntil(t, func() bool { return servertest.Get(t, in.URL+"/health").Status == 200 })
	return in, first
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebhookAuth(t *testing.T) {
	rl := &fakeReloader{}
	in, _ := startWithReloader(t, "s3cret", rl)
	body := payload("org/model", "refs/heads/main", 3)
	cases := []struct {
		name    string
		path    string
		headers []string
		status  int
	}{
		{"missing secret", "/webhooks/hub", nil, 401},
		{"wrong secret", "/webhooks/hub", []string{"X-Webhook-Secret", "nope"}, 403},
		{"wrong secret, longer", "/webhooks/hub", []string{"X-Webhook-Secret", "s3cret-and-more"}, 403},
		{"admin missing", "/admin/reload", nil, 401},
		{"admin wrong", "/admin/reload", []string{"X-Webhook-Secret", "s3cre"}, 403},
		{"query secret", "/webhooks/hub?secret=s3cret", nil, 202},
	}
	for _, c := range cases {
		r := servertest.Post(t, in.URL+c.path, body, c.headers...)
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
		}
		if c.status >= 400 {
			var e map[string]any
			if json.Unmarshal(r.Body, &e) != nil || e["error"] == nil {
				t.Errorf("%s: body %s is not a JSON error", c.name, r.Body)
			}
		}
	}
	// Only the authorised request reached the reloader.
	waitUntil(t, func() bool { return len(rl.forces()) == 1 })
}

func TestWebhooksDisabledWithoutSecret(t *testing.T) {
	in, _ := startWithReloader(t, "", &fakeReloader{})
	for _, p := range []string{"/webhooks/hub", "/admin/reload"} {
		if r := servertest.Post(t, in.URL+p, payload("org/model", "refs/heads/main", 3), "X-Webhook-Secret", "x"); r.Status != 404 {
			t.Errorf("%s without WEBHOOK_SECRET: %d %s", p, r.Status, r.Body)
		}
	}
}

func TestWebhookPayloads(t *testing.T) {
	rl := &fakeReloader{}
	in, _ := startWithReloader(t, "k", rl)
	auth := []string{"X-Webhook-Secret", "k"}
	for _, c := range []struct {
		name, body string
		status     int
	}{
		{"not JSON", "nope", 422},
		{"version 2", payload("org/model", "refs/heads/main", 2), 422},
		{"missing repo", `{"event":{"action":"update","scope":"repo"},"webhook":{"id":"1","version":3}}`, 422},
		{"other repo", payload("org/other", "refs/heads/main", 3), 200},
		{"PR ref", payload("org/model", "refs/pr/5", 3), 200},
	} {
		r := servertest.Post(t, in.URL+"/webhooks/hub", c.body, auth...)
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
		}
	}
	if n := len(rl.forces()); n != 0 {
		t.Errorf("ignored events triggered %d reloads", n)
	}
}

// TestWebhookSwapsModel: an accepted webhook reloads in the background and the new model
// serves afterwards; the old one is closed once, after it drained.
func TestWebhookSwapsModel(t *testing.T) {
	rl := &fakeReloader{}
	in, first := startWithReloader(t, "k", rl)
	if got := modelID(t, in.URL); got != "org/model@0" {
		t.Fatalf("first model %q", got)
	}
	r := servertest.Post(t, in.URL+"/webhooks/hub", payload("org/model", "refs/heads/main", 3), "X-Webhook-Secret", "k")
	if r.Status != 202 {
		t.Fatalf("webhook: %d %s", r.Status, r.Body)
	}
	waitUntil(t, func() bool { return modelID(t, in.URL) == "org/model@1" })
	waitUntil(t, func() bool { return first.Closed() == 1 })
	if f := rl.forces(); len(f) != 1 || f[0] {
		t.Errorf("reload calls %v, want one unforced", f)
	}
	// A manual reload is forced.
	if r := servertest.Post(t, in.URL+"/admin/reload", "", "X-Webhook-Secret", "k"); r.Status != 202 {
		t.Fatalf("admin reload: %d %s", r.Status, r.Body)
	}
	waitUntil(t, func() bool { return modelID(t, in.URL) == "org/model@2" })
	if f := rl.forces(); len(f) != 2 || !f[1] {
		t.Errorf("reload calls %v, want the second forced", f)
	}
}

// TestWebhookBurstCoalesces: webhooks arriving during a reload merge into one more reload.
func TestWebhookBurstCoalesces(t *testing.T) {
	rl := &fakeReloader{delay: 100 * time.Millisecond}
	in, _ := startWithReloader(t, "k", rl)
	for i := 0; i < 10; i++ {
		if r := servertest.Post(t, in.URL+"/webhooks/hub", payload("org/model", "refs/heads/main", 3), "X-Webhook-Secret", "k"); r.Status != 202 {
			t.Fatalf("webhook %d: %d", i, r.Status)
		}
	}
	waitUntil(t, func() bool { return len(rl.forces()) >= 1 })
	time.Sleep(400 * time.Millisecond)
	if n := len(rl.forces()); n > 2 {
		t.Errorf("10 webhooks caused %d reloads, want at most 2", n)
	}
}

// TestFailedReloadKeepsServing: a reload error leaves the previous model in place.
func TestFailedReloadKeepsServing(t *testing.T) {
	rl := &fakeReloader{fail: true}
	in, first := startWithReloader(t, "k", rl)
	servertest.Post(t, in.URL+"/admin/reload", "", "X-Webhook-Secret", "k")
	waitUntil(t, func() bool { return len(rl.forces()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if got := modelID(t, in.URL); got != "org/model@0" || first.Closed() != 0 {
		t.Errorf("after a failed reload: model %q, closed %d", got, first.Closed())
	}
	if r := servertest.Post(t, in.URL+"/embed", `{"inputs":"still here"}`); r.Status != 200 {
		t.Errorf("embed after failed reload: %d", r.Status)
	}
}

// TestAcquireHoldsAcrossSwap: a model acquired through Acquire stays open across a swap
// until released.
func TestAcquireHoldsAcrossSwap(t *testing.T) {
	rl := &fakeReloader{}
	in, first := startWithReloader(t, "k", rl)
	m, release, err := in.Acquire(context.Background())
	if err != nil || m != first.Model {
		t.Fatalf("Acquire: %v", err)
	}
	servertest.Post(t, in.URL+"/admin/reload", "", "X-Webhook-Secret", "k")
	waitUntil(t, func() bool { return modelID(t, in.URL) == "org/model@1" })
	time.Sleep(20 * time.Millisecond)
	if first.Closed() != 0 {
		t.Fatal("model closed while acquired")
	}
	release()
	waitUntil(t, func() bool { return first.Closed() == 1 })
}
