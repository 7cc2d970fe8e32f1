package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/infergo/infergo/models"
	"github.com/infergo/infergo/models/builtin"
	"github.com/infergo/infergo/pipelines"
	"github.com/infergo/infergo/server"
)

// modelSource finds the served model (built in, local directory or Hub id), loads it, and
// reloads it when the Hub says its revision moved (server.Reloader).
type modelSource struct {
	flags *ModelFlags
	opts  pipelines.LoadOptions
	log   *slog.Logger
	hub   *models.Hub // nil unless the model is a Hub id

	mu     sync.Mutex
	commit string // commit of the model being served
}

var _ server.Reloader = (*modelSource)(nil)

func newModelSource(f *ModelFlags, opts pipelines.LoadOptions, log *slog.Logger) (*modelSource, error) {
	s := &modelSource{flags: f, opts: opts, log: log}
	if f.Model != "" && !models.IsLocalRef(f.Model) {
		cfg, err := f.HubFlags.Config(log)
		if err != nil {
			return nil, err
		}
		if s.hub, err = models.NewHub(cfg); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *modelSource) name() string {
	if s.flags.Model == "" {
		return builtin.ID
	}
	return s.flags.Model
}

func (s *modelSource) pullOptions() models.PullOptions {
	return models.PullOptions{Revision: s.flags.Revision, Task: s.flags.Task, ONNXFile: s.flags.ONNXFile}
}

// resolve finds the model's files, downloading a Hub model's into the cache if needed (a warm
// cache makes no network request).
func (s *modelSource) resolve(ctx context.Context) (*models.Repo, error) {
	switch {
	case s.flags.Model == "":
		dir, err := builtin.Extract(builtin.DefaultBase())
		if err != nil {
			return nil, err
		}
		repo, err := models.OpenDir(dir)
		if err != nil {
			return nil, err
		}
		repo.ID = builtin.ID
		s.log.Info("no --model or MODEL_ID given: serving the built-in tiny embedding model (random weights)", "dir", dir)
		return repo, nil
	case s.hub == nil:
		repo, err := models.OpenDir(s.flags.Model)
		if errors.Is(err, models.ErrNotLocal) {
			return nil, fmt.Errorf("model %q: no such directory", s.flags.Model)
		}
		return repo, err
	}
	return s.hub.Resolve(ctx, s.flags.Model, s.pullOptions())
}

// Load is server.Config.Load: resolve (and download), then load and warm up.
func (s *modelSource) Load(ctx context.Context) (*pipelines.Model, error) {
	repo, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	m, err := pipelines.Load(ctx, repo, s.opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.commit = repo.Commit
	s.mu.Unlock()
	return m, nil
}

// Wants implements server.Reloader: a push to the served repo's revision (a branch or tag;
// a model pinned to a commit never moves).
func (s *modelSource) Wants(ev *server.HubEvent) bool {
	if s.hub == nil || ev.Repo.Type != "model" || ev.Repo.Name != s.flags.Model {
		return false
	}
	if !strings.HasPrefix(ev.Event.Scope, "repo") || ev.Event.Action == "delete" {
		return false
	}
	rev := s.flags.Revision
	if rev == "" {
		rev = "main"
	}
	if len(ev.UpdatedRefs) == 0 {
		// Some events (repo.content without refs) only carry the new head: reload when it moved.
		s.mu.Lock()
		defer s.mu.Unlock()
		return ev.Event.Scope == "repo.content" && ev.Repo.HeadSha != "" && ev.Repo.HeadSha != s.commit
	}
	for _, u := range ev.UpdatedRefs {
		if u.Ref == "refs/heads/"+rev || u.Ref == "refs/tags/"+rev {
			return true
		}
	}
	return false
}

// Reload implements server.Reloader: fetch the revision's newest snapshot (only missing
// files), then load and warm it. A local or built-in model reloads from disk when forced.
func (s *modelSource) Reload(ctx context.Context, force bool) (*pipelines.Model, error) {
	var repo *models.Repo
	if s.hub != nil {
		s.mu.Lock()
		current := s.commit
		s.mu.Unlock()
		r, changed, err := s.hub.Refresh(ctx, s.flags.Model, s.pullOptions(), current)
		if err != nil {
			return nil, err
		}
		if !changed && !force {
			return nil, nil
		}
		repo = r
	} else {
		if !force {
			return nil, nil
		}
		r, err := s.resolve(ctx)
		if err != nil {
			return nil, err
		}
		repo = r
	}
	m, err := pipelines.Load(ctx, repo, s.opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.commit = repo.Commit
	s.mu.Unlock()
	return m, nil
}
