package models

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// Names that come from users (repo ids, revisions) or from the Hub (file paths in a listing,
// commit ids, ETags) all end up as paths under the cache root. Each is checked here before it
// touches the filesystem, so none can escape the cache: no "..", no absolute paths, no NUL.

const (
	maxRepoIDLen   = 96 // huggingface_hub validate_repo_id
	maxRevisionLen = 255
	maxRepoPathLen = 1024
)

// ValidateRepoID checks a Hub repo id ("org/name" or "name") with huggingface_hub's rules:
// one or two segments of [A-Za-z0-9_.-] that start and end with a letter, digit or "_",
// no "--" or "..", at most 96 characters.
func ValidateRepoID(id string) error {
	if id == "" {
		return fmt.Errorf("models: empty repo id")
	}
	if len(id) > maxRepoIDLen {
		return fmt.Errorf("models: repo id %.40q… is longer than %d characters", id, maxRepoIDLen)
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return fmt.Errorf("models: repo id %q must not contain \"--\" or \"..\"", id)
	}
	segs := strings.Split(id, "/")
	if len(segs) > 2 {
		return fmt.Errorf("models: repo id %q must be \"name\" or \"namespace/name\"", id)
	}
	for _, s := range segs {
		if s == "" || !isWordByte(s[0]) || !isWordByte(s[len(s)-1]) {
			return fmt.Errorf("models: repo id %q: each part must start and end with a letter, digit or _", id)
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; !isWordByte(c) && c != '-' && c != '.' {
				return fmt.Errorf("models: repo id %q contains %q; allowed are letters, digits, -, _ and .", id, c)
			}
		}
	}
	if strings.HasSuffix(id, ".git") || strings.HasSuffix(id, ".ipynb") {
		return fmt.Errorf("models: repo id %q must not end with .git or .ipynb", id)
	}
	return nil
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// ValidateRevision checks a branch, tag or commit. Revisions become refs/<revision> in the
// cache, so the rules follow git's ref-name rules where they matter for paths: slash-separated
// non-empty parts, none "." or ".." or starting with ".", no control characters, no
// backslash, and none of ~^:?*[ or space.
func ValidateRevision(rev string) error {
	if rev == "" {
		return fmt.Errorf("models: empty revision")
	}
	if len(rev) > maxRevisionLen || !utf8.ValidString(rev) {
		return fmt.Errorf("models: revision %.40q is not a valid git ref name", rev)
	}
	for _, r := range rev {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`\~^:?*[ `, r) {
			return fmt.Errorf("models: revision %q contains %q, which git ref names cannot", rev, r)
		}
	}
	for _, seg := range strings.Split(rev, "/") {
		if seg == "" || strings.HasPrefix(seg, ".") || strings.HasSuffix(seg, ".lock") {
			return fmt.Errorf("models: revision %q is not a valid git ref name", rev)
		}
	}
	return nil
}

// ValidateRepoPath checks a file path from a repo listing (or a user's --onnx-file): a
// clean, relative, slash-separated path of at most 1024 bytes without control characters
// or backslashes, so that snapshots/<commit>/<path> stays inside the snapshot.
func ValidateRepoPath(p string) error {
	if p == "" || len(p) > maxRepoPathLen || !utf8.ValidString(p) {
		return fmt.Errorf("models: invalid repo file path %.60q", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return fmt.Errorf("models: repo file path %q contains %q", p, r)
		}
	}
	if path.Clean(p) != p || !filepath.IsLocal(filepath.FromSlash(p)) || strings.HasPrefix(p, "/") {
		return fmt.Errorf("models: repo file path %q is not a clean relative path", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("models: repo file path %q is not a clean relative path", p)
		}
	}
	return nil
}

// isCommit reports a full git commit id (40 lowercase hex), the only revision form that is
// immutable and therefore safe to serve from the cache without asking the Hub.
func isCommit(s string) bool { return len(s) == 40 && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// normalizeETag strips the weak prefix and quotes (huggingface_hub _normalize_etag).
func normalizeETag(v string) string {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(v, "W/")
	return strings.Trim(v, `"`)
}

// validateETag checks an ETag before it names a blob file: 1–128 bytes of [A-Za-z0-9_.-],
// not starting with ".", so it is one plain file name.
func validateETag(etag string) error {
	if etag == "" || len(etag) > 128 || etag[0] == '.' {
		return fmt.Errorf("models: invalid ETag %.60q", etag)
	}
	for i := 0; i < len(etag); i++ {
		if c := etag[i]; !isWordByte(c) && c != '-' && c != '.' {
			return fmt.Errorf("models: invalid ETag %.60q", etag)
		}
	}
	return nil
}

// repoFolderName is huggingface_hub's repo_folder_name: "models--org--name".
func repoFolderName(repoType, id string) string {
	return repoType + "s--" + strings.ReplaceAll(id, "/", "--")
}
