package models

import (
	"log/slog"
	"sync"
	"time"
)

// logProgress is the Progress used when the caller sets none (the server): a log line when
// a download starts and ends, and one every 30 s in between, so a long first start is
// visible in the logs.
type logProgress struct {
	log   *slog.Logger
	every time.Duration
	mu    sync.Mutex
	files map[string]*logFile
}

type logFile struct {
	repo            string
	size, done      int64
	start, lastLine time.Time
}

func newLogProgress(log *slog.Logger) *logProgress {
	return &logProgress{log: log, every: 30 * time.Second, files: map[string]*logFile{}}
}

func (p *logProgress) Start(repoID, file string, size, resumed int64) {
	now := time.Now()
	p.mu.Lock()
	p.files[file] = &logFile{repo: repoID, size: size, done: resumed, start: now, lastLine: now}
	p.mu.Unlock()
	p.log.Info("downloading", "repo", repoID, "file", file, "size", size, "resumed_at", resumed)
}

func (p *logProgress) Advance(file string, n int64) {
	p.mu.Lock()
	f := p.files[file]
	if f == nil {
		p.mu.Unlock()
		return
	}
	f.done += n
	due := time.Since(f.lastLine) >= p.every
	if due {
		f.lastLine = time.Now()
	}
	repo, done, size := f.repo, f.done, f.size
	p.mu.Unlock()
	if due {
		p.log.Info("download progress", "repo", repo, "file", file, "done", done, "size", size)
	}
}

func (p *logProgress) Finish(file string, err error) {
	p.mu.Lock()
	f := p.files[file]
	delete(p.files, file)
	p.mu.Unlock()
	if f == nil {
		return
	}
	if err != nil {
		p.log.Warn("download failed", "repo", f.repo, "file", file, "done", f.done, "size", f.size, "err", err)
		return
	}
	p.log.Info("downloaded", "repo", f.repo, "file", file, "size", f.size, "took", time.Since(f.start).Round(time.Millisecond))
}
