package dockerlint

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/infergo/infergo/internal/testutil"
)

func parseFile(t *testing.T, name string) []Stage {
	t.Helper()
	f, err := os.Open(filepath.Join(testutil.Root(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages, err := Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stages
}

// TestDockerfiles lints both images and checks their shared contract.
func TestDockerfiles(t *testing.T) {
	for _, c := range []struct {
		file, base string
		env        map[string]string
		deps       string
	}{
		{"Dockerfile", `^debian:bookworm-slim$`, nil, "make deps"},
		{"Dockerfile.gpu", `^nvidia/cuda:13\.0\.\d+-cudnn-runtime-ubuntu24\.04$`, map[string]string{"INFERGO_DEVICE": "cuda", "INFERGO_CUDA_PROVIDER": "/opt/infergo/lib"}, "make deps-gpu"},
	} {
		t.Run(c.file, func(t *testing.T) {
			stages := parseFile(t, c.file)
			for _, p := range Lint(stages) {
				t.Error(p)
			}
			if len(stages) < 2 {
				t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
			}
			final := stages[len(stages)-1]
			if !regexp.MustCompile(c.base).MatchString(final.Image) {
				t.Errorf("final base %q, want %s", final.Image, c.base)
			}
			env := final.Env()
			want := map[string]string{"HF_HUB_CACHE": "/data", "INFERGO_DATA_DIR": "/data/infergo", "PORT": "8000", "INFERGO_ORT_LIB": "/opt/infergo/lib/libonnxruntime.so.1"}
			for k, v := range c.env {
				want[k] = v
			}
			for k, v := range want {
				if env[k] != v {
					t.Errorf("ENV %s=%q, want %q", k, env[k], v)
				}
			}
			if v := final.Find("VOLUME"); len(v) != 1 || !strings.Contains(v[0].Args, "/data") {
				t.Errorf("VOLUME %v, want /data", v)
			}
			if e := final.Find("EXPOSE"); len(e) != 1 || !slices.Contains(strings.Fields(e[0].Args), "8000") || !slices.Contains(strings.Fields(e[0].Args), "8443") {
				t.Errorf("EXPOSE %v, want 8000 and 8443", e)
			}
			hc := final.Find("HEALTHCHECK")
			if len(hc) != 1 || !strings.Contains(hc[0].Args, `CMD ["infergo", "healthcheck"]`) {
				t.Errorf("HEALTHCHECK %v", hc)
			}
			if ep := final.Find("ENTRYPOINT"); len(ep) != 1 || !slices.Equal(ExecForm(ep[0].Args), []string{"infergo", "serve"}) {
				t.Errorf("ENTRYPOINT %v", ep)
			}
			users := final.Find("USER")
			if len(users) != 1 || users[0].Args != "infergo" {
				t.Errorf("USER %v", users)
			}
			// The builder builds with the shared script, after fetching ONNX Runtime the
			// Makefile's way.
			build := ""
			for _, s := range stages[:len(stages)-1] {
				for _, in := range s.Find("RUN") {
					build += in.Args + "\n"
				}
			}
			if !strings.Contains(build, "scripts/build-release.sh") || !strings.Contains(build, c.deps) {
				t.Errorf("builder does not run %q and scripts/build-release.sh:\n%s", c.deps, build)
			}
		})
	}
}

func TestLintCatchesProblems(t *testing.T) {
	src := `FROM golang AS b
RUN cd /x && make
FROM b
FROM ubuntu:latest
ADD https://example.com/x.tgz /x
WORKDIR app
RUN apt-get install curl
RUN sudo apt-get update && apt-get install -y --no-install-recommends \
    curl
CMD infergo serve
USER root
`
	stages, err := Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(Lint(stages), "\n")
	for _, want := range []string{
		`line 1: FROM: base image "golang" is not pinned`,
		"line 2: RUN: cd in RUN",
		`base image "ubuntu:latest" uses latest`,
		"line 5: ADD: use COPY",
		`relative WORKDIR "app"`,
		"line 7: RUN: apt-get install without apt-get update",
		"line 7: RUN: apt-get install without --no-install-recommends",
		"line 7: RUN: apt-get install without -y",
		"line 8: RUN: sudo in RUN",
		"line 8: RUN: apt lists not removed",
		"line 10: CMD: use the exec",
		"line 11: USER: the final stage runs as root",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "line 3:") {
		t.Errorf("a stage alias was treated as an unpinned image:\n%s", got)
	}
}

// TestBuildReleaseScript builds the binary exactly as the Dockerfiles' builder stage does and
// checks it: it links against libc alone (ONNX Runtime is dlopened, so the same binary runs in
// both images), it reports the version it was given, and it has the healthcheck command the
// images' HEALTHCHECK runs.
func TestBuildReleaseScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	out := filepath.Join(t.TempDir(), "infergo")
	cmd := exec.Command(filepath.Join(testutil.Root(), "scripts", "build-release.sh"), out)
	cmd.Env = append(os.Environ(), "VERSION=test-1.2.3")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build-release.sh: %v\n%s", err, b)
	}
	if b, err := exec.Command(out, "version").Output(); err != nil || strings.TrimSpace(string(b)) != "infergo test-1.2.3" {
		t.Errorf("version: %q %v", b, err)
	}
	if b, err := exec.Command(out, "healthcheck", "--help").CombinedOutput(); err != nil || !strings.Contains(string(b), "--url") {
		t.Errorf("healthcheck --help: %v\n%s", err, b)
	}
	b, err := exec.Command("readelf", "-d", out).Output()
	if err != nil {
		t.Skipf("readelf: %v", err)
	}
	for _, m := range regexp.MustCompile(`\(NEEDED\)\s+Shared library: \[([^\]]+)\]`).FindAllStringSubmatch(string(b), -1) {
		if !regexp.MustCompile(`^(libc|libdl|libpthread|libm|libresolv)\.so\.\d+$`).MatchString(m[1]) {
			t.Errorf("the binary links against %s", m[1])
		}
	}
}
