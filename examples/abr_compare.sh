#!/usr/bin/env bash
# CPU of a stream group's ABR ladder in reelay against ffmpeg doing the same ladder from the
# same RTMP stream, in the same run on this machine, and how many groups keep real time.
#
#   [ABR_GROUPS=2] [WINDOW=20] bash examples/abr_compare.sh
#
# Source: 1080p30 H.264 High (B-frames, 2 s GOP, noise so x264 holds 6 Mbit/s) + AAC, pushed
# in real time with `ffmpeg -re -c copy`. Ladder: 852x480 at 800 kbit/s and 640x360 at
# 400 kbit/s, 30 fps. Rounds:
#   1. reelay: one group (decode once, scale, two OpenH264 encodes, plus ingest and the live
#      HLS of all three renditions): the server's CPU over WINDOW seconds, and each
#      rendition's `speed` and dropped frames from the API;
#   2. ffmpeg: reelay only relays a plain stream; `ffmpeg -i rtmp://… ` decodes it and
#      encodes the same ladder with libx264 -preset veryfast (and libopenh264 when this
#      ffmpeg build has it): ffmpeg's CPU over the same window;
#   3. ABR_GROUPS groups at once: whether every rendition keeps real time (speed, dropped).
# Needs ffmpeg. Prints one line per measurement.
set -euo pipefail
[ -n "${TRACE:-}" ] && set -x
cd "$(dirname "$0")/.."
GROUPS_=${ABR_GROUPS:-2}
WINDOW=${WINDOW:-20}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
RTMP=127.0.0.1:19370
HTTP=127.0.0.1:18095

cargo build --release --quiet --bin reelay
SRC="$WORK/src-1080p-6000k.flv"
LENGTH=$((WINDOW + 15))
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$LENGTH" -vf "noise=alls=6:allf=t" \
  -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
  -x264-params "keyint=60:min-keyint=60:scenecut=0:bframes=2" \
  -b:v 6000k -maxrate 6000k -bufsize 12000k -c:a aac -b:a 128k -f flv "$SRC"

RUST_LOG=warn ./target/release/reelay --data-dir "$WORK/data" --rtmp-addr "$RTMP" \
  --http-addr "$HTTP" > "$WORK/reelay.log" 2>&1 &
REELAY=$!
sleep 1
KEY=$(cat "$WORK/data/admin-api-key")

api() { curl -sf -H "X-BINTU-APIKEY: $KEY" -H 'content-type: application/json' "$@"; }
new_stream() { # $1 = JSON body; prints id and streamname
  api -X POST -d "$1" "http://$HTTP/stream" |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["id"], s["ingest"]["rtmp"]["streamname"])'
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cores() { # $1 pid, $2 seconds: CPU cores used over the next $2 seconds
  local t0 t1; t0=$(ticks "$1"); sleep "$2"; t1=$(ticks "$1")
  echo "scale=3; ($t1 - $t0) / $(getconf CLK_TCK) / $2" | bc
}
push() { ffmpeg -nostdin -loglevel error -re -i "$SRC" -c copy -f flv "rtmp://$RTMP/live/$1" & }
transcode_status() { # $1 = group id: one line per rendition
  api "http://$HTTP/stream/$1" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["playout"]["rtmp"][1:]:
    t = r["status"].get("transcode", {})
    print("   %s: speed %s, frames %s, dropped %s, state %s" % (
        r["profile"], t.get("speed"), t.get("frames"), t.get("skipped"), t.get("state")))'
}
LADDER='{"transcodes": [{"profile": "vtrans2-852x480x800x30"}, {"profile": "vtrans2-640x360x400x30"}]}'

echo "== 1 group: 1080p30 6 Mbit/s -> 852x480@800 + 640x360@400, ${WINDOW} s window =="
read -r GID GNAME < <(new_stream "$LADDER")
push "$GNAME"; PUSH=$!
sleep 8
echo "-- reelay (whole server: ingest, decode, scale, 2 encodes, 3 live HLS): $(cores "$REELAY" "$WINDOW") cores"
transcode_status "$GID"
wait "$PUSH" || true

read -r _ SNAME < <(new_stream '{}')
ENCODERS=$(ffmpeg -hide_banner -encoders 2>/dev/null)
for ENCODER in "libx264 -preset veryfast" "libopenh264"; do
  if ! grep -q " ${ENCODER%% *} " <<< "$ENCODERS"; then
    echo "-- ffmpeg ${ENCODER%% *}: not in this ffmpeg build"
    continue
  fi
  push "$SNAME"; PUSH=$!
  sleep 2
  # shellcheck disable=SC2086
  ffmpeg -nostdin -loglevel error -i "rtmp://$RTMP/live/$SNAME" \
    -filter_complex "[0:v]split=2[a][b];[a]scale=852:480[a1];[b]scale=640:360[b1]" \
    -map "[a1]" -map 0:a -c:v $ENCODER -b:v 800k -maxrate 800k -bufsize 1600k -g 60 -c:a copy -f null - \
    -map "[b1]" -map 0:a -c:v $ENCODER -b:v 400k -maxrate 400k -bufsize 800k -g 60 -c:a copy -f null - &
  FF=$!
  sleep 6
  echo "-- ffmpeg $ENCODER (decode, 2 scales, 2 encodes): $(cores "$FF" "$WINDOW") cores (reelay relaying meanwhile: $(cores "$REELAY" 1) cores over 1 s)"
  wait "$PUSH" || true
  kill "$FF" 2>/dev/null || true
  wait "$FF" 2>/dev/null || true
done

echo "== $GROUPS_ groups at once, ${WINDOW} s window =="
IDS=()
PUSHES=()
for _ in $(seq "$GROUPS_"); do
  read -r GID GNAME < <(new_stream "$LADDER")
  IDS+=("$GID")
  push "$GNAME"; PUSHES+=($!)
done
sleep 8
echo "-- reelay: $(cores "$REELAY" "$WINDOW") cores"
for GID in "${IDS[@]}"; do transcode_status "$GID"; done
wait "${PUSHES[@]}" || true
kill -TERM "$REELAY"; wait "$REELAY" || true
