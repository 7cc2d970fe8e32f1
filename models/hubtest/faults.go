package hubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults are the failure knobs. Counters count down as requests consume them.
type Faults struct {
	// Down drops every connection without an answer (an unreachable Hub).
	Down bool
	// FailCount requests whose "server METHOD path" contains FailMatch (all if empty) answer
	// FailStatus (e.g. 503 or 429), with Retry-After if set.
	FailCount  int
	FailStatus int
	FailMatch  string
	RetryAfter string
	// CutCount GET transfers matching CutMatch drop the connection after CutAfter bytes; with
	// Stall they stop sending instead and hang until the client gives up.
	CutCount int
	CutAfter int64
	Stall    bool
	CutMatch string
	// CorruptCount GET transfers matching CutMatch have one byte flipped.
	CorruptCount int
	// TruncateCount GET transfers matching CutMatch send only half the bytes, with a
	// Content-Length that matches (a clean but short response).
	TruncateCount int
	// Throttle sleeps between chunks of ThrottleChunk bytes (default 32 KiB): a slow transfer.
	Throttle      time.Duration
	ThrottleChunk int
	// IgnoreRange serves full 200 responses to Range requests.
	IgnoreRange bool
	// PageSize paginates the tree API (default 1000).
	PageSize int
	// OmitBlobs leaves size, blobId and lfs out of /api/models siblings, so clients must
	// use the tree API for file metadata.
	OmitBlobs bool
}

// SetFaults replaces the fault knobs.
func (h *Hub) SetFaults(f Faults) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = f
}

// UpdateFaults edits the fault knobs in place.
func (h *Hub) UpdateFaults(edit func(*Faults)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	edit(&h.faults)
}

// parseRange parses a single "bytes=a-" or "bytes=a-b" range.
func parseRange(v string, size int) (start, end int, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(spec, "-")
	if !found || a == "" {
		return 0, 0, false
	}
	start, err := strconv.Atoi(a)
	if err != nil || start < 0 || start >= size {
		return 0, 0, false
	}
	end = size - 1
	if b != "" {
		e, err := strconv.Atoi(b)
		if err != nil || e < start {
			return 0, 0, false
		}
		end = min(e, size-1)
	}
	return start, end, true
}

// serveBody writes data (or the requested range) with the transfer faults applied.
func serveBody(w http.ResponseWriter, r *http.Request, data []byte, h *Hub, server string) {
	h.mu.Lock()
	f := &h.faults
	ignoreRange := f.IgnoreRange
	tf := transferFaults{throttle: f.Throttle, chunk: f.ThrottleChunk}
	if r.Method == http.MethodGet && matches(f.CutMatch, server, r) {
		if f.CutCount > 0 {
			f.CutCount--
			tf.cutAfter, tf.stall = f.CutAfter, f.Stall
		}
		if f.CorruptCount > 0 {
			f.CorruptCount--
			tf.corrupt = true
		}
		if f.TruncateCount > 0 {
			f.TruncateCount--
			tf.truncate = true
		}
	}
	h.mu.Unlock()

	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Type", "application/octet-stream")
	body, status := data, http.StatusOK
	if rg := r.Header.Get("Range"); rg != "" && !ignoreRange {
		start, end, ok := parseRange(rg, len(data))
		if !ok {
			w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		body, status = data[start:end+1], http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, end, len(data)))
	}
	if tf.truncate {
		body = body[:len(body)/2] // a clean but short response
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if tf.corrupt && len(body) > 0 {
		body = append([]byte(nil), body...)
		body[len(body)/2] ^= 0xff
	}
	h.writeFaulted(w, r, body, tf)
}

type transferFaults struct {
	throttle          time.Duration
	chunk             int
	cutAfter          int64
	stall             bool
	corrupt, truncate bool
}

func (h *Hub) writeFaulted(w http.ResponseWriter, r *http.Request, body []byte, tf transferFaults) {
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	limit := int64(len(body))
	cut := tf.cutAfter > 0 && tf.cutAfter < limit
	if cut {
		limit = tf.cutAfter
	}
	chunk := tf.chunk
	if chunk <= 0 {
		chunk = 32 << 10
	}
	for off := int64(0); off < limit; {
		n := min(int64(chunk), limit-off)
		if _, err := w.Write(body[off : off+n]); err != nil {
			return
		}
		off += n
		if tf.throttle > 0 {
			flush()
			select {
			case <-time.After(tf.throttle):
			case <-r.Context().Done():
				return
			case <-h.closing:
				return
			}
		}
	}
	if !cut {
		return
	}
	flush()
	if tf.stall {
		select {
		case <-r.Context().Done():
		case <-h.closing:
		}
	}
	panic(http.ErrAbortHandler) // drop the connection mid-body
}
