#!/usr/bin/env bash
# gpu-run.sh KIT: runs on the lent GPU machine, from the repository root (its testdata/ is
# used), after the calls that scripts/gpu-pack.sh prints have copied every .gpu/cN/* into KIT
# (default /tmp/ig; the kit carries a copy of this script). It
# reassembles the CUDA provider, then runs: the GPU test suite (parity with the
# sentence-transformers goldens and the server's acceptance suite on CUDA), a smoke test of
# `infergo serve --device cuda`, the Go benchmark (bench/gpu) and the PyTorch reference
# (bench/gpu/torch_bench.py) in the same run, and writes logs, results.json and results.md to
# $OUT. Each step's failure is recorded and the next still runs; the steps' time limits add up
# to under 9 minutes, inside one device call (pass timeout_s 590). GPU_RUN_BENCH=0 stops after
# the tests (a parity check of a new commit, about a minute of device time).
set -uo pipefail
KIT=$(realpath "${1:-/tmp/ig}")
# Helper scripts travel with the kit; a checkout's own copies serve when run from one.
HERE=$(dirname "$(realpath "$0")")
PY=$HERE
[ -f "$PY/torch_bench.py" ] || PY=$(pwd)/bench/gpu
OUT=${OUT:-$KIT/out}
ROOT=$(pwd)
mkdir -p "$OUT"
# The step log goes into results.md (at most 8 files come back from $OUT).
log() { echo "gpu-run: $*" | tee -a "$KIT/summary.txt" >&2; }
rm -f "$KIT/summary.txt"
t0=$(date +%s)

unxz_to() { # file.xz dest
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"), 1<<24)' "$1" "$2"; fi
}

cd "$KIT" || exit 1
if [ ! -f lib/libonnxruntime_providers_cuda.so ]; then
  cat cuda.xz.[0-9][0-9] >cuda.xz
  want_xz=$(sed -n 1p cuda.xz.sha256) want_so=$(sed -n 2p cuda.xz.sha256)
  [ "$(sha256sum cuda.xz | cut -d' ' -f1)" = "$want_xz" ] || { log "FATAL: reassembled provider checksum mismatch (a carry is missing?)"; ls -l >&2; exit 1; }
  if command -v xz >/dev/null; then xz -dc kit.tar.xz | tar -xf -; else python3 -c 'import tarfile,sys; tarfile.open(sys.argv[1]).extractall(".")' kit.tar.xz; fi
  unxz_to cuda.xz lib/libonnxruntime_providers_cuda.so
  [ "$(sha256sum lib/libonnxruntime_providers_cuda.so | cut -d' ' -f1)" = "$want_so" ] || { log "FATAL: provider checksum mismatch after xz -d"; exit 1; }
  rm -f cuda.xz cuda.xz.[0-9][0-9]
fi
cd "$ROOT"

# Libraries: the kit, the CUDA 13 toolkit, the system, and (for cuDNN 9 / cuBLAS if the system
# lacks them) the nvidia-* wheels of the machine's PyTorch.
LIBS="$KIT/lib:/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/local/cuda/lib64:/usr/lib/x86_64-linux-gnu"
for d in $(python3 -c 'import glob,site,os; [print(p) for s in site.getsitepackages() for p in sorted(glob.glob(os.path.join(s,"nvidia","*","lib")))]' 2>/dev/null); do
  LIBS="$LIBS:$d"
done
# PyTorch runs with the machine's own library path: it bundles a newer cuDNN than the system's.
TORCH_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export INFERGO_ORT_LIB=$KIT/lib/libonnxruntime.so.1 INFERGO_CUDA_PROVIDER=$KIT/lib INFERGO_REPO_ROOT=$ROOT

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  nproc
  LD_LIBRARY_PATH=$TORCH_LD_LIBRARY_PATH python3 -c 'import torch,transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "transformers", transformers.__version__)'
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "--- ldd of the CUDA provider (missing libraries show as 'not found'):"
  ldd "$KIT/lib/libonnxruntime_providers_cuda.so"
  for l in libcudnn.so.9 libcublasLt.so.13 libcudart.so.13; do
    printf '%s: ' $l
    python3 -c 'import ctypes,sys; ctypes.CDLL(sys.argv[1]); print("loads")' $l 2>&1 | tail -1
  done
} >"$OUT/env.txt" 2>&1
log "environment in env.txt ($(($(date +%s) - t0)) s)"

# 1. GPU test suite.
INFERGO_GPU_TESTS=1 timeout 120 "$KIT/bin/gputest" -test.v -test.count=1 -test.timeout 115s >"$OUT/gputest.log" 2>&1
log "GPU test suite: exit $? ($(grep -c '^--- PASS' "$OUT/gputest.log") PASS, $(grep -c '^--- FAIL' "$OUT/gputest.log") FAIL; $(($(date +%s) - t0)) s)"

# 2. infergo serve --device cuda, through the real command line.
SMOKE=$(mktemp -d) && cp -r "$ROOT/testdata/fixtures/tiny-bert-embeddings" "$SMOKE/m"
"$KIT/bin/infergo" serve --device cuda --model "$SMOKE/m" --addr 127.0.0.1:18000 >"$OUT/smoke.log" 2>&1 &
pid=$!
ok=0
for _ in $(seq 1 80); do
  kill -0 $pid 2>/dev/null || break
  if "$KIT/bin/infergo" healthcheck --url http://127.0.0.1:18000/health 2>/dev/null; then ok=1; break; fi
  sleep 0.5
done
python3 - >>"$OUT/smoke.log" 2>&1 <<'PY'
import json, urllib.request
u = "http://127.0.0.1:18000"
print("info:", urllib.request.urlopen(u + "/info").read().decode())
r = urllib.request.urlopen(urllib.request.Request(u + "/embed", data=json.dumps({"inputs": ["Hello world", "A man is eating food."]}).encode(), headers={"Content-Type": "application/json"}))
v = json.loads(r.read())
print("embed:", len(v), "vectors of", len(v[0]), "x-compute-type:", r.headers.get("x-compute-type"))
PY
kill -TERM $pid 2>/dev/null; wait $pid
log "serve --device cuda smoke test: healthy=$ok, exit $? after SIGTERM ($(($(date +%s) - t0)) s)"

if [ "${GPU_RUN_BENCH:-1}" = 0 ]; then
  log "benchmarks skipped (GPU_RUN_BENCH=0)"
  cp "$KIT/summary.txt" "$OUT/summary.txt"
  exit 0
fi

# 3. Go benchmark, then 4. PyTorch on the same GPU.
mkdir -p "$KIT/prof"
timeout 240 "$KIT/bin/bench-gpu" -root "$ROOT" -model /tmp/infergo-benchmodel -out "$KIT/go-bench.json" -profile "$KIT/prof" >"$OUT/go-bench.log" 2>&1
log "Go benchmark: exit $? ($(($(date +%s) - t0)) s)"
LD_LIBRARY_PATH=$TORCH_LD_LIBRARY_PATH PYTHONUNBUFFERED=1 timeout 120 python3 "$PY/torch_bench.py" --out "$KIT/torch-bench.json" >"$OUT/torch.log" 2>&1
log "PyTorch benchmark: exit $? ($(($(date +%s) - t0)) s)"
log "done in $(($(date +%s) - t0)) s"
python3 "$PY/report.py" "$OUT/results.json" "$OUT/results.md" "$KIT/go-bench.json" "$KIT/torch-bench.json" --profiles "$KIT/prof" --notes "$KIT/summary.txt"
