package models

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DefaultEndpoint is the Hub that HF_ENDPOINT overrides.
const DefaultEndpoint = "https://huggingface.co"

// stagingEndpoint is what HUGGINGFACE_CO_STAGING=1 selects (huggingface_hub constants.py).
const stagingEndpoint = "https://hub-ci.huggingface.co"

// HubConfig configures Hub access and the local cache. HubConfigFromEnv fills it the way
// huggingface_hub reads its environment; zero durations and counts take the defaults below.
type HubConfig struct {
	// Endpoint is the Hub base URL (HF_ENDPOINT; default https://huggingface.co).
	Endpoint string
	// Token is sent as "Authorization: Bearer" to the endpoint's host only (HF_TOKEN, …).
	Token string
	// CacheDir is the Hugging Face cache root (HF_HUB_CACHE, …). Required.
	CacheDir string
	// Offline forbids every network request (HF_HUB_OFFLINE=1): only the cache answers.
	Offline bool
	// EtagTimeout bounds each metadata request: HEAD on resolve and the API calls
	// (HF_HUB_ETAG_TIMEOUT; default 10 s).
	EtagTimeout time.Duration
	// DownloadTimeout is the longest a download may wait for its next bytes before the
	// transfer is retried with Range (HF_HUB_DOWNLOAD_TIMEOUT; default 10 s).
	DownloadTimeout time.Duration
	// MaxRetries is how often a transient failure (network error, 408, 429, 5xx) is retried
	// before giving up (default 5; a download resets the count whenever bytes arrive).
	// Negative means no retries.
	MaxRetries int
	// RetryDelay is the first backoff; each retry doubles it, plus up to 50 % jitter, capped
	// at 30 s (default 1 s). A Retry-After header takes precedence.
	RetryDelay time.Duration
	// DisableSymlinks copies blobs into snapshots instead of linking them
	// (HF_HUB_DISABLE_SYMLINKS).
	DisableSymlinks bool
	// Workers is how many files download at once (default 4).
	Workers int
	// HTTPClient is used for every request; nil means a private client. Its CheckRedirect is
	// never consulted: redirects are followed by hand (see hubclient.go).
	HTTPClient *http.Client
	// UserAgent is sent with every request (default "infergo; hf_hub-compatible").
	UserAgent string
	// Logger receives download and fallback logs (default slog.Default()).
	Logger *slog.Logger
	// Progress, when set, is told about every byte that is actually downloaded; without it
	// downloads are logged (start, every 30 s, end).
	Progress Progress
}

// Progress observes downloads. Implementations must be safe for concurrent use: files
// download in parallel.
type Progress interface {
	// Start announces a download of size bytes of which resumed are already on disk.
	Start(repoID, file string, size, resumed int64)
	// Advance reports n more bytes written (negative when a transfer restarts from 0).
	Advance(file string, n int64)
	// Finish ends a download; err is nil on success.
	Finish(file string, err error)
}

func (c HubConfig) withDefaults() HubConfig {
	if c.Endpoint == "" {
		c.Endpoint = DefaultEndpoint
	}
	c.Endpoint = strings.TrimRight(c.Endpoint, "/")
	if c.EtagTimeout <= 0 {
		c.EtagTimeout = 10 * time.Second
	}
	if c.DownloadTimeout <= 0 {
		c.DownloadTimeout = 10 * time.Second
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	} else if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.UserAgent == "" {
		c.UserAgent = "infergo; hf_hub-compatible"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// HubConfigFromEnv reads the huggingface_hub environment through getenv (os.Getenv in
// production; a map in tests):
//
//	HF_ENDPOINT (or HUGGINGFACE_CO_STAGING=1)     Endpoint
//	HF_TOKEN > HUGGING_FACE_HUB_TOKEN > file $HF_TOKEN_PATH (default $HF_HOME/token)
//	                                              Token; none with HF_HUB_DISABLE_IMPLICIT_TOKEN
//	HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub
//	  > ~/.cache/huggingface/hub                  CacheDir (see DefaultCacheDir)
//	HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE        Offline (1, ON, YES, TRUE)
//	HF_HUB_ETAG_TIMEOUT, HF_HUB_DOWNLOAD_TIMEOUT  seconds
//	HF_HUB_DISABLE_SYMLINKS                       DisableSymlinks
func HubConfigFromEnv(getenv func(string) string) (HubConfig, error) {
	c := HubConfig{
		Endpoint:        getenv("HF_ENDPOINT"),
		CacheDir:        DefaultCacheDir(getenv),
		Offline:         envTrue(getenv("HF_HUB_OFFLINE")) || envTrue(getenv("TRANSFORMERS_OFFLINE")),
		DisableSymlinks: envTrue(getenv("HF_HUB_DISABLE_SYMLINKS")),
	}
	if c.Endpoint == "" && envTrue(getenv("HUGGINGFACE_CO_STAGING")) {
		c.Endpoint = stagingEndpoint
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"HF_HUB_ETAG_TIMEOUT", &c.EtagTimeout}, {"HF_HUB_DOWNLOAD_TIMEOUT", &c.DownloadTimeout}} {
		v := strings.TrimSpace(getenv(d.name))
		if v == "" {
			continue
		}
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 || secs > 86400 {
			return c, fmt.Errorf("models: %s=%q is not a number of seconds between 0 and 86400", d.name, v)
		}
		*d.dst = time.Duration(secs * float64(time.Second))
	}
	if !envTrue(getenv("HF_HUB_DISABLE_IMPLICIT_TOKEN")) {
		tok, err := tokenFromEnv(getenv)
		if err != nil {
			return c, err
		}
		c.Token = tok
	}
	return c, nil
}

// envTrue reports huggingface_hub's truthy values (constants._is_true).
func envTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

// hfHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func hfHome(getenv func(string) string) string {
	if h := getenv("HF_HOME"); h != "" {
		return expandPath(h, getenv)
	}
	if x := getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(expandPath(x, getenv), "huggingface")
	}
	return filepath.Join(homeDir(getenv), ".cache", "huggingface")
}

// DefaultCacheDir is the cache root huggingface_hub would use: HF_HUB_CACHE >
// HUGGINGFACE_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub >
// ~/.cache/huggingface/hub. The container sets HF_HUB_CACHE=/data, so there the cache is /data.
func DefaultCacheDir(getenv func(string) string) string {
	for _, name := range []string{"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"} {
		if v := getenv(name); v != "" {
			return expandPath(v, getenv)
		}
	}
	return filepath.Join(hfHome(getenv), "hub")
}

func tokenFromEnv(getenv func(string) string) (string, error) {
	for _, name := range []string{"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"} {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v, nil
		}
	}
	path := getenv("HF_TOKEN_PATH")
	if path == "" {
		path = filepath.Join(hfHome(getenv), "token")
	} else {
		path = expandPath(path, getenv)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return "", nil
		}
		return "", fmt.Errorf("models: read token file %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// expandPath expands a leading ~ and $VARS, as huggingface_hub does for HF_HOME.
func expandPath(p string, getenv func(string) string) string {
	p = os.Expand(p, getenv)
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = filepath.Join(homeDir(getenv), p[1:])
	}
	return p
}

func homeDir(getenv func(string) string) string {
	if h := getenv("HOME"); h != "" {
		return h
	}
	if h, err := os.UserHomeDir(); err == nil {
		return h
	}
	return "/"
}
