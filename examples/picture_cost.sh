#!/usr/bin/env bash
# Thumbnails and motion clips: what they cost per 1080p stream in reelay, next to the usual
# approach measured in the same run (one ffmpeg per stream playing it over RTMP and writing a
# thumbnail every 10 s: `ffmpeg -i rtmp://… -vf fps=1/10 -update 1 thumb.jpg`), and how many
# 1080p streams with thumbnails every 10 s + 3-second motion clips every 10 s this machine
# sustains with no skipped ticks. Needs ffmpeg (to make the source and for the comparison).
#
#   [BITRATE=6000k] [NOISE=6] [ONLY_CAPACITY=1] bash examples/picture_cost.sh [streams] [seconds] [capacity counts...]
#
# The source: 20 s of 1920×1080 at 30 fps, H.264 High with 2 B-frames (b-pyramid), 2 s GOP,
# BITRATE (6 Mbit/s) with sensor-like noise of strength NOISE (6; 0 = none: a clean picture
# that x264 encodes below the bitrate), + AAC; pushed in a loop by
# examples/loadgen.rs at real-time pace. The load generator runs on the same machine, so its
# own CPU (pushing up to ~150 Mbit/s) is taken from the capacity.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${1:-4}
SECONDS_=${2:-60}
shift 2 || true
CAPACITY=("${@:-24}")
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin reelay --example loadgen
LOADGEN=./target/release/examples/loadgen
SRC="$WORK/obs-1080p.flv"
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 -vf "noise=alls=${NOISE:-6}:allf=t" \
  -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
  -x264-params "keyint=60:min-keyint=60:scenecut=0:bframes=2:b-pyramid=normal" \
  -b:v "${BITRATE:-6000k}" -maxrate "${BITRATE:-6000k}" -bufsize 12000k -c:a aac -b:a 128k \
  -f flv "$SRC"
echo "source: $(ffprobe -v error -show_entries format=bit_rate -of csv=p=0 "$SRC") bit/s"

HTTP=127.0.0.1:18091
RTMP=127.0.0.1:19362
start_reelay() {
  rm -rf "$WORK/data"
  RUST_LOG=warn ./target/release/reelay --data-dir "$WORK/data" \
    --rtmp-addr "$RTMP" --http-addr "$HTTP" > "$WORK/reelay.log" 2>&1 &
  REELAY=$!
  sleep 1
  KEY=$(cat "$WORK/data/admin-api-key")
}
stop_reelay() { kill -TERM "$REELAY"; wait "$REELAY" || true; }
# Sum of a metric's samples (all labels) from /metrics.
metric() { curl -s "http://$HTTP/metrics" | awk -v m="$1" 'index($1, m) == 1 { s += $2 } END { print s + 0 }'; }
# "0.123" from loadgen's "… 0.123 % per stream" line.
per_stream() { grep -o '[0-9.]* % per stream' | cut -d' ' -f1; }

THUMBS='[{"id":"thumbs","interval":10}]'
BOTH='[{"id":"thumbs","interval":10},{"id":"motionclip","interval":10,"duration":3}]'

round() { # label, processing, streams → prints loadgen's report and the picture counters
  start_reelay
  echo "-- reelay, $3 streams: $1"
  $LOADGEN --rtmp "$RTMP" --api "http://$HTTP" --key "$KEY" --pid "$REELAY" --file "$SRC" \
    --streams "$3" --seconds "$SECONDS_" --processing "$2" | tee "$WORK/round.txt"
  echo "   pictures made: $(metric reelay_picture_made_total), skipped ticks: $(metric reelay_picture_skipped_ticks_total), failed: $(metric reelay_picture_failed_total)"
  stop_reelay
}

echo "== $STREAMS streams of 1080p30 at ${BITRATE:-6000k}, noise ${NOISE:-6}, ${SECONDS_} s window =="
if [ -z "${ONLY_CAPACITY:-}" ]; then
round "no processing" '[]' "$STREAMS"
BASE=$(per_stream < "$WORK/round.txt")
round "thumbs every 10 s" "$THUMBS" "$STREAMS"
WITH_THUMBS=$(per_stream < "$WORK/round.txt")
round "thumbs + motionclip (3 s) every 10 s" "$BOTH" "$STREAMS"
WITH_BOTH=$(per_stream < "$WORK/round.txt")

echo "-- ffmpeg thumbnailer per stream (reelay relays, no processing)"
start_reelay
$LOADGEN --rtmp "$RTMP" --api "http://$HTTP" --key "$KEY" --file "$SRC" --streams "$STREAMS" \
  --seconds $((SECONDS_ + 15)) --warmup 1 --names-out "$WORK/names" > /dev/null &
PUSH=$!
while [ ! -s "$WORK/names" ]; do sleep 0.2; done
FFMPEGS=()
while read -r name; do
  ffmpeg -nostdin -loglevel error -i "rtmp://$RTMP/live/$name" -vf fps=1/10 -update 1 -y \
    "$WORK/ffmpeg-$name.jpg" &
  FFMPEGS+=($!)
done < "$WORK/names"
ticks() { local sum=0; for p in "${FFMPEGS[@]}"; do
  sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$p/stat"))); done; echo "$sum"; }
sleep 5
T0=$(ticks)
sleep "$SECONDS_"
T1=$(ticks)
FFMPEG=$(awk -v t=$((T1 - T0)) -v s="$SECONDS_" -v n="$STREAMS" 'BEGIN { printf "%.2f", t / 100 / s / n * 100 }')
kill "${FFMPEGS[@]}" 2>/dev/null || true
wait "$PUSH" || true
stop_reelay
echo "   thumbnails written by ffmpeg: $(ls "$WORK"/ffmpeg-*.jpg 2>/dev/null | wc -l)"

awk -v base="$BASE" -v thumbs="$WITH_THUMBS" -v both="$WITH_BOTH" -v ff="$FFMPEG" 'BEGIN {
  t = thumbs - base; b = both - base;
  printf "== CPU per stream (%% of one core): reelay thumbnails %.3f, thumbnails + motion clips %.3f; ffmpeg thumbnailer %.2f\n", t, b, ff;
  if (t > 0) printf "   ffmpeg / reelay for thumbnails: %.0f×\n", ff / t }'
fi

for n in "${CAPACITY[@]}"; do
  echo "== capacity: $n streams with thumbs + motionclip =="
  round "thumbs + motionclip (3 s) every 10 s" "$BOTH" "$n"
done
