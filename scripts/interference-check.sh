#!/usr/bin/env bash
# Registration with scan interference: simulated runs with stripes fixed in the scan, registered
# and scored against the truth. Prints each run's registration RMS, the notches found, and the
# median and worst per setting.
#   usage: scripts/interference-check.sh [first-seed] [last-seed] [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}; last=${2:-20}; work=${3:-/tmp/heatfront-interference}
swift build -c release --product heatfront >/dev/null
bin=$PWD/.build/release/heatfront
mkdir -p "$work"
for setting in "boundary-front none" "boundary-front 40,0.113" "boundary-front 10,0.2" "registration-stress 4,0.07"; do
  set -- $setting; preset=$1; stripes=$2
  rms=()
  for seed in $(seq "$first" "$last"); do
    run="$work/$preset-$stripes-$seed"; out="$run-out"
    extra=(); [ "$stripes" != none ] && extra=(--interference "$stripes")
    "$bin" simulate --out "$run" --preset "$preset" --seed "$seed" "${extra[@]}" >/dev/null
    "$bin" register "$run" --out "$out" --quiet --force
    r=$( ("$bin" validate "$out" --truth "$run" || true) | awk '/registration_rms_error/ {print $3}')
    n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['registration']['notches_cycles_per_px']))" "$out/summary.json")
    printf '%-20s %-10s seed %3d: %s px, %s notch(es)\n' "$preset" "$stripes" "$seed" "$r" "$n"
    rms+=("$r")
    rm -rf "$run" "$out"
  done
  printf '%s\n' "${rms[@]}" | sort -g | awk -v p="$preset" -v s="$stripes" \
    '{v[NR]=$1} END {printf "== %s %s: median %.4f px, worst %.4f px over %d seeds\n", p, s, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[NR], NR}'
done
