#!/usr/bin/env bash
# make-test-audio.sh: regenerates testdata/audio/ — real speech synthesised by espeak-ng and
# converted with sox, flac, lame, oggenc and ffmpeg into every container the speech
# recognition pipeline accepts. The files are committed; run this only to rebuild them.
# Needs (Debian 12): apt-get install -y --no-install-recommends espeak-ng sox ffmpeg flac lame vorbis-tools
# Versions used for the committed files: espeak-ng 1.51, sox 14.4.2, ffmpeg 5.1.9, flac 1.4.2,
# lame 3.100, vorbis-tools 1.4.2 (re-running may change a few metadata bytes, not the audio).
set -euo pipefail
cd "$(dirname "$0")/../testdata/audio"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { espeak-ng -v en-us -s 160 -w "$1" "$2"; } # 22050 Hz mono 16-bit

# The short clip (about 3 s) every format is made from.
say "$tmp/short.wav" "Infergo recognises speech in many formats."
sox "$tmp/short.wav" -r 16000 -b 16 speech.wav                      # reference: WAV 16-bit 16 kHz mono
sox "$tmp/short.wav" -r 16000 -e floating-point -b 32 speech_f32.wav # WAV IEEE float 32-bit
# Stereo 22.05 kHz, right channel quieter and slightly delayed, so mixdown is exercised.
sox "$tmp/short.wav" "$tmp/right.wav" vol 0.6 delay 0.002
sox -M "$tmp/short.wav" "$tmp/right.wav" -b 16 speech_22k_stereo.wav
flac -s -f --best -o speech.flac speech.wav                          # FLAC 16 kHz mono
sox speech_22k_stereo.wav -r 44100 -b 24 "$tmp/s44.wav"
flac -s -f -o speech_44k_stereo_24bit.flac "$tmp/s44.wav"            # FLAC 44.1 kHz stereo 24-bit
lame --quiet -m m -b 32 --resample 16 speech.wav speech.mp3          # MP3 MPEG-2 16 kHz mono (LAME tag)
lame --quiet -b 64 "$tmp/s44.wav" speech_44k_stereo.mp3              # MP3 MPEG-1 44.1 kHz joint stereo
sox speech_22k_stereo.wav -r 16000 "$tmp/s16.wav"
oggenc -Q -q 2 -o speech_stereo.ogg "$tmp/s16.wav"                   # Ogg Vorbis stereo 16 kHz
ffmpeg -nostdin -v error -y -i speech_22k_stereo.wav -c:a libopus -b:a 32k speech.opus  # Ogg Opus
ffmpeg -nostdin -v error -y -i speech_22k_stereo.wav -c:a libopus -b:a 32k speech.webm  # WebM Opus
ffmpeg -nostdin -v error -y -i speech.wav -c:a aac -b:a 48k speech.m4a                  # MP4 AAC

# Not audio: 1 KiB of deterministic bytes behind a FLAC signature, like upstream's malformed.flac.
python3 -c "import sys; sys.stdout.write('fLaC' + ('this is not a sound file\\n' * 50)[:1020])" > malformed.flac

# Long audio (> 30 s): sentences joined with short pauses, as Ogg Vorbis mono 16 kHz.
parts=()
i=0
while IFS= read -r line; do
  say "$tmp/p$i.wav" "$line"
  parts+=("$tmp/p$i.wav")
  i=$((i + 1))
done <<'TEXT'
The quick brown fox jumps over the lazy dog near the river bank.
Speech recognition turns spoken words into written text for everyone.
Whisper reads thirty seconds of audio at a time and writes what it hears.
Longer recordings are cut into overlapping windows that are merged again.
Each window shares a few seconds with its neighbours so no word is lost.
The merged transcript should read as if the model had heard it all at once.
Batching lets many requests share the same model steps on the server.
This sentence ends the long recording used by the tests.
TEXT
sox "${parts[@]}" -r 16000 -b 16 "$tmp/long.wav" pad 0 0.3
oggenc -Q -q 0 -o long.ogg "$tmp/long.wav"
soxi -D long.ogg
ls -l
