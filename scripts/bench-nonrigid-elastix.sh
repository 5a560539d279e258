#!/usr/bin/env bash
# Non-rigid registration, HeatFront vs elastix (itk-elastix, PyPI), in the same run, on the
# strong scan-distortion preset, step 0's frames. Quality: TM column precision of each step-0
# average (rigid only, HeatFront non-rigid, elastix B-spline), measured the same way for all
# three — `heatfront-bench precision` (every column, the lattice fitted to the image) and, as
# `heatfront validate` scores it, against the simulator's truth lattice with misdetections
# dropped. Then the speed target: 30 frames of 1024² registered non-rigidly (boundary-front
# preset, whose holds fit them).
# usage: scripts/bench-nonrigid-elastix.sh [work-dir] [size]   (size 512 or 1024; 1024 uses
# 5 frames per step, as 8 frames of its 6.8 s scan do not fit the preset's holds)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/peers.sh
work=${1:-/tmp/heatfront-bench-elastix}; size=${2:-512}
per_step=(); [ "$size" -gt 512 ] && per_step=(--frames-per-step 5)
swift build -c release >/dev/null
bin=.build/release
rm -rf "$work"; mkdir -p "$work"
$bin/heatfront simulate --out "$work/run" --preset scan-distortion --size "$size" "${per_step[@]}" >/dev/null
timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
t_rigid=$(timed $bin/heatfront register "$work/run" --out "$work/rigid" --mode rigid --quiet --force)
t_non=$(timed $bin/heatfront register "$work/run" --out "$work/nonrigid" --mode nonrigid --quiet --force)
n=$(grep -c ',ok,' "$work/rigid/frames.csv" || true)
echo "scan-distortion preset, ${size}x${size}, $n frames in $(($(ls "$work"/rigid/aligned/step_*_average.tif | wc -l))) steps"
printf 'HeatFront rigid:     %.1f s (decode + register + average, all frames)\n' "$t_rigid"
printf 'HeatFront non-rigid: %.1f s (the same plus non-rigid correction)\n' "$t_non"
nm=$(python3 -c "import json;print(json.load(open('$work/rigid/summary.json'))['pixel_size_nm'])")
py=$(peers_python itk-elastix tifffile scipy numpy)
"$py" scripts/bench/nonrigid_elastix.py "$work/run" "$work/rigid/frames.csv" 0 "$work/elastix_step_0.tif" "$nm"
cp "$work/rigid/aligned/step_0_average.tif" "$work/rigid_step_0.tif"
cp "$work/nonrigid/aligned/step_0_average.tif" "$work/nonrigid_step_0.tif"
cols=()
for name in rigid nonrigid elastix; do
    printf '%-10s step 0 average: ' "$name"; $bin/heatfront-bench precision "$work/${name}_step_0.tif"
    $bin/heatfront-bench columns "$work/${name}_step_0.tif" --out "$work/${name}_columns.csv" >/dev/null
    cols+=("$name=$work/${name}_columns.csv")
done
"$py" scripts/bench/nonrigid_precision.py "$work/run/ground_truth.json" "$nm" "${cols[@]}"

# Speed target: 30 frames of 1024x1024 (boundary-front preset, 2 holds of 15 frames used).
$bin/heatfront simulate --out "$work/speed" --preset boundary-front --size 1024 --frames-per-step 15 >/dev/null
mkdir -p "$work/speed30"; ls "$work/speed" | head -0
python3 - "$work/speed" "$work/speed30" <<'PY'
import os, shutil, sys, csv
src, dst = sys.argv[1], sys.argv[2]
rows = list(csv.DictReader(open(os.path.join(src, "ground_truth.csv"))))[:30]
for r in rows:
    os.makedirs(os.path.dirname(os.path.join(dst, r["file"])), exist_ok=True)
    shutil.copy(os.path.join(src, r["file"]), os.path.join(dst, r["file"]))
for f in ("heatfront.yaml", "heating_log.csv"):
    shutil.copy(os.path.join(src, f), os.path.join(dst, f))
PY
t_r=$(timed $bin/heatfront register "$work/speed30" --out "$work/speed30-rigid" --mode rigid --quiet --force)
t_n=$(timed $bin/heatfront register "$work/speed30" --out "$work/speed30-nonrigid" --mode nonrigid --quiet --force)
printf 'speed, 30 frames of 1024x1024 (%s cores): rigid %.1f s, non-rigid %.1f s (target <= 20 s)\n' "$(nproc)" "$t_r" "$t_n"
