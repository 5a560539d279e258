#!/usr/bin/env bash
# Registration against what lies beyond the boundary: registration-stress runs (large drift
# between frames) with their amorphous neighbour, a vacuum and neighbour grains of the same
# phase (`simulate --neighbour`), each swept by scripts/sweep-registration.sh (per seed: the
# registration RMS, the frames a lattice vector off against the truth and the slips the run
# reported). Then per neighbour: how many seeds have frames off, and how many of those
# reported no slip.
#   usage: scripts/neighbour-check.sh [first-seed] [last-seed] [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}; last=${2:-20}; work=${3:-/tmp/heatfront-neighbour}
swift build -c release --product heatfront >/dev/null
for neighbour in amorphous vacuum grain:-19 grain:78; do
  echo "== $neighbour"
  WORK="$work/$neighbour" MODE=register scripts/sweep-registration.sh registration-stress "$first-$last" -- --neighbour "$neighbour"
  # sweep-registration.sh's results: seed, RMS, precision, frames off, slips reported.
  awk -v n="$neighbour" -v seeds=$((last - first + 1)) '$4 + 0 > 0 { off++; if ($5 == 0) silent++ }
    END { printf "== %s: %d of %d seeds with frames a lattice vector off, %d of them with no slip reported\n", n, off, seeds, silent }' \
    "$work/$neighbour/registration-stress-results.txt"
done
