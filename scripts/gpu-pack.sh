#!/usr/bin/env bash
# gpu-pack.sh: prepares what the lent GPU machine needs (it has no Go and no network, and each
# `run` call carries at most 64 MiB, the working tree included) under .gpu/ (git-ignored):
#   kit.tar.xz  bin/{gputest,bench-gpu,infergo} (built here, CGO, linked against libc alone)
#               lib/{libonnxruntime.so.1, libonnxruntime_providers_shared.so} (make deps-gpu)
#   cuda.xz.*   libonnxruntime_providers_cuda.so, xz-compressed and split to fill the calls
#   gpu-run.sh, torch_bench.py, report.py (so the kit runs whatever the checkout's version)
# spread over .gpu/c1, .gpu/c2, … so that each call stays under the limit, and prints the exact
# sequence of device `run` calls. gpu-run.sh (on the device) reassembles and runs it all.
# A call sends the checkout of the session that makes it: GPU_PACK_REPO names that checkout
# when it is not this one (a helper's worktree); .gpu/ must be ignored there.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
REPO=$(realpath "${GPU_PACK_REPO:-$PWD}")
LIMIT=$((64 * 1024 * 1024))
MARGIN=$((2 * 1024 * 1024)) # room for the checkout to grow a little between packing and running
STAGE=.gpu/stage
make -s deps-gpu
rm -rf "$REPO"/.gpu/c* "$STAGE"
mkdir -p "$STAGE/bin" "$STAGE/lib"

echo "gpu-pack: building the binaries" >&2
export CGO_ENABLED=1
go test -c -trimpath -ldflags "-s -w" -o "$STAGE/bin/gputest" ./cuda/gputest
go build -trimpath -ldflags "-s -w" -o "$STAGE/bin/bench-gpu" ./bench/gpu
VERSION=$(git describe --tags --always --dirty 2>/dev/null || echo dev) scripts/build-release.sh "$STAGE/bin/infergo"
cp .deps/onnxruntime/libonnxruntime.so.1 .deps/onnxruntime/libonnxruntime_providers_shared.so "$STAGE/lib/"
tar -C "$STAGE" -cf - bin lib | xz -T0 -6 >.gpu/kit.tar.xz

# The provider compresses once (xz -9, a few minutes) and is cached by its checksum.
sum=$(sha256sum .deps/cuda/libonnxruntime_providers_cuda.so | cut -c1-16)
if [ ! -f ".gpu/cuda-$sum.xz" ]; then
  echo "gpu-pack: compressing the CUDA provider (xz -9, takes minutes)" >&2
  rm -f .gpu/cuda-*.xz
  xz -T0 -9 -k -c .deps/cuda/libonnxruntime_providers_cuda.so >".gpu/cuda-$sum.xz.tmp"
  mv ".gpu/cuda-$sum.xz.tmp" ".gpu/cuda-$sum.xz"
fi

# Per call: the limit less the working tree that travels with every call.
git -C "$REPO" check-ignore -q .gpu/c1 || { echo "gpu-pack: .gpu/ is not ignored in $REPO (add /.gpu/ to .git/info/exclude)" >&2; exit 1; }
tree=$(cd "$REPO" && { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s+0}')
cp scripts/gpu-run.sh bench/gpu/torch_bench.py bench/gpu/report.py .gpu/
kit=$(( $(stat -c %s .gpu/kit.tar.xz) + $(cat .gpu/gpu-run.sh .gpu/torch_bench.py .gpu/report.py | wc -c) ))
budget=$((LIMIT - tree - MARGIN))
[ "$budget" -gt "$kit" ] || { echo "gpu-pack: the kit ($kit B) does not fit beside the tree ($tree B)" >&2; exit 1; }
# The first call carries the kit and the provider's first piece; the others, one piece each.
first=$((budget - kit))
C="$REPO/.gpu"
mkdir -p "$C/c1"
mv .gpu/kit.tar.xz .gpu/gpu-run.sh .gpu/torch_bench.py .gpu/report.py "$C/c1/"
head -c "$first" ".gpu/cuda-$sum.xz" >"$C/c1/cuda.xz.00"
total=$(stat -c %s ".gpu/cuda-$sum.xz")
off=$first n=1
while [ "$off" -lt "$total" ]; do
  n=$((n + 1))
  mkdir -p "$C/c$n"
  dd if=".gpu/cuda-$sum.xz" of="$C/c$n/cuda.xz.$(printf %02d $((n - 1)))" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$budget" status=none
  off=$((off + budget))
done
sha256sum ".gpu/cuda-$sum.xz" | awk '{print $1}' >"$C/c$n/cuda.xz.sha256"
sha256sum .deps/cuda/libonnxruntime_providers_cuda.so | awk '{print $1}' >>"$C/c$n/cuda.xz.sha256"

echo
echo "gpu-pack: in $C; the checkout's tree is $((tree / 1024 / 1024)) MiB per call; $n calls:"
(cd "$REPO" && du -b .gpu/c*/*) | awk '{printf "  %-28s %6.1f MiB\n", $2, $1/1048576}'
echo
echo "Device run plan (issue the calls back to back: the machine goes back after 30 s idle):"
for i in $(seq 1 "$n"); do
  cmd="mkdir -p /tmp/ig && cp .gpu/c$i/* /tmp/ig/ && ls -l /tmp/ig"
  [ "$i" -eq "$n" ] && cmd="mkdir -p /tmp/ig && cp .gpu/c$i/* /tmp/ig/ && bash /tmp/ig/gpu-run.sh /tmp/ig"
  timeout=120
  [ "$i" -eq "$n" ] && timeout=590
  printf '  run %d: carry [".gpu/c%d"]  timeout_s %d\n         command: %s\n' "$i" "$i" "$timeout" "$cmd"
done
