#!/usr/bin/env bash
# Regenerates ivr-prompts/<lang>/*.wav from ivr-prompts/<lang>/prompts.txt with espeak-ng and sox.
# Output: 8 kHz, mono, 16-bit PCM WAV (the embedded engine encodes G.711 from it at load time;
# FreeSWITCH plays the same files). Usage: scripts/generate-prompts.sh [lang] [espeak voice]
set -euo pipefail
lang=${1:-en}
voice=${2:-en-us}
here=$(cd "$(dirname "$0")/.." && pwd)
dir="$here/ivr-prompts/$lang"
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "generate-prompts: $tool is missing (apt-get install espeak-ng sox)" >&2; exit 1; }
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
count=0
while IFS='|' read -r id text; do
  [[ -z "$id" || "$id" == \#* ]] && continue
  [[ "$id" =~ ^[a-z0-9-]+$ ]] || { echo "generate-prompts: bad prompt id '$id'" >&2; exit 1; }
  if [[ "$text" == tone:* ]]; then
    # tone:<Hz>:<seconds> — a sine tone (the beep before a message is recorded), not speech.
    IFS=':' read -r _ hz seconds <<< "$text"
    sox -n -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" synth "$seconds" sine "$hz" gain -8 fade 0.01 "$seconds" 0.01
    count=$((count + 1))
    continue
  fi
  espeak-ng -v "$voice" -s 165 -w "$tmp/$id.wav" "$text"
  # Resample to 8 kHz mono 16-bit, trim leading/trailing silence, add 100 ms of air at the end,
  # normalise to -3 dBFS so G.711 keeps headroom.
  sox "$tmp/$id.wav" -r 8000 -c 1 -b 16 -e signed-integer "$dir/$id.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0 0.1 norm -3
  count=$((count + 1))
done < "$dir/prompts.txt"
# Remove WAVs whose id is no longer listed.
for f in "$dir"/*.wav; do
  id=$(basename "$f" .wav)
  grep -q "^$id|" "$dir/prompts.txt" || { rm -f "$f"; echo "removed stale $id.wav"; }
done
echo "generated $count prompts in $dir"
