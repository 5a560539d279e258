#!/usr/bin/env bash
# The layered-lattice check (docs/algorithms.md, "Is it the layered lattice?") on the step
# averages of simulated runs of every preset, bright and inverted, and on the real images of
# the format corpus (../shared/corpus/formats, when present): one line per image with the
# lattice found, the criteria and the verdict.
#   usage: scripts/lattice-check.sh [seeds] [work-dir]      (default seeds: "1 2")
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-1 2}; work=${2:-/tmp/heatfront-lattice-check}
swift build -c release --product heatfront >/dev/null
swift build -c release --product heatfront-bench >/dev/null
bin=$PWD/.build/release/heatfront; bench=$PWD/.build/release/heatfront-bench
mkdir -p "$work"
for size in 256 512 1024; do
  for preset in boundary-front gradual-onset registration-stress scan-distortion; do
    for seed in $seeds; do
      for contrast in bright inverted; do
        run="$work/$preset-$size-$seed-$contrast"
        extra=(); [ "$contrast" = inverted ] && extra=(--inverted-contrast)
        "$bin" simulate --out "$run" --preset "$preset" --size "$size" --seed "$seed" "${extra[@]}" >/dev/null 2>&1 || continue
        "$bin" register "$run" --out "$run-out" --quiet --force
        for avg in "$run-out"/aligned/step_*_average.tif; do
          echo "$preset $size seed $seed $contrast $(basename "$avg"): $("$bench" lattice "$avg" | tail -n 1 | cut -d: -f2-)"
        done
        rm -rf "$run" "$run-out"
      done
    done
  done
done
corpus=../shared/corpus/formats
if [ -d "$corpus" ]; then
  find "$corpus" -type f \( -name '*.dm3' -o -name '*.dm4' -o -name '*.tif' -o -name '*.ser' -o -name '*.emd' -o -name '*.mrc' \) \
    | sort | while read -r f; do
      for px in "" --no-pixel-size; do echo "corpus ${f#$corpus/} $px: $("$bench" lattice $px "$f" 2>&1 | tail -n 1 | cut -d: -f2-)"; done
    done
else
  echo "lattice-check.sh: ../shared/corpus/formats is not beside this checkout; corpus images skipped"
fi
