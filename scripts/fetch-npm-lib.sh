#!/usr/bin/env bash
# fetch-npm-lib.sh PACKAGE@VERSION PATH_IN_TGZ DEST SHA256 SIZE
# Fetches one file out of an npm package tarball (the npm registry is the one place this project's
# native libraries come from), verifies its size and sha256, and installs it atomically at DEST.
# Does nothing when DEST already holds the expected bytes.
set -euo pipefail
pkg=$1 member=$2 dest=$3 want_sha=$4 want_size=$5

verify() {
  [ -f "$1" ] || return 1
  [ "$(stat -c %s "$1")" = "$want_size" ] || return 1
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$want_sha" ]
}

if verify "$dest"; then
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-npm-lib: npm is required (apt-get install -y npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetch-npm-lib: downloading $pkg from the npm registry" >&2
(cd "$work" && npm pack --silent "$pkg" >/dev/null)
tgz=$(ls "$work"/*.tgz)
tar -xzf "$tgz" -C "$work" "$member"
if ! verify "$work/$member"; then
  echo "fetch-npm-lib: $member from $pkg does not match size $want_size / sha256 $want_sha" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$work/$member" "$dest.tmp.$$"
mv "$dest.tmp.$$" "$dest"
echo "fetch-npm-lib: installed $dest" >&2
