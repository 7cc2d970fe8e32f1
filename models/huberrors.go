package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Error kinds of the Hub client. Match them with errors.Is; the concrete *HubError carries
// the HTTP details and an actionable message.
var (
	// ErrRepoNotFound: the repo does not exist, or is private and no (valid) token was sent.
	ErrRepoNotFound = errors.New("repository not found")
	// ErrGatedRepo: the repo is gated and the token's account has not been granted access.
	ErrGatedRepo = errors.New("gated repository")
	// ErrRevisionNotFound: the branch, tag or commit does not exist in the repo.
	ErrRevisionNotFound = errors.New("revision not found")
	// ErrEntryNotFound: the file does not exist at that commit.
	ErrEntryNotFound = errors.New("entry not found")
	// ErrDisabledRepo: the repo was disabled on the Hub.
	ErrDisabledRepo = errors.New("repository disabled")
	// ErrUnauthorized: the Hub rejected the token itself.
	ErrUnauthorized = errors.New("invalid credentials")
	// ErrForbidden: any other 403.
	ErrForbidden = errors.New("forbidden")
	// ErrOffline: offline mode is on, so no request was sent.
	ErrOffline = errors.New("offline mode is enabled (HF_HUB_OFFLINE)")
	// ErrNotCached: what is needed is not in the cache (huggingface_hub LocalEntryNotFoundError).
	ErrNotCached = errors.New("not in the local cache")
	// ErrConsistency: a download's size or checksum does not match the Hub's metadata. The
	// wording is huggingface_hub's, so the failure reads the same in both stacks.
	ErrConsistency = errors.New("Consistency check failed") //nolint:staticcheck // huggingface_hub's message
	// ErrNoONNX: the repo has no ONNX graph that fits the task and --onnx-file.
	ErrNoONNX = errors.New("no suitable ONNX file")
)

// HubError is a failed Hub request.
type HubError struct {
	Kind      error  // one of the Err* kinds above, or nil for other statuses
	Status    int    // HTTP status; 0 for network errors
	Code      string // X-Error-Code
	Message   string // X-Error-Message or the body's "error"
	URL       string
	RepoID    string
	Revision  string
	Path      string // file path for resolve requests
	Commit    string // X-Repo-Commit, when the response carried one
	RequestID string // X-Request-Id, to quote to Hub support
	Err       error  // network cause, if any

	retryAfter time.Duration // from a Retry-After header
}

func (e *HubError) Error() string {
	var b strings.Builder
	b.WriteString("models: ")
	switch e.Kind {
	case ErrRepoNotFound:
		fmt.Fprintf(&b, "repository %s not found (HTTP %d). Check the id; if the repo is private, set HF_TOKEN to a token with read access", e.RepoID, e.Status)
	case ErrGatedRepo:
		fmt.Fprintf(&b, "repository %s is gated (HTTP %d). Request access on its Hub page, then set HF_TOKEN to a token of the account that was granted access", e.RepoID, e.Status)
	case ErrUnauthorized:
		fmt.Fprintf(&b, "the Hub rejected the token (HTTP %d). Check HF_TOKEN (or HF_TOKEN_PATH / $HF_HOME/token)", e.Status)
	case ErrRevisionNotFound:
		fmt.Fprintf(&b, "revision %q not found in %s (HTTP %d). Use an existing branch, tag or full 40-character commit id", e.Revision, e.RepoID, e.Status)
	case ErrEntryNotFound:
		fmt.Fprintf(&b, "file %q not found in %s at revision %s (HTTP %d)", e.Path, e.RepoID, e.Revision, e.Status)
	case ErrDisabledRepo:
		fmt.Fprintf(&b, "repository %s has been disabled on the Hub (HTTP %d)", e.RepoID, e.Status)
	case ErrForbidden:
		fmt.Fprintf(&b, "access to %s is forbidden (HTTP %d). Check that HF_TOKEN has read access to it", e.RepoID, e.Status)
	default:
		if e.Status == 0 {
			fmt.Fprintf(&b, "request to %s failed", e.URL)
		} else {
			fmt.Fprintf(&b, "%s answered HTTP %d", e.URL, e.Status)
		}
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

func (e *HubError) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// transient reports whether the request may succeed if repeated: network errors,
// timeouts, 408, 429 and 5xx.
func (e *HubError) transient() bool {
	if e.Kind != nil {
		return false
	}
	if e.Status == 0 {
		return e.Err != nil && !errors.Is(e.Err, context.Canceled)
	}
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// isTransient reports an error worth retrying (and, once retries are spent, one that lets
// resolution fall back to the cache, as huggingface_hub does for network errors and 5xx).
func isTransient(err error) bool {
	var he *HubError
	if errors.As(err, &he) {
		return he.transient()
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, errStalled)
}

// errStalled is the cause of a download cancelled because no bytes came for DownloadTimeout.
var errStalled = errors.New("no data received within the download timeout (HF_HUB_DOWNLOAD_TIMEOUT)")

// hubErrorFromResponse maps a >= 400 response the way huggingface_hub's
// hf_raise_for_status does, using X-Error-Code and X-Error-Message.
func hubErrorFromResponse(resp *http.Response, body []byte, repoID, rev, file string, repoAPI bool) *HubError {
	e := &HubError{
		Status:    resp.StatusCode,
		Code:      resp.Header.Get("X-Error-Code"),
		Message:   resp.Header.Get("X-Error-Message"),
		URL:       redact(resp.Request.URL.Redacted()),
		RepoID:    repoID,
		Revision:  rev,
		Path:      file,
		RequestID: resp.Header.Get("X-Request-Id"),
	}
	if c := resp.Header.Get("X-Repo-Commit"); isCommit(c) {
		e.Commit = c
	}
	if e.Message == "" {
		e.Message = errorMessageFromBody(body)
	}
	switch {
	case e.Code == "RepoNotFound":
		e.Kind = ErrRepoNotFound
	case e.Code == "GatedRepo":
		e.Kind = ErrGatedRepo
	case e.Code == "RevisionNotFound":
		e.Kind = ErrRevisionNotFound
	case e.Code == "EntryNotFound":
		e.Kind = ErrEntryNotFound
	case e.Message == "Access to this resource is disabled.":
		e.Kind = ErrDisabledRepo
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(e.Message, "Invalid credentials in Authorization header"):
		e.Kind = ErrUnauthorized
	case resp.StatusCode == http.StatusUnauthorized && (repoAPI || file != ""):
		// huggingface_hub: a 401 on a repo URL means "not found or private".
		e.Kind = ErrRepoNotFound
	case resp.StatusCode == http.StatusUnauthorized:
		e.Kind = ErrUnauthorized
	case resp.StatusCode == http.StatusForbidden:
		e.Kind = ErrForbidden
	case resp.StatusCode == http.StatusNotFound && file != "":
		e.Kind = ErrEntryNotFound
	case resp.StatusCode == http.StatusNotFound:
		e.Kind = ErrRepoNotFound
	}
	return e
}

func errorMessageFromBody(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	var v struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err == nil && v.Error != "" {
		return v.Error
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if !strings.HasPrefix(s, "<") { // skip HTML error pages
		return s
	}
	return ""
}
