#!/usr/bin/env bash
# End-to-end speed and memory of `heatfront run` on ~120 simulated frames of 1024×1024
# (gradual-onset preset, 12 holds: the preset whose holds fit that many 1024 px frames),
# rigid and non-rigid, and on ~60 frames to show that peak memory follows frame size, not
# frame count. usage: scripts/bench-pipeline.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/heatfront-bench-pipeline}
swift build -c release --product heatfront >/dev/null
swift build -c release --product heatfront-bench >/dev/null
bin=.build/release/heatfront
rm -rf "$work"; mkdir -p "$work"
report() {  # run-dir out-dir mode
    local start end
    start=$(date +%s.%N)
    $bin run "$1" --out "$2" --mode "$3" --quiet --force
    end=$(date +%s.%N)
    python3 - "$2/summary.json" "$(echo "$end - $start" | bc -l)" "$3" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(s["timings_s"].items()))
print(f'{sys.argv[3]:9s} {s["n_frames"]:4d} frames {s["frame_size"][0]}x{s["frame_size"][1]}: '
      f'{float(sys.argv[2]):6.1f} s wall, peak memory {s["peak_memory_mb"]:.0f} MB  ({stages})')
PY
}
for per in 5 10; do
    $bin simulate --out "$work/run$per" --preset gradual-onset --size 1024 --frames-per-step $per >/dev/null
    report "$work/run$per" "$work/out$per-rigid" rigid
done
report "$work/run10" "$work/out10-nonrigid" nonrigid
# Column intensities of single frames at the first step's fixed sites: SiteIntensity.measure
# against SiteIntensityEstimator (width refitted per frame: same numbers; fixed width).
first=$(dirname "$(ls "$work"/run10/*/frame_0000.* | head -1)")
.build/release/heatfront-bench sites "$work/out10-rigid/aligned/step_0_average.tif" $(ls "$first"/frame_* | head -5) | tail -1
