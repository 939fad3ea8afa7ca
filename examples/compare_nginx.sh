#!/usr/bin/env bash
# Measures reelay and nginx-rtmp in the same run on this machine with examples/loadgen.rs:
# CPU and memory per publishing stream, the same with recording on (reelay `/rec`: crash-safe
# MP4, one synced fragment a second; nginx-rtmp `record all`: FLV, no sync), memory per
# stream at 1080p 6 Mbit/s (MEM_STREAMS streams, default 40; MEM_STREAMS=0 skips it), and RTMP
# players of one 2.5 Mbit/s stream. Pass `-` as the player counts to skip the player rounds.
# Needs Debian's nginx + libnginx-mod-rtmp and ffmpeg (to make the sources).
#
#   [MEM_STREAMS=40] bash examples/compare_nginx.sh [streams] [seconds] [player counts...]
#
# Both servers run with one worker (nginx-rtmp's usual live setup; reelay with
# TOKIO_WORKER_THREADS=1) so CPU figures compare like for like; reelay is also measured with
# its default runtime (one worker per core) for the player test.
set -euo pipefail
cd "$(dirname "$0")/.."
STREAMS=${1:-20}
SECONDS_=${2:-30}
shift 2 || true
PLAYER_COUNTS=("${@:-100 200 400}")
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

cargo build --release --quiet --bin reelay --example loadgen
LOADGEN=./target/release/examples/loadgen
SRC="$WORK/load-2500k.flv"
ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 -c:v libx264 -profile:v high \
  -preset veryfast -pix_fmt yuv420p -x264-params "keyint=60:min-keyint=60:scenecut=0:bframes=2" \
  -b:v 2400k -maxrate 2400k -bufsize 2400k -c:a aac -b:a 128k -f flv "$SRC"
MEM_STREAMS=${MEM_STREAMS:-40}
SRC_1080="$WORK/load-6000k-1080p.flv"
if [ "$MEM_STREAMS" -gt 0 ]; then
  # 1080p30 H.264 High, 2 s GOP, 6 Mbit/s (noise keeps x264 at the bit rate) + AAC.
  ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=1920x1080:rate=30" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 10 -vf "noise=alls=6:allf=t" \
    -c:v libx264 -profile:v high -preset veryfast -pix_fmt yuv420p \
    -x264-params "keyint=60:min-keyint=60:scenecut=0:bframes=2:b-pyramid=normal" \
    -b:v 6000k -maxrate 6000k -bufsize 12000k -c:a aac -b:a 128k -f flv "$SRC_1080"
fi

mkdir -p "$WORK/nginx/logs" "$WORK/nginx/rec"
# nginx's workers run unprivileged: they must reach the recording folder.
chmod 755 "$WORK" "$WORK/nginx"
chmod 777 "$WORK/nginx/rec"
cat > "$WORK/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 16384; }
rtmp { server { listen 127.0.0.1:19361; chunk_size 4096;
    application live { live on; record off; }
    application rec { live on; record all; record_path $WORK/nginx/rec; record_unique on; } } }
CONF

start_reelay() { # $1 = worker threads ("" for default)
  rm -rf "$WORK/data"
  if [ -n "$1" ]; then export TOKIO_WORKER_THREADS=$1; else unset TOKIO_WORKER_THREADS; fi
  RUST_LOG=warn ./target/release/reelay --data-dir "$WORK/data" \
    --rtmp-addr 127.0.0.1:19360 --http-addr 127.0.0.1:18090 > "$WORK/reelay.log" 2>&1 &
  REELAY=$!
  unset TOKIO_WORKER_THREADS
  sleep 1
  KEY=$(cat "$WORK/data/admin-api-key")
}
stop_reelay() { kill -TERM "$REELAY"; wait "$REELAY" || true; }
start_nginx() { nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx/" & NGINX_MASTER=$!; sleep 1;
  NGINX=$(pgrep -P "$NGINX_MASTER" || echo "$NGINX_MASTER"); }
