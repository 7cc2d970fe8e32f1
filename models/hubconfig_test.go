package models

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultCacheDir(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/home/u"}, "/home/u/.cache/huggingface/hub"},
		{map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"}, "/xdg/huggingface/hub"},
		{map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "HF_HOME": "~/hf"}, "/home/u/hf/hub"},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy"}, "/legacy"},
		{map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy", "HF_HUB_CACHE": "/data"}, "/data"},
		{map[string]string{"BASE": "/srv", "HF_HOME": "$BASE/hf"}, "/srv/hf/hub"},
	} {
		if got := DefaultCacheDir(envMap(tc.env)); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.env, got, tc.want)
		}
	}
}

func TestHubConfigFromEnv(t *testing.T) {
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "token"), []byte("hf_from_file\n"), 0o600)
	cfg, err := HubConfigFromEnv(envMap(map[string]string{
		"HF_HOME": home, "HF_ENDPOINT": "http://mirror.local/", "HF_HUB_OFFLINE": "yes",
		"HF_HUB_ETAG_TIMEOUT": "2.5", "HF_HUB_DOWNLOAD_TIMEOUT": "30", "HF_HUB_DISABLE_SYMLINKS": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Endpoint != "http://mirror.local/" || !cfg.Offline || cfg.EtagTimeout != 2500*time.Millisecond ||
		cfg.DownloadTimeout != 30*time.Second || !cfg.DisableSymlinks || cfg.Token != "hf_from_file" ||
		cfg.CacheDir != filepath.Join(home, "hub") {
		t.Errorf("%+v", cfg)
	}
	if d := cfg.withDefaults(); d.Endpoint != "http://mirror.local" || d.MaxRetries != 5 || d.Workers != 4 {
		t.Errorf("defaults %+v", d)
	}
	for env, want := range map[string]string{
		"HF_TOKEN=a HUGGING_FACE_HUB_TOKEN=b":           "a",
		"HUGGING_FACE_HUB_TOKEN=b":                      "b",
		"HF_TOKEN_PATH=" + filepath.Join(home, "token"): "hf_from_file",
		"HF_TOKEN=a HF_HUB_DISABLE_IMPLICIT_TOKEN=1":    "",
		"HF_HOME=/nonexistent":                          "",
	} {
		m := map[string]string{"HF_HOME": home}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if cfg, err := HubConfigFromEnv(envMap(m)); err != nil || cfg.Token != want {
			t.Errorf("%s: token %q, %v; want %q", env, cfg.Token, err, want)
		}
	}
	if cfg, _ := HubConfigFromEnv(envMap(map[string]string{"HUGGINGFACE_CO_STAGING": "true"})); cfg.Endpoint != stagingEndpoint {
		t.Errorf("staging: %q", cfg.Endpoint)
	}
	if cfg, _ := HubConfigFromEnv(envMap(map[string]string{"TRANSFORMERS_OFFLINE": "1"})); !cfg.Offline {
		t.Error("TRANSFORMERS_OFFLINE ignored")
	}
	for _, v := range []string{"0", "no", "", "false"} {
		if cfg, _ := HubConfigFromEnv(envMap(map[string]string{"HF_HUB_OFFLINE": v})); cfg.Offline {
			t.Errorf("HF_HUB_OFFLINE=%q is offline", v)
		}
	}
	if _, err := HubConfigFromEnv(envMap(map[string]string{"HF_HUB_ETAG_TIMEOUT": "soon"})); err == nil {
		t.Error("bad timeout accepted")
	}
	if _, err := NewHub(HubConfig{CacheDir: t.TempDir(), Endpoint: "ftp://x"}); err == nil {
		t.Error("ftp endpoint accepted")
	}
	if _, err := NewHub(HubConfig{}); err == nil {
		t.Error("no cache dir accepted")
	}
}

func TestValidateNames(t *testing.T) {
	for _, ok := range []string{"gpt2", "org/name", "sentence-transformers/all-MiniLM-L6-v2", "a_b/c.d-e", "Xenova/whisper-tiny.en"} {
		if err := ValidateRepoID(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a/b/c", "../x", "a/..", "a--b/c", "a/b.git", "-a/b", "a/b-", "a b/c", "a/\x00", "/a", "a/", strings.Repeat("a", 97)} {
		if ValidateRepoID(bad) == nil {
			t.Errorf("repo id %q accepted", bad)
		}
	}
	for _, ok := range []string{"main", "v1.0", "refs/pr/1", "refs/convert/onnx", "0123456789abcdef0123456789abcdef01234567"} {
		if err := ValidateRevision(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "..", "../x", "a/../b", "/main", "main/", "a//b", ".hidden", "a\x00", "a b", `a\b`, "x.lock", "a:b"} {
		if ValidateRevision(bad) == nil {
			t.Errorf("revision %q accepted", bad)
		}
	}
	for _, ok := range []string{"config.json", "onnx/model.onnx", "1_Pooling/config.json", "a b.txt", ".gitattributes"} {
		if err := ValidateRepoPath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a/", `a\b`, "a\x00b", ".", ".."} {
		if ValidateRepoPath(bad) == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}
