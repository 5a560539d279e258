#!/usr/bin/env bash
# Live analysis at acquisition pace: a simulated run (boundary-front preset) is replayed into
# a folder frame by frame (config and heating log first, then each frame renamed into place
# every INTERVAL s) while `heatfront watch` follows it. Prints the latency from each frame
# file's arrival to its row in the watch's frames.csv (median, p95, max; frames missed), the
# watch's resident memory sampled every second during the live phase and its peak over the
# whole session (final pass included), and checks that the final outputs are those of
# `heatfront run` on the same folder, file by file (summary.json without its wall-clock fields).
# usage: scripts/bench-watch.sh [size] [interval-s] [frames-per-step] [work-dir]
# (defaults 1024 px, 2 s, 16: the preset acquires a 1024² frame in 2.4 s; 16 frames fill its shortest hold)
# With HEATFRONT_WATCH_TRACE=1 the watch writes the time of each part of a frame's path
# (rescan, registration, measurement, tables) to WORK/watch-stderr.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024}; interval=${2:-2}; fps=${3:-16}; work=${4:-/tmp/heatfront-bench-watch}
swift build -c release --product heatfront >/dev/null
swift build -c release --product heatfront-bench >/dev/null
bin=$(pwd)/.build/release
rm -rf "$work"; mkdir -p "$work/run"
$bin/heatfront simulate --out "$work/source" --preset boundary-front --size "$size" --frames-per-step "$fps"

/usr/bin/time -v -o "$work/watch-time.txt" "$bin/heatfront" watch "$work/run" --out "$work/out" --idle-exit 8 \
  >"$work/watch-stdout.txt" 2>"$work/watch-stderr.txt" &
timer=$!
sleep 0.5
watcher=$(pgrep -P "$timer" heatfront)
# Resident memory (kB) each second while the frames arrive: seconds since start, VmRSS.
( t0=$(date +%s); while kill -0 "$watcher" 2>/dev/null; do
    echo "$(( $(date +%s) - t0 )) $(awk '/VmRSS/{print $2}' /proc/"$watcher"/status 2>/dev/null)"; sleep 1; done ) >"$work/rss.txt" &
sampler=$!
$bin/heatfront-bench watch-replay --from "$work/source" --to "$work/run" --out "$work/out" \
  --interval "$interval" --latencies "$work/latencies.txt"
live_end=$(tail -1 "$work/rss.txt" | cut -d' ' -f1)
wait "$timer" || { echo "heatfront watch failed:"; tail -5 "$work/watch-stderr.txt"; exit 1; }
wait "$sampler" || true
awk -v end="$live_end" 'NF == 2 && $1 <= end { n++; v[n] = $2 }
  END { if (n == 0) exit; lo = v[1]; hi = v[1]; for (i = 1; i <= n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i] }
        q = int(n / 4) + 1
        printf "watch memory (live phase, %d samples): first %.0f MB, after a quarter %.0f MB, last %.0f MB, max %.0f MB\n",
               n, v[1] / 1024, v[q] / 1024, v[n] / 1024, hi / 1024 }' "$work/rss.txt"
awk -F': ' '/Maximum resident/ { printf "watch peak resident memory (whole session, final pass included): %.0f MB\n", $2 / 1024 }' "$work/watch-time.txt"
tail -1 "$work/watch-stdout.txt"

# The final outputs against the batch run's.
$bin/heatfront run "$work/run" --out "$work/batch" --quiet >/dev/null
digest() {
  (cd "$1" && find . -type f ! -path './.heatfront-*' ! -name summary.json -print0 | sort -z | xargs -0 sha256sum
   python3 -c "import json; d=json.load(open('summary.json')); [d.pop(k) for k in ('timings_s','peak_memory_mb','started_at')]; print(json.dumps(d, sort_keys=True))" | sha256sum)
}
if [ "$(digest "$work/out")" == "$(digest "$work/batch")" ]; then
  echo "final outputs: identical to heatfront run (every file; summary.json but its wall-clock fields)"
else
  echo "final outputs: DIFFER from heatfront run"; diff <(digest "$work/out") <(digest "$work/batch") | head; exit 1
fi
