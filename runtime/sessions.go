package runtime

import (
	"bufio"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
)

// SessionsPerWorker asks for one session per scheduler worker, as many as memory allows
// (SessionCount). On the CPU two runs that share one session also share its memory arena,
// and each slows the other: two callers of one session run 10–15 % slower than two callers of
// two sessions (bench/RESULTS.md, bench/cmd/runexp). A session costs its weights once more
// when they are stored inside the graph file; weights in external data files are mapped
// from the file and shared.
const SessionsPerWorker = -1

// SessionCount resolves a requested session count for workers running the graph at path.
// A positive request is kept. SessionsPerWorker gives one per worker, capped so that the
// extra sessions' estimated memory (the graph's files, once per extra session) stays within
// a quarter of the machine's memory. Anything else gives 1.
func SessionCount(requested, workers int, graphPath string) int {
	if requested > 0 {
		return requested
	}
	if requested != SessionsPerWorker || workers <= 1 {
		return 1
	}
	per := graphBytes(graphPath)
	budget := memTotal() / 4
	if per <= 0 || budget <= 0 {
		return workers
	}
	return int(min(int64(workers), 1+budget/per))
}

// DefaultSoloThreads is the solo session's thread count (sched.Config.Solo) when none is
// asked for, with workers' sessions of threads each: a thread per CPU when they have fewer,
// else 1 (no solo session).
func DefaultSoloThreads(threads int) int {
	if n := goruntime.NumCPU(); n > threads {
		return n
	}
	return 1
}

// graphBytes is the size of the graph file and of the external data files beside it named
// after it (model.onnx.data, model.onnx_data): what one more session may copy.
func graphBytes(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	total := st.Size()
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return total
	}
	for _, e := range entries {
		name := e.Name()
		if name == base || !strings.HasPrefix(name, base) || e.IsDir() {
			continue
		}
		if info, err := e.Info(); err == nil {
			total += info.Size()
		}
	}
	return total
}

// memTotal returns MemTotal from /proc/meminfo in bytes (0 when unknown).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
