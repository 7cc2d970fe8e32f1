package models

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxDownloadSize is huggingface_hub's MAX_HTTP_DOWNLOAD_SIZE for plain HTTP downloads.
const maxDownloadSize = 50_000_000_000

// errRestart asks the download loop to discard the partial file and start from byte 0.
var errRestart = errors.New("restart download from the beginning")

// verifier checks downloaded bytes against the ETag that names the blob: sha256 for LFS
// files (X-Linked-Etag), the git blob sha1 ("blob <size>\x00" + content) for regular files.
// ETags of neither shape (non-Hub servers) are not checked.
type verifier struct {
	h    hash.Hash
	want string
	kind string
	size int64
}

func newVerifier(etag string, linked bool, size int64) *verifier {
	v := &verifier{want: etag, size: size}
	switch {
	case len(etag) == 64 && isLowerHex(etag):
		v.kind = "sha256"
	case len(etag) == 40 && isLowerHex(etag) && !linked:
		v.kind = "git-sha1"
	}
	v.reset()
	return v
}

func (v *verifier) reset() {
	switch v.kind {
	case "sha256":
		v.h = sha256.New()
	case "git-sha1":
		v.h = sha1.New()
		fmt.Fprintf(v.h, "blob %d\x00", v.size)
	default:
		v.h = nil
	}
}

func (v *verifier) Write(p []byte) (int, error) {
	if v.h != nil {
		v.h.Write(p)
	}
	return len(p), nil
}

func (v *verifier) check(file string) error {
	if v.h == nil {
		return nil
	}
	if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
		return fmt.Errorf("models: %s: %w: %s is %s, the Hub says %s", file, ErrConsistency, v.kind, got, v.want)
	}
	return nil
}

// parseContentRange parses "bytes first-last/total" (total may be "*": returned as -1).
func parseContentRange(v string) (first, last, total int64, err error) {
	bad := fmt.Errorf("models: bad Content-Range %.80q", v)
	unit, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(unit, "bytes") {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, err = parseNonNeg(a); err != nil {
		return 0, 0, 0, bad
	}
	if last, err = parseNonNeg(b); err != nil || last < first {
		return 0, 0, 0, bad
	}
	if tot == "*" {
		return first, last, -1, nil
	}
	if total, err = parseNonNeg(tot); err != nil || last >= total {
		return 0, 0, 0, bad
	}
	return first, last, total, nil
}

func parseNonNeg(s string) (int64, error) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(s, 10, 64)
}

// downloadBlob fetches m into blobs/<etag> through blobs/<etag>.incomplete, resuming what a
// previous (interrupted or cancelled) run left there. The caller holds the blob lock, so
// the shared .incomplete name is safe and is what makes resuming across processes work.
// It returns the number of bytes transferred.
func (h *Hub) downloadBlob(ctx context.Context, id, file string, m fileMeta) (int64, error) {
	blob := h.cache.blobPath(id, m.ETag)
	tmp := blob + ".incomplete"
	if err := os.MkdirAll(h.cache.RepoDir(id)+"/blobs", 0o755); err != nil {
		return 0, fmt.Errorf("models: %w", err)
	}
	var transferred int64
	for attempt := 0; ; attempt++ {
		n, resumed, err := h.downloadOnce(ctx, id, file, m, tmp)
		transferred += n
		if err == nil {
			if err := os.Rename(tmp, blob); err != nil {
				return transferred, fmt.Errorf("models: %w", err)
			}
			return transferred, nil
		}
		// A checksum mismatch after resuming may come from a stale partial file: try once
		// more from scratch before reporting it.
		if errors.Is(err, ErrConsistency) && resumed && attempt == 0 {
			h.log.Warn("resumed download failed verification; restarting from 0", "repo", id, "file", file, "err", err)
			os.Remove(tmp)
			continue
		}
		return transferred, err
	}
}