stop_nginx() { kill -QUIT "$NGINX_MASTER"; wait "$NGINX_MASTER" || true; }

echo "== $STREAMS publishing streams (obs-like fixture, ~0.6 Mbit/s each), ${SECONDS_} s =="
start_reelay 1
echo "-- reelay (1 worker)"
$LOADGEN --rtmp 127.0.0.1:19360 --api http://127.0.0.1:18090 --key "$KEY" --pid "$REELAY" \
  --streams "$STREAMS" --seconds "$SECONDS_"
stop_reelay
start_nginx
echo "-- nginx-rtmp (1 worker)"
$LOADGEN --rtmp 127.0.0.1:19361 --pid "$NGINX" --streams "$STREAMS" --seconds "$SECONDS_"
stop_nginx

echo "== $STREAMS publishing streams, recording on, ${SECONDS_} s =="
start_reelay 1
echo "-- reelay (1 worker, /rec)"
$LOADGEN --rtmp 127.0.0.1:19360 --app rec --api http://127.0.0.1:18090 --key "$KEY" \
  --pid "$REELAY" --streams "$STREAMS" --seconds "$SECONDS_"
stop_reelay
echo "   recorded: $(find "$WORK/data/vod" -name '*.mp4' | wc -l) MP4 files, $(du -sh "$WORK/data/vod" | cut -f1)"
start_nginx
echo "-- nginx-rtmp (1 worker, record all)"
$LOADGEN --rtmp 127.0.0.1:19361 --app rec --pid "$NGINX" --streams "$STREAMS" --seconds "$SECONDS_"
stop_nginx
echo "   recorded: $(find "$WORK/nginx/rec" -name '*.flv' | wc -l) FLV files, $(du -sh "$WORK/nginx/rec" | cut -f1)"

if [ "$MEM_STREAMS" -gt 0 ]; then
  echo "== $MEM_STREAMS publishing streams of 1080p at 6 Mbit/s (memory per stream), ${SECONDS_} s =="
  start_reelay 1
  echo "-- reelay (1 worker)"
  $LOADGEN --rtmp 127.0.0.1:19360 --api http://127.0.0.1:18090 --key "$KEY" --pid "$REELAY" \
    --file "$SRC_1080" --streams "$MEM_STREAMS" --seconds "$SECONDS_"
  stop_reelay
  start_nginx
  echo "-- nginx-rtmp (1 worker)"
  $LOADGEN --rtmp 127.0.0.1:19361 --pid "$NGINX" --file "$SRC_1080" --streams "$MEM_STREAMS" \
    --seconds "$SECONDS_"
  stop_nginx
fi

[ "${PLAYER_COUNTS[0]}" = "-" ] && exit 0
for PLAYERS in "${PLAYER_COUNTS[@]}"; do
  echo "== 1 stream of 2.5 Mbit/s, $PLAYERS players, ${SECONDS_} s =="
  start_reelay 1
  echo "-- reelay (1 worker)"
  $LOADGEN --rtmp 127.0.0.1:19360 --api http://127.0.0.1:18090 --key "$KEY" --pid "$REELAY" \
    --file "$SRC" --streams 1 --players "$PLAYERS" --seconds "$SECONDS_"
  stop_reelay
  start_reelay ""
  echo "-- reelay (default runtime)"
  $LOADGEN --rtmp 127.0.0.1:19360 --api http://127.0.0.1:18090 --key "$KEY" --pid "$REELAY" \
    --file "$SRC" --streams 1 --players "$PLAYERS" --seconds "$SECONDS_"
  stop_reelay
  start_nginx
  echo "-- nginx-rtmp (1 worker)"
  $LOADGEN --rtmp 127.0.0.1:19361 --pid "$NGINX" --file "$SRC" --streams 1 \
    --players "$PLAYERS" --seconds "$SECONDS_"
  stop_nginx
done
