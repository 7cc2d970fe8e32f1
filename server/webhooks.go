package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/infergo/infergo/pipelines"
)

// Hub webhooks (POST /webhooks/hub) and manual reloads (POST /admin/reload) replace the
// served model without dropping a request: the reloader fetches and warms the new model in
// the background, then SetModel swaps it in and the old one is closed after its in-flight
// requests end. Both routes require Config.WebhookSecret.

// HubEvent is a Hugging Face Hub webhook payload (version 3), reduced to what reloading needs.
type HubEvent struct {
	Event struct {
		Action string `json:"action"` // create, delete, move, update
		Scope  string `json:"scope"`  // repo, repo.content, repo.config, discussion, …
	} `json:"event"`
	Repo struct {
		Type    string `json:"type"` // model, dataset, space
		Name    string `json:"name"` // org/name
		HeadSha string `json:"headSha"`
	} `json:"repo"`
	Webhook struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"webhook"`
	UpdatedRefs []struct {
		Ref    string  `json:"ref"`
		OldSha *string `json:"oldSha"`
		NewSha *string `json:"newSha"`
	} `json:"updatedRefs"`
}

// Reloader produces replacement models. Its methods are called from the server's reload
// goroutine, one at a time.
type Reloader interface {
	// Wants reports whether ev concerns the served model (its repo and revision).
	Wants(ev *HubEvent) bool
	// Reload returns a loaded, warmed-up replacement for the served model, or (nil, nil)
	// when nothing changed and force is false. force reloads even an unchanged model.
	Reload(ctx context.Context, force bool) (*pipelines.Model, error)
}

// parseHubEvent decodes and validates a webhook body.
func parseHubEvent(body []byte) (*HubEvent, error) {
	var ev HubEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		return nil, fmt.Errorf("invalid webhook payload: %v", err)
	}
	var missing []string
	if ev.Event.Action == "" {
		missing = append(missing, "event.action")
	}
	if ev.Event.Scope == "" {
		missing = append(missing, "event.scope")
	}
	if ev.Repo.Type == "" {
		missing = append(missing, "repo.type")
	}
	if ev.Repo.Name == "" {
		missing = append(missing, "repo.name")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("invalid webhook payload: missing %s", strings.Join(missing, ", "))
	}
	if ev.Webhook.Version != 3 {
		return nil, fmt.Errorf("unsupported webhook version %d (want 3)", ev.Webhook.Version)
	}
	return &ev, nil
}

// checkSecret compares the request's secret (X-Webhook-Secret header, or the ?secret= query
// the Hub also supports) with the configured one in constant time: both are hashed first so
// that not even the length leaks. Missing → 401, wrong → 403.
func (s *Server) checkSecret(rc *fasthttp.RequestCtx, st *reqState) bool {
	if s.cfg.WebhookSecret == "" {
		s.writeError(rc, st, newError(kindNotFound, "webhooks and reloads are disabled: set WEBHOOK_SECRET"))
		return false
	}
	got := rc.Request.Header.Peek("X-Webhook-Secret")
	if len(got) == 0 {
		got = rc.QueryArgs().Peek("secret")
	}
	if len(got) == 0 {
		s.writeError(rc, st, newError(kindUnauthorized, "missing X-Webhook-Secret"))
		return false
	}
	a, b := sha256.Sum256(got), sha256.Sum256([]byte(s.cfg.WebhookSecret))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		s.writeError(rc, st, newError(kindForbidden, "wrong webhook secret"))
		return false
	}
	return true
}

func (s *Server) handleWebhook(rc *fasthttp.RequestCtx, st *reqState) {
	if !s.checkSecret(rc, st) {
		return
	}
	ev, err := parseHubEvent(rc.PostBody())
	if err != nil {
		s.writeError(rc, st, newError(kindInvalid, err.Error()))
		return
	}
	if s.cfg.Reloader == nil || !s.cfg.Reloader.Wants(ev) {
		s.reloads.ignored.Inc()
		writeJSON(rc, fasthttp.StatusOK, []byte(`{"status":"ignored"}`))
		return
	}
	s.log.Info("hub webhook: reloading", "repo", ev.Repo.Name, "scope", ev.Event.Scope, "head", ev.Repo.HeadSha, "webhook", ev.Webhook.ID)
	s.requestReload(false)
	writeJSON(rc, fasthttp.StatusAccepted, []byte(`{"status":"accepted"}`))
}

func (s *Server) handleAdminReload(rc *fasthttp.RequestCtx, st *reqState) {
	if !s.checkSecret(rc, st) {
		return
	}
	if s.cfg.Reloader == nil {
		s.writeError(rc, st, newError(kindUnsupported, "this server has no reloader"))
		return
	}
	s.log.Info("admin reload requested")
	s.requestReload(true)
	writeJSON(rc, fasthttp.StatusAccepted, []byte(`{"status":"accepted"}`))
}

// requestReload queues a reload. Requests that arrive while one is queued merge with it (a
// forced one stays forced), so a burst of webhooks costs one reload after the current one.
func (s *Server) requestReload(force bool) {
	s.reloadMu.Lock()
	s.reloadForce = s.reloadForce || force
	s.reloadMu.Unlock()
	select {
	case s.reloadKick <- struct{}{}:
	default: // one is queued already
	}
}

// reloadLoop runs reloads one at a time until Shutdown.
func (s *Server) reloadLoop() {
	defer close(s.reloadDone)
	for {
		select {
		case <-s.draining:
			return
		case <-s.reloadKick:
		}
		s.reloadMu.Lock()
		force := s.reloadForce
		s.reloadForce = false
		s.reloadMu.Unlock()
		t0 := time.Now()
		m, err := s.cfg.Reloader.Reload(s.loadCtx, force)
		switch {
		case err != nil:
			s.reloads.result.WithLabelValues("error").Inc()
			s.log.Error("reload failed; still serving the previous model", "err", err, "duration", time.Since(t0))
		case m == nil:
			s.reloads.result.WithLabelValues("unchanged").Inc()
			s.log.Info("reload: model unchanged", "duration", time.Since(t0))
		default:
			s.reloads.result.WithLabelValues("swapped").Inc()
			s.log.Info("reload: swapping in the new model", "model", m.Info.ModelID, "revision", m.Info.Revision, "duration", time.Since(t0))
			s.SetModel(m)
		}
	}
}

type reloadMetrics struct {
	result  *prometheus.CounterVec
	ignored prometheus.Counter
}

func newReloadMetrics(reg prometheus.Registerer) (*reloadMetrics, error) {
	m := &reloadMetrics{
		result: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "infergo_model_reloads_total",
			Help: "Model reloads by result (swapped, unchanged, error).",
		}, []string{"result"}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "infergo_webhooks_ignored_total",
			Help: "Hub webhooks that did not concern the served model.",
		}),
	}
	for _, c := range []prometheus.Collector{m.result, m.ignored} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register reload metrics: %w", err)
		}
	}
	return m, nil
}

// Acquire returns the served model with a reference held, waiting (bounded by ctx) while the
// first model loads. Call release when done: a model swapped out meanwhile is closed only
// after every reference is released. Other transports (gRPC) use it to share the model.
func (s *Server) Acquire(ctx context.Context) (m *pipelines.Model, release func(), err error) {
	g, err := s.holder.acquire(ctx)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.cause != nil {
			return nil, nil, fmt.Errorf("server: %s: %w", he.msg, he.cause)
		}
		return nil, nil, err
	}
	return g.model, g.release, nil
}
