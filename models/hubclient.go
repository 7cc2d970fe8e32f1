package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// hubClient speaks the Hub's HTTP protocol (hf-inference-api.md §5.1–5.4): resolve HEAD/GET,
// the repo info and tree APIs, error mapping, auth scoping, redirects and retries.
type hubClient struct {
	cfg      HubConfig
	endpoint *url.URL
	http     *http.Client
	log      *slog.Logger
}

const (
	maxAPIBody   = 64 << 20 // a listing of ~100k files; more is not a model repo
	maxErrorBody = 4 << 10
	maxRedirects = 10
	maxBackoff   = 30 * time.Second
)

func newHubClient(cfg HubConfig) (*hubClient, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("models: HF_ENDPOINT %q is not an http(s) URL", cfg.Endpoint)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Redirects are followed by hand: HEAD must stop at absolute (CDN) redirects, and the
	// token must never reach another host.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hubClient{cfg: cfg, endpoint: u, http: &hc, log: cfg.Logger}, nil
}

func (c *hubClient) base() string { return c.endpoint.String() }

// escapePath quotes each segment of a repo path, keeping the slashes.
func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

// resolveURL is {endpoint}/{repo}/resolve/{revision}/{path}; the revision is escaped with no
// safe characters (refs/pr/1 → refs%2Fpr%2F1), as huggingface_hub's hf_hub_url does.
func (c *hubClient) resolveURL(id, rev, file string) string {
	return c.base() + "/" + id + "/resolve/" + url.PathEscape(rev) + "/" + escapePath(file)
}

func (c *hubClient) newRequest(ctx context.Context, method, rawURL string, hdr http.Header) (*http.Request, error) {
	if c.cfg.Offline {
		return nil, ErrOffline
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	// The token goes to the Hub only: CDN URLs are pre-signed and storage services reject a
	// second credential (huggingface_hub drops it when the host changes).
	if c.cfg.Token != "" && strings.EqualFold(req.URL.Host, c.endpoint.Host) {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return req, nil
}

// do sends one request and follows redirects by hand: relative Locations always (renamed
// repos answer 307 with a path), absolute ones only when followAbsolute. The caller closes
// the returned body.
func (c *hubClient) do(ctx context.Context, method, rawURL string, hdr http.Header, followAbsolute bool) (*http.Response, error) {
	for i := 0; ; i++ {
		req, err := c.newRequest(ctx, method, rawURL, hdr)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			return nil, &HubError{URL: redact(req.URL.Redacted()), Err: err}
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, nil
		}
		lu, err := url.Parse(loc)
		if err != nil {
			resp.Body.Close()
			return nil, &HubError{URL: redact(req.URL.Redacted()), Status: resp.StatusCode, Message: "bad Location header", Err: err}
		}
		if (lu.Host != "" || lu.Scheme != "") && !followAbsolute {
			return resp, nil
		}
		if i >= maxRedirects {
			resp.Body.Close()
			return nil, &HubError{URL: redact(req.URL.Redacted()), Status: resp.StatusCode, Message: "too many redirects"}
		}
		drainClose(resp.Body)
		rawURL = resp.Request.URL.ResolveReference(lu).String()
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxErrorBody))
	body.Close()
}

// errorFrom turns a >= 400 response into a *HubError (and closes the body).
func errorFrom(resp *http.Response, id, rev, file string, repoAPI bool) *HubError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
	e := hubErrorFromResponse(resp, body, id, rev, file, repoAPI)
	e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return e
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// retry runs fn until it succeeds, fails permanently, ctx ends or MaxRetries transient
// failures have happened, sleeping with exponential backoff and jitter in between. prev,
// if not nil, is the error of an attempt the caller already made (it counts as the first).
func (c *hubClient) retry(ctx context.Context, what string, prev error, fn func(ctx context.Context) error) error {
	err := prev
	for attempt := 0; ; attempt++ {
		if attempt > 0 || prev == nil {
			err = fn(ctx)
		}
		if err == nil || !isTransient(err) || attempt >= c.cfg.MaxRetries || ctx.Err() != nil {
			return err
		}
		d := c.backoff(attempt, err)
		c.log.Warn("hub request failed, retrying", "what", what, "attempt", attempt+1, "of", c.cfg.MaxRetries, "in", d.Round(time.Millisecond), "err", err)
		if err := sleepCtx(ctx, d); err != nil {
			return err
		}
	}
}

