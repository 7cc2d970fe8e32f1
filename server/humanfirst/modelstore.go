package humanfirst

import (
	"container/list"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/infergo/infergo/pipelines/intent"
)

// modelStore keeps trained classifiers: on disk under dir/<id>/ (intent.Model.Save), and the
// most recently used ones in memory. A model unloaded or dropped from memory is reloaded from
// disk on its next use, so model ids survive restarts.
type modelStore struct {
	dir string
	max int
	log *slog.Logger

	// mu guards the LRU and orders deletions against lazy loads (see get).
	mu     sync.Mutex
	lru    *list.List // of *intent.Model, most recent first
	byID   map[string]*list.Element
	loadMu sync.Mutex // serialises disk loads so one model is read once
}

// Model ids are "clf-" and 16 base32 characters from 80 random bits: opaque, unguessable,
// and safe as directory names. Anything else is never a model here.
var modelIDPattern = regexp.MustCompile(`^clf-[a-z2-7]{16}$`)

func newModelID() string {
	var b [10]byte
	rand.Read(b[:])
	return "clf-" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func newModelStore(dir string, max int, log *slog.Logger) (*modelStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("humanfirst: models directory: %w", err)
	}
	removeStaleTemps(dir, log)
	return &modelStore{dir: dir, max: max, log: log, lru: list.New(), byID: map[string]*list.Element{}}, nil
}

// save writes a newly trained model atomically and keeps it in memory.
func (s *modelStore) save(ctx context.Context, m *intent.Model) error {
	if _, err := m.Save(ctx, s.dir); err != nil {
		return fmt.Errorf("save model %s: %w", m.Meta.ID, err)
	}
	s.mu.Lock()
	s.putLocked(m)
	s.mu.Unlock()
	return nil
}

func (s *modelStore) putLocked(m *intent.Model) {
	if el, ok := s.byID[m.Meta.ID]; ok {
		s.lru.MoveToFront(el)
		return
	}
	s.byID[m.Meta.ID] = s.lru.PushFront(m)
	for s.lru.Len() > s.max {
		el := s.lru.Back()
		s.lru.Remove(el)
		delete(s.byID, el.Value.(*intent.Model).Meta.ID)
	}
}

// get returns the model, loading it from disk when it is not in memory. Unknown or malformed
// ids give ErrNotFound.
func (s *modelStore) get(id string) (*intent.Model, error) {
	if !modelIDPattern.MatchString(id) {
		return nil, notFoundf("model %q", id)
	}
	if m := s.cached(id); m != nil {
		return m, nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if m := s.cached(id); m != nil { // loaded while we waited
		return m, nil
	}
	m, err := intent.Load(filepath.Join(s.dir, id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, notFoundf("model %q", id)
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A DeleteModel may have run during the load: it removes the directory under mu, so
	// checking under mu tells whether the model still exists.
	if _, err := os.Stat(filepath.Join(s.dir, id)); err != nil {
		return nil, notFoundf("model %q", id)
	}
	s.putLocked(m)
	s.log.Info("humanfirst: model loaded from disk", "model", id)
	return m, nil
}

func (s *modelStore) cached(id string) *intent.Model {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		s.lru.MoveToFront(el)
		return el.Value.(*intent.Model)
	}
	return nil
}

// unload drops the model from memory; it stays on disk. Unknown ids are fine (idempotent).
func (s *modelStore) unload(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		s.lru.Remove(el)
		delete(s.byID, id)
	}
}

// delete removes the model from memory and disk. Deleting a missing model succeeds
// (idempotent); a malformed id is an invalid argument and touches nothing.
func (s *modelStore) delete(id string) error {
	if !modelIDPattern.MatchString(id) {
		return invalidf("malformed model id %q", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[id]; ok {
		s.lru.Remove(el)
		delete(s.byID, id)
	}
	if err := os.RemoveAll(filepath.Join(s.dir, id)); err != nil {
		return fmt.Errorf("delete model %s: %w", id, err)
	}
	return nil
}
