#!/usr/bin/env bash
# fuzz-all.sh BUDGET: runs every `func FuzzX` in the module for BUDGET each (one at a time, since
# `go test -fuzz` takes one target per package run). BUDGET is a -fuzztime value: prefer a count
# such as 20000x (see the Makefile for why); 0 skips fuzzing.
set -euo pipefail
dur=${1:-20000x}
[ "$dur" = "0" ] && exit 0
cd "$(dirname "$0")/.."
status=0
while IFS=: read -r file name; do
  pkg=./$(dirname "$file")
  echo "fuzz: $pkg $name ($dur)"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$dur" "$pkg"; then
    status=1
  fi
done < <(grep -rHo --include='*_test.go' -E '^func (Fuzz[A-Za-z0-9_]+)' . | grep -v '^./.deps' | sed -E 's/func //' | sort)
exit $status
