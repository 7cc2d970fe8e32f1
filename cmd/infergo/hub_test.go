package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infergo/infergo/internal/testutil"
	"github.com/infergo/infergo/models/hubtest"
)

type infoBody struct {
	ModelID  string `json:"model_id"`
	ModelSHA string `json:"model_sha"`
}

func getInfo(t *testing.T, url string) infoBody {
	t.Helper()
	resp, err := http.Get(url + "/info")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var in infoBody
	json.NewDecoder(resp.Body).Decode(&in)
	return in
}

func webhookBody(repo, ref, sha string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event":       map[string]any{"action": "update", "scope": "repo.content"},
		"repo":        map[string]any{"type": "model", "name": repo, "id": "1", "private": false, "headSha": sha, "url": map[string]any{"web": "x"}, "owner": map[string]any{"id": "o"}},
		"webhook":     map[string]any{"id": "w", "version": 3},
		"updatedRefs": []map[string]any{{"ref": ref, "oldSha": nil, "newSha": sha}},
	})
	return b
}

// TestServeFromHubWithWebhookHotSwap is the Hub flow end to end through the binary: MODEL_ID
// is a Hub id served by a fake Hub (HF_ENDPOINT) and downloaded into the cache on first
// start; a push plus a signed webhook swaps in the new commit while 8 clients keep sending
// requests, with zero failures; the new commit's outputs are served afterwards; a second
// start offline with the Hub gone serves from the warm cache.
func TestServeFromHubWithWebhookHotSwap(t *testing.T) {
	hub := hubtest.Start(t)
	first, err := hub.AddFixture("acme/tiny-embed", testutil.Fixture("tiny-bert-embeddings"), hubtest.RepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	env := []string{"HF_ENDPOINT=" + hub.URL, "HF_HUB_CACHE=" + cache, "MODEL_ID=acme/tiny-embed", "TASK=", "WEBHOOK_SECRET=hook-secret"}
	p := startServe(t, env)
	if in := getInfo(t, p.url); in.ModelID != "acme/tiny-embed" || in.ModelSHA != first {
		t.Fatalf("info %+v, want commit %s", in, first)
	}
	var g golden
	testutil.LoadJSON(t, testutil.Fixture("tiny-bert-embeddings", "golden.json"), &g)
	var before [][]float64
	postJSON(t, p.url+"/embed", map[string]any{"inputs": g.Sentences[:2]}, &before)
	testutil.AssertClose(t, "before swap", before[0], g.MeanNormalized[0], 1e-4)

	// The new commit switches pooling to CLS: its outputs are distinguishable.
	second := hub.Push("acme/tiny-embed", "main", map[string][]byte{
		"1_Pooling/config.json": []byte(`{"word_embedding_dimension": 32, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}`),
	})

	var stop atomic.Bool
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := http.Post(p.url+"/embed", "application/json", bytes.NewReader([]byte(`{"inputs":["A man is eating food.","x"]}`)))
				if err != nil {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprint("status ", resp.StatusCode))
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	req, _ := http.NewRequest("POST", p.url+"/webhooks/hub", bytes.NewReader(webhookBody("acme/tiny-embed", "refs/heads/main", second)))
	req.Header.Set("X-Webhook-Secret", "hook-secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("webhook: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(20 * time.Second)
	for getInfo(t, p.url).ModelSHA != second {
		if time.Now().After(deadline) {
			t.Fatalf("commit %s never served; output:\n%s", second, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // keep the load on across the old model's retirement
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("during the swap: %d ok, %d failed (first: %v)", ok.Load(), failed.Load(), firstFailure.Load())
	}
	var after [][]float64
	postJSON(t, p.url+"/embed", map[string]any{"inputs": g.Sentences[:1]}, &after)
	if testutil.MaxAbsDiff(after[0], g.MeanNormalized[0]) < 1e-3 {
		t.Error("after the swap the old model's outputs are still served")
	}
	p.stop(t)
	t.Logf("hot swap: %d requests, 0 failed", ok.Load())

	// Warm, offline start: the Hub is gone and must not be asked.
	requests := hub.RequestCount()
	hub.Close()
	p2 := startServe(t, []string{"HF_ENDPOINT=" + hub.URL, "HF_HUB_CACHE=" + cache, "MODEL_ID=acme/tiny-embed", "TASK=", "HF_HUB_OFFLINE=1"})
	if in := getInfo(t, p2.url); in.ModelSHA != second {
		t.Errorf("offline start serves %s, want %s", in.ModelSHA, second)
	}
	var offline [][]float64
	postJSON(t, p2.url+"/embed", map[string]any{"inputs": g.Sentences[:1]}, &offline)
	testutil.AssertClose(t, "offline start", offline[0], after[0], 1e-6)
	p2.stop(t)
	if n := hub.RequestCount(); n != requests {
		t.Errorf("the offline start made %d Hub requests", n-requests)
	}
}
