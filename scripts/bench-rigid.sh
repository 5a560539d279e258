#!/usr/bin/env bash
# Rigid registration speed, HeatFront vs a scikit-image baseline, in the same run:
# 40 simulated frames of 1024×1024 (TIFF), decode + register + average.
#   HeatFront: `heatfront register` (reference-free, sub-pixel; also hashes every input for
#              its cache and summary.json, and writes frames.csv, the averages and its cache),
#              and the same registration in process with nothing hashed or written
#              (`heatfront-bench rigid`: scan, decode, register, average, as the baseline does).
#   Baseline: phase_cross_correlation(upsample_factor=20) against the first frame,
#             scipy.ndimage.shift(order=1), average (scripts/bench/rigid_skimage.py).
#   Both in-process jobs time a first run (fresh process: plans, page faults) and the median
#   of three more; `heatfront register` is a fresh process each time, so it is compared with
#   the baseline's first run.
# usage: scripts/bench-rigid.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/peers.sh
work=${1:-/tmp/heatfront-bench-rigid}
swift build -c release --product heatfront >/dev/null
swift build -c release --product heatfront-bench >/dev/null
bin=.build/release/heatfront
rm -rf "$work"; mkdir -p "$work"
$bin simulate --out "$work/run" --preset boundary-front --size 1024 --frames-per-step 10 >/dev/null
n=$(ls "$work"/run/*/*.tif | wc -l)
$bin register "$work/run" --out "$work/warm" --quiet   # warm the page cache
# The median of three timed runs: single runs on this 2-core machine vary by ±10 %.
times=()
for _ in 1 2 3; do
  start=$(date +%s.%N)
  $bin register "$work/run" --out "$work/out" --quiet --force
  end=$(date +%s.%N)
  times+=("$(echo "$end - $start" | bc -l)")
done
wall=$(printf '%s\n' "${times[@]}" | sort -g | sed -n 2p)
hf=$(echo "$n / $wall" | bc -l)
printf 'HeatFront:    %d frames in %.2f s = %.1f frames/s (median of 3 runs: %s s)\n' "$n" "$wall" "$hf" \
  "$(printf '%.2f ' "${times[@]}" | sed 's/ $//')"
$bin validate "$work/out" --truth "$work/run" 2>/dev/null | grep registration_rms || true
lib=$(.build/release/heatfront-bench rigid "$work/run" --repeat 3)
echo "$lib"
py=$(peers_python scikit-image tifffile scipy)
line=$("$py" scripts/bench/rigid_skimage.py "$work/run" 3)
echo "$line"
# Both in-process jobs report the median of three runs after a first one, and that first run.
warm() { echo "$1" | sed -E 's/.*= ([0-9.]+) frames\/s \(median.*/\1/'; }
first() { echo "$1" | sed -E 's/.*first run in the process: [0-9.]+ s = ([0-9.]+) frames\/s.*/\1/'; }
printf 'ratio HeatFront / scikit-image, the same work in process: %.1f× (median of 3 runs after a first), %.1f× (first runs)\n' \
  "$(echo "$(warm "$lib") / $(warm "$line")" | bc -l)" "$(echo "$(first "$lib") / $(first "$line")" | bc -l)"
printf 'ratio heatfront register (a fresh process that also hashes and writes) / scikit-image first run: %.1f×\n' \
  "$(echo "$hf / $(first "$line")" | bc -l)"