// backoff is RetryDelay·2^attempt plus up to 50 % jitter, capped at 30 s; a Retry-After
// from a 429/503 wins (capped at a minute).
func (c *hubClient) backoff(attempt int, err error) time.Duration {
	var he *HubError
	if errors.As(err, &he) && he.retryAfter > 0 {
		return min(he.retryAfter, time.Minute)
	}
	d := c.cfg.RetryDelay << min(attempt, 16)
	if d <= 0 || d > maxBackoff {
		d = maxBackoff
	}
	return d + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fileMeta is what a HEAD on resolve tells about a file (huggingface_hub HfFileMetadata).
type fileMeta struct {
	Commit   string // X-Repo-Commit
	ETag     string // X-Linked-Etag (LFS: sha256) or ETag (git sha1), normalised
	Size     int64  // X-Linked-Size or Content-Length
	Location string // where to GET the bytes: the CDN URL for LFS files
	Linked   bool   // the metadata came from X-Linked-* headers (an LFS file)

	// relocate fetches a fresh Location (pre-signed CDN URLs expire during long retries).
	relocate func(ctx context.Context) (string, error)
}

// headFile sends one HEAD on resolve (no retries: callers decide).
func (c *hubClient) headFile(ctx context.Context, id, rev, file string) (fileMeta, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.EtagTimeout)
	defer cancel()
	hdr := http.Header{"Accept-Encoding": {"identity"}}
	resp, err := c.do(ctx, http.MethodHead, c.resolveURL(id, rev, file), hdr, false)
	if err != nil {
		annotate(err, id, rev, file)
		return fileMeta{}, err
	}
	if resp.StatusCode >= 400 {
		return fileMeta{}, errorFrom(resp, id, rev, file, false)
	}
	drainClose(resp.Body)
	h := resp.Header
	m := fileMeta{Commit: h.Get("X-Repo-Commit"), Location: resp.Request.URL.String()}
	if !isCommit(m.Commit) {
		return m, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, RepoID: id, Revision: rev, Path: file,
			Message: fmt.Sprintf("no valid X-Repo-Commit header (%.60q): the endpoint does not seem to be a Hugging Face Hub", m.Commit)}
	}
	if v := h.Get("X-Linked-Etag"); v != "" {
		m.ETag, m.Linked = normalizeETag(v), true
	} else {
		m.ETag = normalizeETag(h.Get("ETag"))
	}
	if err := validateETag(m.ETag); err != nil {
		return m, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, RepoID: id, Path: file, Message: "missing or invalid ETag", Err: err}
	}
	sizeHdr := h.Get("X-Linked-Size")
	if sizeHdr == "" && !isRedirect(resp.StatusCode) {
		sizeHdr = h.Get("Content-Length")
	}
	size, err := strconv.ParseInt(sizeHdr, 10, 64)
	if err != nil || size < 0 || size > maxDownloadSize {
		return m, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, RepoID: id, Path: file,
			Message: fmt.Sprintf("missing or invalid file size (%q)", sizeHdr)}
	}
	m.Size = size
	if isRedirect(resp.StatusCode) {
		lu, err := resp.Request.URL.Parse(h.Get("Location"))
		if err != nil {
			return m, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, Message: "bad Location header", Err: err}
		}
		m.Location = lu.String()
	}
	return m, nil
}

// annotate adds repo context to a network-level *HubError.
func annotate(err error, id, rev, file string) {
	var he *HubError
	if errors.As(err, &he) {
		he.RepoID, he.Revision, he.Path = id, rev, file
	}
}

// getJSON GETs an API URL and decodes its JSON body into v; it returns the response
// headers (for pagination).
func (c *hubClient) getJSON(ctx context.Context, rawURL, id, rev string, v any) (http.Header, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.EtagTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, rawURL, http.Header{"Accept": {"application/json"}}, true)
	if err != nil {
		annotate(err, id, rev, "")
		return nil, err
	}
	if resp.StatusCode >= 400 {
		return nil, errorFrom(resp, id, rev, "", true)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, &HubError{URL: redact(resp.Request.URL.Redacted()), Status: resp.StatusCode, RepoID: id, Revision: rev, Message: "unexpected status"}
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxAPIBody))
	if err := dec.Decode(v); err != nil {
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, &HubError{URL: redact(resp.Request.URL.Redacted()), RepoID: id, Revision: rev, Err: err}
		}
		return nil, fmt.Errorf("models: decode %s: %w", redact(resp.Request.URL.Redacted()), err)
	}
	return resp.Header, nil
}

