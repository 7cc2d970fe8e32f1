#!/usr/bin/env bash
# install-ffmpeg.sh: installs Debian's ffmpeg (no recommends: ~85 packages, 165 MB) when it is
# missing. Speech recognition needs it for Opus, WebM, MP4/AAC and other containers that are
# not decoded in Go. Runs apt-get directly as root (CI), through sudo otherwise.
set -euo pipefail
if command -v ffmpeg >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ffmpeg is missing and this is not a Debian/Ubuntu system: install ffmpeg yourself" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "installing ffmpeg (apt-get install --no-install-recommends ffmpeg)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
ffmpeg -hide_banner -version | head -1
