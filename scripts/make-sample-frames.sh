#!/usr/bin/env bash
# Regenerates SampleFrames/<preset>/ (small simulated heating runs with ground truth, one per
# frame format: TIFF, PNG, DM4) with `heatfront simulate`, then checks that the bytes did not
# change: the simulator promises the same bytes for the same seed and options.
# Usage: scripts/make-sample-frames.sh        (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

swift build -c release --product heatfront
BIN="$(swift build -c release --show-bin-path)/heatfront"

gen() {   # preset size frames-per-step
    rm -rf "SampleFrames/$1"
    "$BIN" simulate --out "SampleFrames/$1" --preset "$1" --seed 1 --size "$2" --frames-per-step "$3"
}
gen boundary-front 256 10         # TIFF, plain heating log, temperature sub-folders
gen gradual-onset 192 6           # PNG (AXON-style metadata), DENSsolutions log, ramp frames
gen registration-stress 256 6     # DM4, Protochips log, name tokens, injected noise frames

du -sh SampleFrames
if [ -z "$(git ls-files SampleFrames)" ]; then
    echo "SampleFrames/ is new: review and commit it; later runs check it is unchanged."
    exit 0
fi
git diff --exit-code --stat SampleFrames
untracked="$(git ls-files --others --exclude-standard SampleFrames)"
if [ -n "$untracked" ]; then
    echo "new files under SampleFrames/ (not in git):"; echo "$untracked"; exit 1
fi
echo "SampleFrames/ unchanged."
