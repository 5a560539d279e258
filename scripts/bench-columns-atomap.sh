#!/usr/bin/env bash
# Column finding and refinement, HeatFront vs Atomap (PyPI), on the same simulated step
# average (512×512, boundary-front preset): positions agreement and time. Agreement is
# printed over all matched columns and over those whose fit windows lie inside the covered
# image (see scripts/bench/columns_atomap.py for why the border columns differ).
# usage: scripts/bench-columns-atomap.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/peers.sh
work=${1:-/tmp/heatfront-bench-atomap}
swift build -c release >/dev/null
bin=.build/release
rm -rf "$work"; mkdir -p "$work"
$bin/heatfront simulate --out "$work/run" --preset boundary-front --size 512 >/dev/null
$bin/heatfront run "$work/run" --out "$work/out" --quiet
avg="$work/out/aligned/step_0_average.tif"
line=$($bin/heatfront-bench columns "$avg" --out "$work/heatfront_tm.csv")
echo "$line"
py=$(peers_python atomap tifffile)
# Atomap's peak separation: 70 % of the in-plane TM spacing (0.244 nm at 0.025 nm/px ≈ 9.8 px).
out=$("$py" scripts/bench/columns_atomap.py "$avg" "$work/heatfront_tm.csv" 7 "$work/run/ground_truth.json" 2>/dev/null)
echo "$out"
hf=$(echo "$line" | sed -E 's/.* in ([0-9.]+) s$/\1/')
at=$(echo "$out" | head -1 | sed -E 's/.* in ([0-9.]+) s .*/\1/')
at1=$(echo "$out" | head -1 | sed -E 's/.*Gaussian pass: ([0-9.]+) s.*/\1/')
printf 'ratio Atomap / HeatFront time: %.0f× (converged, two Gaussian passes), %.0f× (one pass)\n' \
    "$(echo "$at / $hf" | bc -l)" "$(echo "$at1 / $hf" | bc -l)"
