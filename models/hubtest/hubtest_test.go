package hubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirect().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestProtocol checks the wire protocol the Hub client relies on.
func TestProtocol(t *testing.T) {
	h := Start(t)
	commit := h.AddRepo("org/m", map[string][]byte{
		"config.json":     []byte(`{"a":1}`),
		"onnx/model.onnx": []byte("graph-bytes"),
		"README.md":       []byte("---\npipeline_tag: fill-mask\n---\n"),
	}, RepoOptions{})

	resp, body := do(t, "HEAD", h.URL+"/org/m/resolve/main/config.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("X-Repo-Commit") != commit ||
		resp.Header.Get("ETag") != `"`+GitBlobSHA1([]byte(`{"a":1}`))+`"` || resp.ContentLength != 7 || body != "" {
		t.Errorf("HEAD small file: %d %v", resp.StatusCode, resp.Header)
	}
	fi, _ := h.File("org/m", "main", "onnx/model.onnx")
	resp, _ = do(t, "HEAD", h.URL+"/org/m/resolve/main/onnx/model.onnx", nil)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != 302 || !strings.HasPrefix(loc, h.CDNURL+"/") || resp.Header.Get("X-Linked-Etag") != `"`+fi.SHA256+`"` ||
		resp.Header.Get("X-Linked-Size") != "11" || !fi.LFS {
		t.Errorf("HEAD LFS file: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = do(t, "GET", loc, map[string]string{"Range": "bytes=6-"})
	if resp.StatusCode != 206 || body != "bytes" || resp.Header.Get("Content-Range") != "bytes 6-10/11" {
		t.Errorf("range: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ = do(t, "GET", loc, map[string]string{"Authorization": "Bearer x"}); resp.StatusCode != 400 {
		t.Errorf("CDN with auth: %d", resp.StatusCode)
	}
	if resp, _ = do(t, "GET", loc, map[string]string{"Range": "bytes=99-"}); resp.StatusCode != 416 {
		t.Errorf("bad range: %d", resp.StatusCode)
	}
	resp, _ = do(t, "GET", h.URL+"/org/m/resolve/main/missing.txt", nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Error-Code") != "EntryNotFound" || resp.Header.Get("X-Repo-Commit") != commit {
		t.Errorf("missing file: %d %v", resp.StatusCode, resp.Header)
	}

	var info struct {
		SHA         string `json:"sha"`
		PipelineTag string `json:"pipeline_tag"`
		Siblings    []struct {
			RFilename string                   `json:"rfilename"`
			LFS       *struct{ SHA256 string } `json:"lfs"`
		} `json:"siblings"`
	}
	_, body = do(t, "GET", h.URL+"/api/models/org/m/revision/main?blobs=true", nil)
	if err := json.Unmarshal([]byte(body), &info); err != nil || info.SHA != commit || len(info.Siblings) != 3 || info.PipelineTag != "fill-mask" {
		t.Errorf("info: %v %+v", err, info)
	}

	second := h.Push("org/m", "main", map[string][]byte{"config.json": []byte(`{"a":2}`), "README.md": nil})
	if h.Ref("org/m", "main") != second || second == commit {
		t.Error("push did not move main")
	}
	if _, ok := h.File("org/m", second, "README.md"); ok {
		t.Error("deleted file still there")
	}
	if _, ok := h.File("org/m", commit, "README.md"); !ok {
		t.Error("old commit changed")
	}

	h.SetFaults(Faults{PageSize: 2})
	var entries []map[string]any
	resp, body = do(t, "GET", h.URL+"/api/models/org/m/tree/"+second+"?recursive=true", nil)
	json.Unmarshal([]byte(body), &entries)
	if len(entries) != 2 || !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
		t.Errorf("tree page: %q %v", body, resp.Header)
	}

	h.AddRepo("org/private", map[string][]byte{"a": []byte("x")}, RepoOptions{Private: true, Token: "tok"})
	if resp, _ = do(t, "HEAD", h.URL+"/org/private/resolve/main/a", nil); resp.StatusCode != 401 || resp.Header.Get("X-Error-Code") != "RepoNotFound" {
		t.Errorf("private anonymous: %d", resp.StatusCode)
	}
	if resp, _ = do(t, "HEAD", h.URL+"/org/private/resolve/main/a", map[string]string{"Authorization": "Bearer tok"}); resp.StatusCode != 200 {
		t.Errorf("private with token: %d", resp.StatusCode)
	}
	if resp, _ = do(t, "HEAD", h.URL+"/org/m/resolve/main/config.json", map[string]string{"Authorization": "Bearer bad"}); resp.StatusCode != 401 {
		t.Errorf("invalid token: %d", resp.StatusCode)
	}
	if n := h.RequestCount(); n == 0 || h.Requests()[0].Method != "HEAD" {
		t.Errorf("request log: %v", h.Requests())
	}
}
