// Package dockerlint parses Dockerfiles and checks the rules of hadolint that matter for
// Infergo's images, plus the images' contract (non-root user, /data volume, health check, port
// 8000, the shared build script). hadolint is not packaged for Debian 12 and no Docker engine
// runs on the development machines, so this is how `make test` keeps the Dockerfiles honest.
package dockerlint

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Instruction is one Dockerfile instruction with its continuation lines joined.
type Instruction struct {
	Cmd  string // upper case: FROM, RUN, …
	Args string // the rest, continuations joined by spaces
	Line int    // first line, 1-based
}

// Stage is one FROM and the instructions under it.
type Stage struct {
	From         Instruction
	Image, Alias string
	Instructions []Instruction
}

// Parse reads a Dockerfile. Comments and blank lines are dropped; a trailing backslash joins
// the next line (comment lines inside a continuation are skipped, as Docker does).
func Parse(r io.Reader) ([]Stage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var stages []Stage
	var cur strings.Builder
	start, n := 0, 0
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := Instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: start}
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			var s Stage
			s.From = in
			for i := 0; i < len(f); i++ {
				if strings.HasPrefix(f[i], "--") {
					continue
				}
				if s.Image == "" {
					s.Image = f[i]
				} else if strings.EqualFold(f[i], "AS") && i+1 < len(f) {
					s.Alias = f[i+1]
					break
				}
			}
			stages = append(stages, s)
			return nil
		}
		if len(stages) == 0 {
			if in.Cmd == "ARG" {
				return nil
			}
			return fmt.Errorf("line %d: %s before FROM", in.Line, in.Cmd)
		}
		stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
		return nil
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return stages, nil
}

// Find returns the stage's instructions named cmd.
func (s Stage) Find(cmd string) []Instruction {
	var out []Instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// Env returns the stage's ENV settings (KEY=VALUE form, quotes removed).
func (s Stage) Env() map[string]string {
	m := map[string]string{}
	for _, in := range s.Find("ENV") {
		for _, f := range strings.Fields(in.Args) {
			if k, v, ok := strings.Cut(f, "="); ok {
				m[k] = strings.Trim(v, `"'`)
			}
		}
	}
	return m
}

// ExecForm decodes a JSON-array (exec form) argument, or returns nil.
func ExecForm(args string) []string {
	var v []string
	if json.Unmarshal([]byte(args), &v) != nil {
		return nil
	}
	return v
}

var (
	pinnedTag = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?$`)
	aptGet    = regexp.MustCompile(`apt-get\s+(-\S+\s+)*install\b`)
)

// Lint applies the hadolint rules that matter here and returns one message per violation:
// DL3006/DL3007 (base images pinned, never latest), DL3020/DL3021-ish (no ADD, so no remote
// URLs), DL3008-ish/DL3015 (apt-get install -y --no-install-recommends), DL3009 (apt lists
// removed in the same RUN), DL3004 (no sudo), DL3000 (absolute WORKDIR), DL3003 (no cd in RUN;
// use WORKDIR), DL3025 (exec form for ENTRYPOINT/CMD), DL3002 (last USER not root).
func Lint(stages []Stage) []string {
	var problems []string
	bad := func(in Instruction, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("line %d: %s: %s", in.Line, in.Cmd, fmt.Sprintf(format, args...)))
	}
	aliases := map[string]bool{}
	for _, s := range stages {
		switch {
		case aliases[s.Image]:
		case !pinnedTag.MatchString(s.Image) || !strings.ContainsAny(s.Image, ":@"):
			bad(s.From, "base image %q is not pinned to a tag or digest", s.Image)
		case strings.HasSuffix(s.Image, ":latest"):
			bad(s.From, "base image %q uses latest", s.Image)
		}
		if s.Alias != "" {
			aliases[s.Alias] = true
		}
		for _, in := range s.Instructions {
			switch in.Cmd {
			case "ADD":
				bad(in, "use COPY (ADD fetches URLs and unpacks archives implicitly)")
			case "WORKDIR":
				if !strings.HasPrefix(in.Args, "/") && !strings.HasPrefix(in.Args, "$") {
					bad(in, "relative WORKDIR %q", in.Args)
				}
			case "ENTRYPOINT", "CMD":
				if ExecForm(in.Args) == nil {
					bad(in, "use the exec (JSON array) form")
				}
			case "RUN":
				lintRun(in, bad)
			}
		}
	}
	last := stages[len(stages)-1]
	users := last.Find("USER")
	if len(users) == 0 {
		bad(last.From, "the final stage runs as root: add a USER")
	} else if u := strings.Split(users[len(users)-1].Args, ":")[0]; u == "root" || u == "0" {
		bad(users[len(users)-1], "the final stage runs as root")
	}
	return problems
}

func lintRun(in Instruction, bad func(Instruction, string, ...any)) {
	for _, cmd := range regexp.MustCompile(`&&|;|\|\|`).Split(in.Args, -1) {
		f := strings.Fields(cmd)
		if len(f) > 0 && f[0] == "sudo" {
			bad(in, "sudo in RUN")
		}
		if len(f) > 0 && f[0] == "cd" {
			bad(in, "cd in RUN: use WORKDIR")
		}
	}
	if aptGet.MatchString(in.Args) {
		if !regexp.MustCompile(`apt-get\s+update`).MatchString(in.Args) {
			bad(in, "apt-get install without apt-get update in the same RUN")
		}
		if !strings.Contains(in.Args, "--no-install-recommends") {
			bad(in, "apt-get install without --no-install-recommends")
		}
		if !regexp.MustCompile(`install\s+(\S+\s+)*-y\b|install\s+-\S*y`).MatchString(in.Args) && !strings.Contains(in.Args, "-y ") {
			bad(in, "apt-get install without -y")
		}
		if !strings.Contains(in.Args, "rm -rf /var/lib/apt/lists") {
			bad(in, "apt lists not removed in the same RUN (rm -rf /var/lib/apt/lists/*)")
		}
	}
}
