#!/usr/bin/env bash
# fetch-npm-lib.sh PACKAGE@VERSION PATH_IN_TGZ DEST SHA256 SIZE [PATH_IN_TGZ DEST SHA256 SIZE ...]
# Fetches files out of one npm package tarball (the npm registry is the one place this project's
# native libraries come from), verifies each one's size and sha256, and installs it atomically at
# its DEST. The tarball is downloaded once for all members (the CUDA provider's is 180 MB), and
# not at all when every DEST already holds the expected bytes. A member may be listed twice with
# different DESTs.
set -euo pipefail
[ $# -ge 5 ] && [ $(( ($# - 1) % 4 )) -eq 0 ] || {
  echo "usage: $0 PACKAGE@VERSION PATH_IN_TGZ DEST SHA256 SIZE [PATH_IN_TGZ DEST SHA256 SIZE ...]" >&2
  exit 2
}
pkg=$1
shift

verify() { # file sha size
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$3" ] || return 1
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

need=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i += 4)); do
  verify "${args[i+1]}" "${args[i+2]}" "${args[i+3]}" || need+=("$i")
done
[ ${#need[@]} -eq 0 ] && exit 0

command -v npm >/dev/null || { echo "fetch-npm-lib: npm is required (apt-get install -y npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-npm-lib: downloading $pkg from the npm registry" >&2
(cd "$work" && npm pack --silent "$pkg" >/dev/null)
tgz=$(ls "$work"/*.tgz)
members=()
for i in "${need[@]}"; do members+=("${args[i]}"); done
tar -xzf "$tgz" -C "$work" $(printf '%s\n' "${members[@]}" | sort -u)
for i in "${need[@]}"; do
  member=${args[i]} dest=${args[i+1]} sha=${args[i+2]} size=${args[i+3]}
  if ! verify "$work/$member" "$sha" "$size"; then
    echo "fetch-npm-lib: $member from $pkg does not match size $size / sha256 $sha" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dest")"
  cp "$work/$member" "$dest.tmp.$$"
  mv "$dest.tmp.$$" "$dest"
  echo "fetch-npm-lib: installed $dest" >&2
done
