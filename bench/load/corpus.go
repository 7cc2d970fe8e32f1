package load

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// ReadLines returns the non-blank lines of a corpus file, trimmed: one input per line.
func ReadLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load: read %s: %w", path, err)
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("load: %s has no lines", path)
	}
	return lines, nil
}
