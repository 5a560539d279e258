#!/usr/bin/env bash
# How clearly the non-periodic content tells lattice aliases apart on the simulator's
# registration-stress preset (scripts/bench/alias_margins.py; numbers in docs/algorithms.md).
# usage: scripts/alias-margins.sh [seed] [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench/peers.sh
seed=${1:-2}; work=${2:-/tmp/heatfront-alias-margins}
swift build -c release --product heatfront >/dev/null
rm -rf "$work"
.build/release/heatfront simulate --out "$work" --preset registration-stress --seed "$seed" --format png >/dev/null
py=$(peers_python numpy scipy pillow)
"$py" scripts/bench/alias_margins.py "$work"
