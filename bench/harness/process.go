package harness

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process is `infergo serve` running as a child process, for the tests that watch the
// server from outside: its memory (RSS) or its answers under overload.
type Process struct {
	URL string
	cmd *exec.Cmd
}

// StartProcess runs bin serve with args on a free loopback port and waits until /health
// answers 200 (the model is loaded and warmed up).
func StartProcess(ctx context.Context, bin string, args ...string) (*Process, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr, "--log-level", "warn"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("harness: start %s: %w", bin, err)
	}
	p := &Process{URL: "http://" + addr, cmd: cmd}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(p.URL + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("harness: %s did not become healthy", bin)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// PID returns the server's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// RSS returns the server's resident set size in bytes (VmRSS of /proc/<pid>/status).
func (p *Process) RSS() (int64, error) { return ReadRSS(p.PID()) }

// Stop sends SIGTERM and waits for the process to exit.
func (p *Process) Stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		return <-done
	}
}

// ReadRSS returns VmRSS of process pid, in bytes.
func ReadRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("harness: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, fmt.Errorf("harness: VmRSS %q: %w", v, err)
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("harness: no VmRSS in /proc/%d/status", pid)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("harness: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CPU returns the CPU time (user + system) the process has used so far.
func (p *Process) CPU() (time.Duration, error) { return ReadCPU(p.PID()) }

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// ReadCPU returns the user + system CPU time of process pid, from /proc/<pid>/stat.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("harness: %w", err)
	}
	// The command name (field 2) may hold spaces; the fields after its closing parenthesis
	// start at field 3, so utime (14) and stime (15) are the 12th and 13th of the rest.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, fmt.Errorf("harness: unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("harness: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// SelfCPU returns the CPU time (user + system) this process has used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