func (h *Hub) downloadOnce(ctx context.Context, id, file string, m fileMeta, tmp string) (n int64, resumed bool, err error) {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("models: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return 0, false, fmt.Errorf("models: %w", err)
	}
	have := st.Size()
	if have > m.Size {
		if err := f.Truncate(0); err != nil {
			return 0, false, fmt.Errorf("models: %w", err)
		}
		have = 0
	}
	v := newVerifier(m.ETag, m.Linked, m.Size)
	if have > 0 {
		// Hash what is already there so the final check covers the whole file.
		if _, err := io.Copy(v, io.NewSectionReader(f, 0, have)); err != nil {
			return 0, false, fmt.Errorf("models: read partial %s: %w", tmp, err)
		}
	}
	resumed = have > 0
	h.progress.Start(id, file, m.Size, have)
	start := have
	err = h.transfer(ctx, id, file, m, f, &have, v)
	h.progress.Finish(file, err)
	n = have - start
	if err != nil {
		return n, resumed, err
	}
	if have != m.Size {
		return n, resumed, fmt.Errorf("models: %s: %w: file should be of size %d but has size %d", file, ErrConsistency, m.Size, have)
	}
	if err := v.check(file); err != nil {
		f.Close()
		f = nil
		os.Remove(tmp)
		return n, resumed, err
	}
	if err := f.Sync(); err != nil {
		return n, resumed, fmt.Errorf("models: sync %s: %w", tmp, err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return n, resumed, fmt.Errorf("models: %w", err)
	}
	return n, resumed, nil
}

// transfer GETs the bytes from *have to m.Size, retrying transient failures with Range and
// backoff. The failure count resets whenever bytes arrive (huggingface_hub http_get).
func (h *Hub) transfer(ctx context.Context, id, file string, m fileMeta, f *os.File, have *int64, v *verifier) error {
	c := h.client
	failures := 0
	relocated := false
	for *have < m.Size {
		progressed, err := h.fetchOnce(ctx, id, file, m, f, have, v)
		if err == nil {
			if *have < m.Size {
				return fmt.Errorf("models: %s: %w: file should be of size %d but has size %d", file, ErrConsistency, m.Size, *have)
			}
			return nil
		}
		if !relocated && m.relocate != nil && h.expiredLocation(err, m.Location) && ctx.Err() == nil {
			relocated = true
			loc, rerr := m.relocate(ctx)
			if rerr != nil {
				return fmt.Errorf("models: download %s: %w (refreshing the download URL after: %v)", file, rerr, err)
			}
			h.log.Info("download URL refused; continuing with a fresh one", "repo", id, "file", file, "err", err)
			m.Location = loc
			continue
		}
		if errors.Is(err, errRestart) {
			if terr := h.restart(f, have, v, file); terr != nil {
				return terr
			}
		} else if !isTransient(err) || ctx.Err() != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("models: download %s: %w", file, ctx.Err())
			}
			return err
		}
		if progressed {
			failures = 0
		}
		failures++
		if failures > c.cfg.MaxRetries {
			return fmt.Errorf("models: download %s of %s failed after %d retries: %w", file, id, c.cfg.MaxRetries, err)
		}
		d := c.backoff(failures-1, err)
		h.log.Warn("download interrupted, resuming", "repo", id, "file", file, "have", *have, "size", m.Size, "in", d.Round(time.Millisecond), "err", err)
		if err := sleepCtx(ctx, d); err != nil {
			return fmt.Errorf("models: download %s: %w", file, err)
		}
	}
	return nil
}

// expiredLocation reports a storage host refusing a (pre-signed) URL: 401, 403, 404 or 410
// from a host other than the Hub's.
func (h *Hub) expiredLocation(err error, location string) bool {
	var he *HubError
	if !errors.As(err, &he) {
		return false
	}
	switch he.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone:
	default:
		return false
	}
	u, perr := url.Parse(location)
	return perr == nil && !strings.EqualFold(u.Host, h.client.endpoint.Host)
}

func (h *Hub) restart(f *os.File, have *int64, v *verifier, file string) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("models: %w", err)
	}
	if *have > 0 {
		h.progress.Advance(file, -*have)
	}
	*have = 0
	v.reset()
	return nil
}

// fetchOnce sends one GET (with Range when resuming) and streams the body into f. A stall
// longer than DownloadTimeout cancels the request with errStalled, which is transient.
func (h *Hub) fetchOnce(ctx context.Context, id, file string, m fileMeta, f *os.File, have *int64, v *verifier) (progressed bool, err error) {
	c := h.client
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(c.cfg.DownloadTimeout, func() { cancel(errStalled) })
	defer timer.Stop()
	stalled := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(context.Cause(rctx), errStalled) {
			return &HubError{URL: redact(m.Location), RepoID: id, Path: file, Err: errStalled}
		}
		return err
	}

	hdr := http.Header{"Accept-Encoding": {"identity"}}
	if *have > 0 {
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", *have))
	}
	resp, err := c.do(rctx, http.MethodGet, m.Location, hdr, true)
	if err != nil {
		annotate(err, id, "", file)
		return false, stalled(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		first, _, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil || first != *have {
			return false, errRestart
		}
		if total >= 0 && total != m.Size {
			return false, fmt.Errorf("models: %s: %w: the server has %d bytes, the Hub said %d", file, ErrConsistency, total, m.Size)
		}
	case resp.StatusCode == http.StatusOK:
		if *have > 0 { // the server ignored Range: start over
			if err := h.restart(f, have, v, file); err != nil {
				return false, err
			}
		}
		if resp.ContentLength >= 0 && resp.ContentLength != m.Size {
			return false, fmt.Errorf("models: %s: %w: file should be of size %d but the server sends %d", file, ErrConsistency, m.Size, resp.ContentLength)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return false, errRestart
	case resp.StatusCode >= 400:
		return false, errorFrom(resp, id, "", file, false)
	default:
		return false, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, RepoID: id, Path: file, Message: "unexpected status for a download"}
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false, fmt.Errorf("models: %s: the server sent Content-Encoding %q although identity was requested", file, ce)
	}

	w := io.NewOffsetWriter(f, *have)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			timer.Reset(c.cfg.DownloadTimeout)
			if *have+int64(n) > m.Size {
				return progressed, fmt.Errorf("models: %s: %w: the server sends more than %d bytes", file, ErrConsistency, m.Size)
			}
			if _, werr := w.Write(buf[:n]); werr != nil {
				return progressed, fmt.Errorf("models: write %s: %w", file, werr)
			}
			v.Write(buf[:n])
			*have += int64(n)
			progressed = true
			h.progress.Advance(file, int64(n))
		}
		if rerr == io.EOF {
			return progressed, nil
		}
		if rerr != nil {
			return progressed, stalled(&HubError{URL: redact(resp.Request.URL.Redacted()), RepoID: id, Path: file, Err: rerr})
		}
	}
}

func redact(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i] // pre-signed CDN URLs carry credentials in the query
	}
	return raw
}
