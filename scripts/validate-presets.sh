#!/usr/bin/env bash
# Simulates every preset, analyses it with `heatfront run` and scores it with
# `heatfront validate`. usage: scripts/validate-presets.sh [size] [work-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
size=${1:-512}; work=${2:-/tmp/heatfront-validate}
swift build -c release >/dev/null || exit 1
bin=.build/release/heatfront
status=0
for preset in boundary-front gradual-onset registration-stress scan-distortion; do
  rm -rf "$work/$preset" "$work/$preset-out"
  $bin simulate --out "$work/$preset" --preset "$preset" --size "$size" >/dev/null || { status=1; continue; }
  start=$(date +%s.%N)
  $bin run "$work/$preset" --out "$work/$preset-out" --quiet || status=1
  end=$(date +%s.%N)
  printf '\n== %s (%d px): run %.1f s\n' "$preset" "$size" "$(echo "$end - $start" | bc)"
  $bin validate "$work/$preset-out" --truth "$work/$preset" || status=1
done
exit $status