// apiModelInfo is the part of GET /api/models/{id}/revision/{rev}?blobs=true used here.
type apiModelInfo struct {
	ID          string `json:"id"`
	SHA         string `json:"sha"`
	PipelineTag string `json:"pipeline_tag"`
	Siblings    []struct {
		RFilename string `json:"rfilename"`
		Size      *int64 `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *struct {
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"lfs"`
	} `json:"siblings"`
}

// apiTreeEntry is one element of GET /api/models/{id}/tree/{rev}?recursive=true.
type apiTreeEntry struct {
	Type string `json:"type"`
	OID  string `json:"oid"`
	Size int64  `json:"size"`
	Path string `json:"path"`
	LFS  *struct {
		OID  string `json:"oid"`
		Size int64  `json:"size"`
	} `json:"lfs"`
}

// repoListing resolves revision to a commit and lists the repo's files at that commit:
// one GET /api/models/{id}/revision/{rev}?blobs=true; when the siblings lack blob metadata
// (some Hub-compatible servers), the paginated tree API fills it in.
func (c *hubClient) repoListing(ctx context.Context, id, rev string) (string, listing, error) {
	var info apiModelInfo
	u := c.base() + "/api/models/" + id + "/revision/" + url.PathEscape(rev) + "?blobs=true"
	if _, err := c.getJSON(ctx, u, id, rev, &info); err != nil {
		return "", nil, err
	}
	if !isCommit(info.SHA) {
		return "", nil, fmt.Errorf("models: %s answered an invalid commit sha %.60q for %s@%s", c.base(), info.SHA, id, rev)
	}
	l := listing{}
	complete := true
	for _, s := range info.Siblings {
		if err := ValidateRepoPath(s.RFilename); err != nil {
			c.log.Warn("hub listing: skipping unsafe path", "repo", id, "path", s.RFilename)
			continue
		}
		f := RepoFile{Path: s.RFilename, Size: -1, BlobID: s.BlobID}
		if s.Size != nil {
			f.Size = *s.Size
		}
		if s.LFS != nil {
			f.LFSSHA256, f.LFSSize = s.LFS.SHA256, s.LFS.Size
		}
		if f.Size < 0 || f.BlobID == "" {
			complete = false
		}
		l[f.Path] = f
	}
	if complete && len(info.Siblings) > 0 {
		return info.SHA, l, nil
	}
	tl, err := c.treeListing(ctx, id, info.SHA)
	if err != nil {
		return "", nil, err
	}
	return info.SHA, tl, nil
}

// treeListing pages through GET /api/models/{id}/tree/{commit}?recursive=true.
func (c *hubClient) treeListing(ctx context.Context, id, commit string) (listing, error) {
	l := listing{}
	next := c.base() + "/api/models/" + id + "/tree/" + url.PathEscape(commit) + "?recursive=true&expand=false"
	for page := 0; next != ""; page++ {
		if page > 10000 {
			return nil, fmt.Errorf("models: tree listing of %s does not end", id)
		}
		var entries []apiTreeEntry
		var hdr http.Header
		err := c.retry(ctx, "tree "+id, nil, func(ctx context.Context) error {
			var err error
			entries = nil
			hdr, err = c.getJSON(ctx, next, id, commit, &entries)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Type != "file" {
				continue
			}
			if err := ValidateRepoPath(e.Path); err != nil {
				c.log.Warn("hub listing: skipping unsafe path", "repo", id, "path", e.Path)
				continue
			}
			f := RepoFile{Path: e.Path, Size: e.Size, BlobID: e.OID}
			if e.LFS != nil {
				f.LFSSHA256, f.LFSSize = e.LFS.OID, e.LFS.Size
			}
			l[f.Path] = f
		}
		next = resolveLink(next, nextLink(hdr.Get("Link")))
	}
	return l, nil
}

// resolveLink resolves a (possibly relative) pagination link against the page's URL.
func resolveLink(page, link string) string {
	if link == "" {
		return ""
	}
	pu, err := url.Parse(page)
	if err != nil {
		return ""
	}
	lu, err := pu.Parse(link)
	if err != nil || (lu.Scheme != "http" && lu.Scheme != "https") {
		return ""
	}
	return lu.String()
}

// nextLink extracts the rel="next" URL of a Link header (huggingface_hub _pagination.py).
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		segs := strings.Split(part, ";")
		if len(segs) < 2 {
			continue
		}
		target := strings.TrimSpace(segs[0])
		if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
			continue
		}
		for _, p := range segs[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "rel") && strings.Trim(strings.TrimSpace(v), `"`) == "next" {
				return target[1 : len(target)-1]
			}
		}
	}
	return ""
}
