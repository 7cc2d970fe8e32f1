package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a models.Progress the CLI can close when the pull ends.
type progress interface {
	Start(repoID, file string, size, resumed int64)
	Advance(file string, n int64)
	Finish(file string, err error)
	// Close ends the display; ok says whether the pull succeeded.
	Close(ok bool)
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// newProgress draws a bar on a terminal and writes plain lines otherwise (logs, CI).
func newProgress(w io.Writer, tty bool) progress {
	if tty {
		return &barProgress{w: w}
	}
	return &lineProgress{w: w, files: map[string]*fileState{}}
}

// barProgress is one bar over all bytes being downloaded. Files download in parallel and
// in waves (metadata, graphs, external data), so the total grows as each starts; the bar is
// kept one byte short of full until Close, or it would finish after the first wave.
type barProgress struct {
	mu    sync.Mutex
	w     io.Writer
	bar   *progressbar.ProgressBar
	total int64
}

func (p *barProgress) Start(repoID, file string, size, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += size
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(p.total+1,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowTotalBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionSetDescription(repoID),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
		)
	} else {
		p.bar.ChangeMax64(p.total + 1)
	}
	p.bar.Describe(repoID + " " + file)
	if resumed > 0 {
		_ = p.bar.Add64(resumed)
	}
}

func (p *barProgress) Advance(_ string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *barProgress) Finish(string, error) {}

func (p *barProgress) Close(ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil {
		return
	}
	if ok {
		p.bar.ChangeMax64(max(p.total, 1))
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit()
}

// lineProgress writes one line when a file starts and one when it ends, plus one every
// 10 s for long downloads.
type lineProgress struct {
	mu    sync.Mutex
	w     io.Writer
	files map[string]*fileState
}

type fileState struct {
	size, done int64
	start      time.Time
	lastLine   time.Time
}

const lineInterval = 10 * time.Second

func (p *lineProgress) Start(repoID, file string, size, resumed int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.files[file] = &fileState{size: size, done: resumed, start: now, lastLine: now}
	if resumed > 0 {
		fmt.Fprintf(p.w, "downloading %s %s (%s, resuming at %s)\n", repoID, file, humanBytes(size), humanBytes(resumed))
		return
	}
	fmt.Fprintf(p.w, "downloading %s %s (%s)\n", repoID, file, humanBytes(size))
}

func (p *lineProgress) Advance(file string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.files[file]
	if f == nil {
		return
	}
	f.done += n
	if time.Since(f.lastLine) >= lineInterval && f.size > 0 {
		f.lastLine = time.Now()
		fmt.Fprintf(p.w, "  %s: %d%% (%s of %s)\n", file, f.done*100/f.size, humanBytes(f.done), humanBytes(f.size))
	}
}

func (p *lineProgress) Finish(file string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.files[file]
	if f == nil {
		return
	}
	delete(p.files, file)
	if err != nil {
		fmt.Fprintf(p.w, "failed %s after %s: %v\n", file, humanBytes(f.done), err)
		return
	}
	fmt.Fprintf(p.w, "downloaded %s (%s in %s)\n", file, humanBytes(f.done), time.Since(f.start).Round(time.Millisecond))
}

func (p *lineProgress) Close(bool) {}

// humanBytes formats like huggingface_hub's _format_size: decimal units, one decimal.
func humanBytes(n int64) string {
	v := float64(n)
	for _, unit := range []string{"", "K", "M", "G", "T", "P"} {
		if v < 1000 && v > -1000 {
			return fmt.Sprintf("%.1f%s", v, unit)
		}
		v /= 1000
	}
	return fmt.Sprintf("%.1fE", v)
}
