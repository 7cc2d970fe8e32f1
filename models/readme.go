package models

import (
	"io"
	"os"
	"strings"
)

func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// frontMatterValue returns a top-level scalar from a README's "---" YAML front matter. Model
// cards only need `key: value` lines here, so this avoids a YAML dependency.
func frontMatterValue(doc, key string) string {
	doc = strings.TrimLeft(doc, "\ufeff")
	if !strings.HasPrefix(doc, "---") {
		return ""
	}
	lines := strings.Split(doc, "\n")
	for _, line := range lines[1:] {
		line = strings.TrimRight(line, "\r")
		if line == "---" || line == "..." {
			break
		}
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != key {
			continue
		}
		v = strings.TrimSpace(v)
		v = strings.Trim(v, `"'`)
		return v
	}
	return ""
}
