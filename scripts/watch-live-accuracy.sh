#!/usr/bin/env bash
# How far the live numbers of `heatfront watch` are from the final (batch) ones: for each
# seed, a simulated run is replayed into a folder while watch follows it (no --idle-exit);
# once every frame has its row, the live steps.csv is kept and watch is stopped with
# SIGINT; `heatfront run` on the same folder gives the final steps.csv. Prints, over seeds
# and steps, the median and worst absolute difference of the Li/TM step mean and the
# relative difference of the front velocity (steps whose final velocity is above 0.005 nm/s),
# and how many such steps had no live velocity.
# usage: scripts/watch-live-accuracy.sh [seeds] [size] [frames-per-step] [interval-s] [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-20}; size=${2:-256}; fps=${3:-10}; interval=${4:-0.2}; work=${5:-/tmp/heatfront-watch-accuracy}
swift build -c release --product heatfront >/dev/null
swift build -c release --product heatfront-bench >/dev/null
bin=$(pwd)/.build/release
rm -rf "$work"; mkdir -p "$work"
for seed in $(seq 1 "$seeds"); do
  d="$work/$seed"; mkdir -p "$d/run"
  $bin/heatfront simulate --out "$d/source" --preset boundary-front --seed "$seed" --size "$size" --frames-per-step "$fps" >/dev/null
  $bin/heatfront watch "$d/run" --out "$d/live" --quiet --report-interval 60 2>"$d/watch.err" & pid=$!
  $bin/heatfront-bench watch-replay --from "$d/source" --to "$d/run" --out "$d/live" --interval "$interval" --settle 120 >"$d/replay.txt"
  sleep 1   # the last frame's step row follows its frames.csv row
  cp "$d/live/steps.csv" "$d/live-steps.csv"
  kill -INT "$pid"; wait "$pid" || true
  $bin/heatfront run "$d/run" --out "$d/final" --quiet >/dev/null
  grep -q " 0 missed" "$d/replay.txt" || echo "seed $seed: $(cat "$d/replay.txt")"
done
python3 - "$work" "$seeds" <<'PY'
import csv, sys, statistics
work, seeds = sys.argv[1], int(sys.argv[2])
ratio, velocity, missing = [], [], 0
for s in range(1, seeds + 1):
    live = list(csv.DictReader(open(f"{work}/{s}/live-steps.csv")))
    final = list(csv.DictReader(open(f"{work}/{s}/final/steps.csv")))
    for a, b in zip(live, final):
        if a["li_tm_ratio_mean"] and b["li_tm_ratio_mean"]:
            ratio.append(abs(float(a["li_tm_ratio_mean"]) - float(b["li_tm_ratio_mean"])))
        va, vb = a["front_velocity_nm_per_s"], b["front_velocity_nm_per_s"]
        if vb and float(vb) > 0.005:
            if va: velocity.append(abs(float(va) - float(vb)) / float(vb))
            else: missing += 1
def show(name, v, fmt):
    v = sorted(v)
    print(f"{name}: {len(v)} steps, median {fmt(statistics.median(v))}, 90th percentile {fmt(v[int(0.9 * (len(v) - 1))])}, worst {fmt(v[-1])}")
show("live vs final Li/TM step mean, |difference|", ratio, lambda x: f"{x:.4f}")
show("live vs final front velocity, |relative difference|", velocity, lambda x: f"{100 * x:.1f} %")
print(f"steps with a final velocity but no live one (front not found yet while the step was acquired): {missing}")
PY
