#!/usr/bin/env bash
# Registration against what lies beyond the boundary: registration-stress runs (large drift
# between frames) with their amorphous neighbour, a vacuum and neighbour grains of the same
# phase (`simulate --neighbour`), registered and scored against the truth. Prints each run's
# registration RMS, the frames a lattice vector off (against the truth) and the slips the run
# itself reported (summary.json), then per setting: how many seeds have frames off, and of
# those, how many reported none of them.
#   usage: scripts/neighbour-check.sh [first-seed] [last-seed] [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}; last=${2:-20}; work=${3:-/tmp/heatfront-neighbour}
swift build -c release --product heatfront >/dev/null
bin=$PWD/.build/release/heatfront
mkdir -p "$work"
for neighbour in amorphous vacuum grain:-19 grain:78; do
  off_seeds=0; silent=0
  for seed in $(seq "$first" "$last"); do
    run="$work/$neighbour-$seed"; out="$run-out"
    "$bin" simulate --out "$run" --preset registration-stress --seed "$seed" --neighbour "$neighbour" >/dev/null
    "$bin" register "$run" --out "$out" --quiet --force >/dev/null
    scores=$("$bin" validate "$out" --truth "$run" || true)
    rms=$(awk '/registration_rms_error/ {print $3}' <<<"$scores")
    off=$(awk '/frames_lattice_vector_off/ {print $3 + 0}' <<<"$scores")
    reported=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['registration']['alias_slip_frames']))" "$out/summary.json")
    printf '%-10s seed %3d: %9s px, %2d frames a lattice vector off, %d slips reported\n' "$neighbour" "$seed" "$rms" "${off:-0}" "$reported"
    if [ "${off:-0}" -gt 0 ]; then
      off_seeds=$((off_seeds + 1))
      [ "$reported" -eq 0 ] && silent=$((silent + 1))
    fi
    rm -rf "$run" "$out"
  done
  echo "== $neighbour: $off_seeds of $((last - first + 1)) seeds with frames a lattice vector off, $silent of them with no slip reported"
done
