#!/usr/bin/env bash
# Non-rigid registration, HeatFront vs elastix (itk-elastix, PyPI), in the same run, on the
# strong scan-distortion preset at its own size (512×512; its holds do not fit 30 frames of
# 1024 px, whose scan takes 6.8 s), step 0's frames. Quality is the TM
# column precision of each step average (RMS deviation from the best-fit ideal lattice),
# measured the same way for all three averages. usage: scripts/bench-nonrigid-elastix.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/peers.sh
work=${1:-/tmp/heatfront-bench-elastix}
swift build -c release >/dev/null
bin=.build/release
rm -rf "$work"; mkdir -p "$work"
$bin/heatfront simulate --out "$work/run" --preset scan-distortion --size 512 >/dev/null
timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
t_rigid=$(timed $bin/heatfront register "$work/run" --out "$work/rigid" --mode rigid --quiet --force)
t_non=$(timed $bin/heatfront register "$work/run" --out "$work/nonrigid" --mode nonrigid --quiet --force)
n=$(grep -c ',0,ok' "$work/rigid/frames.csv" || true)
printf 'HeatFront rigid:     %.1f s (decode + register + average, all frames)\n' "$t_rigid"
printf 'HeatFront non-rigid: %.1f s (the same plus non-rigid correction)\n' "$t_non"
nm=$(python3 -c "import json;print(json.load(open('$work/rigid/summary.json'))['pixel_size_nm'])")
py=$(peers_python itk-elastix tifffile scipy)
"$py" scripts/bench/nonrigid_elastix.py "$work/run" "$work/rigid/frames.csv" 0 "$work/elastix_step_0.tif" "$nm"
for name in rigid nonrigid; do
    printf '%-10s step 0 average: ' "$name"; $bin/heatfront-bench precision "$work/$name/aligned/step_0_average.tif"
done
printf '%-10s step 0 average: ' elastix; $bin/heatfront-bench precision "$work/elastix_step_0.tif"
