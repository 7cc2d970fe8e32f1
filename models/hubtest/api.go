package hubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

type apiSibling struct {
	RFilename string  `json:"rfilename"`
	Size      *int    `json:"size,omitempty"`
	BlobID    string  `json:"blobId,omitempty"`
	LFS       *apiLFS `json:"lfs,omitempty"`
}

type apiLFS struct {
	SHA256      string `json:"sha256"`
	Size        int    `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

type apiTreeEntry struct {
	Type string      `json:"type"`
	OID  string      `json:"oid"`
	Size int         `json:"size"`
	Path string      `json:"path"`
	LFS  *apiTreeLFS `json:"lfs,omitempty"`
}

type apiTreeLFS struct {
	OID         string `json:"oid"`
	Size        int    `json:"size"`
	PointerSize int    `json:"pointerSize"`
}

// serveAPI answers /api/models/{id}, …/revision/{rev} and …/tree/{rev}[/{path}].
func (h *Hub) serveAPI(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "", "Method not allowed")
		return
	}
	id, kind, arg := rest, "info", ""
	for _, k := range []string{"/revision/", "/tree/"} {
		if i := strings.Index(rest, k); i > 0 {
			id, kind, arg = rest[:i], strings.Trim(k, "/"), rest[i+len(k):]
			break
		}
	}
	rev := "main"
	var sub string
	switch kind {
	case "revision":
		v, err := url.PathUnescape(arg)
		if err != nil {
			writeError(w, http.StatusBadRequest, "", "Bad revision")
			return
		}
		rev = v
	case "tree":
		escRev, escPath, _ := strings.Cut(arg, "/")
		v, err1 := url.PathUnescape(escRev)
		p, err2 := url.PathUnescape(escPath)
		if err1 != nil || err2 != nil {
			writeError(w, http.StatusBadRequest, "", "Bad revision")
			return
		}
		rev, sub = v, strings.Trim(p, "/")
	}
	rp, c, to := h.lookup(id, rev)
	if to != "" {
		loc := "/api/models/" + to + strings.TrimPrefix(rest, id)
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	if !h.access(w, r, rp, id) {
		return
	}
	if c == nil {
		writeError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
		return
	}
	h.mu.Lock()
	f := h.faults
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if kind == "tree" {
		h.serveTree(w, r, rp, c, sub, f.PageSize)
		return
	}
	blobs := r.URL.Query().Get("blobs") == "true" && !f.OmitBlobs
	paths := sortedFiles(c)
	sib := make([]apiSibling, 0, len(paths))
	for _, p := range paths {
		fl := c.files[p]
		s := apiSibling{RFilename: p}
		if blobs {
			n := len(fl.data)
			s.Size, s.BlobID = &n, fl.gitSHA1
			if fl.lfs {
				s.BlobID = fl.pointer
				s.LFS = &apiLFS{SHA256: fl.sha256, Size: n, PointerSize: 134}
			}
		}
		sib = append(sib, s)
	}
	info := map[string]any{
		"_id": "hubtest-" + c.id[:12], "id": rp.id, "modelId": rp.id, "sha": c.id,
		"private": rp.opts.Private, "gated": rp.opts.Gated, "disabled": false,
		"library_name": "transformers", "tags": []string{"onnx"}, "siblings": sib,
		"lastModified": "2025-01-01T00:00:00.000Z", "downloads": 0, "likes": 0,
	}
	if readme := c.files["README.md"]; readme != nil {
		if tag := frontMatter(string(readme.data), "pipeline_tag"); tag != "" {
			info["pipeline_tag"] = tag
		}
	}
	_ = json.NewEncoder(w).Encode(info)
}

func sortedFiles(c *commit) []string {
	paths := make([]string, 0, len(c.files))
	for p := range c.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	return paths
}

// serveTree lists files and directories under sub, recursively if asked, paginated with a
// Link: <…&cursor=N>; rel="next" header like the Hub.
func (h *Hub) serveTree(w http.ResponseWriter, r *http.Request, rp *repo, c *commit, sub string, pageSize int) {
	if pageSize <= 0 {
		pageSize = 1000
	}
	recursive := r.URL.Query().Get("recursive") == "true"
	prefix := ""
	if sub != "" {
		prefix = sub + "/"
	}
	dirs := map[string]bool{}
	var entries []apiTreeEntry
	for _, p := range sortedFiles(c) {
		rel, ok := strings.CutPrefix(p, prefix)
		if !ok {
			continue
		}
		parts := strings.Split(rel, "/")
		for i := 1; i < len(parts); i++ { // the directories on the way
			d := prefix + strings.Join(parts[:i], "/")
			if !dirs[d] && (recursive || i == 1) {
				dirs[d] = true
				entries = append(entries, apiTreeEntry{Type: "directory", OID: GitBlobSHA1([]byte(d)), Path: d})
			}
		}
		if !recursive && len(parts) > 1 {
			continue
		}
		fl := c.files[p]
		e := apiTreeEntry{Type: "file", OID: fl.gitSHA1, Size: len(fl.data), Path: p}
		if fl.lfs {
			e.OID = fl.pointer
			e.LFS = &apiTreeLFS{OID: fl.sha256, Size: len(fl.data), PointerSize: 134}
		}
		entries = append(entries, e)
	}
	if sub != "" && len(entries) == 0 {
		writeError(w, http.StatusNotFound, "EntryNotFound", "Entry not found")
		return
	}
	cursor, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	cursor = max(0, min(cursor, len(entries)))
	end := min(cursor+pageSize, len(entries))
	if end < len(entries) {
		q := r.URL.Query()
		q.Set("cursor", strconv.Itoa(end))
		w.Header().Set("Link", fmt.Sprintf(`<%s%s?%s>; rel="next"`, h.URL, r.URL.EscapedPath(), q.Encode()))
	}
	_ = json.NewEncoder(w).Encode(entries[cursor:end])
}

// frontMatter returns a top-level key of a README's YAML front matter.
func frontMatter(doc, key string) string {
	if !strings.HasPrefix(doc, "---") {
		return ""
	}
	for _, line := range strings.Split(doc, "\n")[1:] {
		line = strings.TrimRight(line, "\r")
		if line == "---" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return ""
}
