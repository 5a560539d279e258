#!/usr/bin/env bash
# The measurements behind `heatfront submit`'s time and memory requests
# (Sources/Cluster/ResourceModel.swift, docs/user-guide.md "Running on a cluster"):
# `heatfront run` on simulated gradual-onset runs (12 steps) of 512², 1024² and 2048² frames
# with different frame counts, jobs and registration modes, and a boundary-front run (4
# steps) for how memory grows with the number of steps. For each run: wall time, CPU time
# (user + system: core-seconds, what the model counts; on a busy machine the wall time is
# not the run's), peak resident memory and each stage's wall time (their shares split the
# CPU time between stages).
# usage: scripts/bench-cluster-model.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/heatfront-bench-cluster}
swift build -c release --product heatfront >/dev/null
bin=$PWD/.build/release/heatfront
mkdir -p "$work"

simulate() {  # size frames-per-step [preset]
    local preset=${3:-gradual-onset}
    local dir="$work/run-$preset-$1-$2"
    [ -f "$dir/ground_truth.json" ] || $bin simulate --out "$dir" --preset "$preset" --size "$1" --frames-per-step "$2" >/dev/null
    echo "$dir"
}

measure() {  # run-dir jobs mode
    local out="$work/out-$(basename "$1")-j$2-$3"
    /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" \
        $bin run "$1" --out "$out" --jobs "$2" --mode "$3" --force --quiet
    python3 - "$out/summary.json" "$work/time.txt" "$2" "$3" "$1" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
wall, user, system, rss_kb = (float(x) for x in open(sys.argv[2]).read().split()[-4:])
w, h = s["frame_size"]
n, steps = s["n_frames"], s["n_steps"]
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(sys.argv[5]) for f in fs)
t = s["timings_s"]
stages = ", ".join(f"{k} {v:.1f}" for k, v in sorted(t.items()) if v >= 0.05)
print(f"{w}x{h} {n:4d} frames {steps:2d} steps {size / 2**20:7.1f} MiB  jobs {sys.argv[3]} {sys.argv[4]:8s}"
      f"  wall {wall:6.1f} s  cpu {user + system:6.1f} s  peak {rss_kb / 1024:6.0f} MB  (stages, wall s: {stages})")
PY
}

measure "$(simulate 512 5)" 2 rigid
measure "$(simulate 512 10)" 2 rigid
measure "$(simulate 1024 5)" 2 rigid
measure "$(simulate 1024 10)" 2 rigid
measure "$(simulate 1024 10)" 1 rigid
measure "$(simulate 1024 10)" 4 rigid
measure "$(simulate 1024 10)" 2 nonrigid
measure "$(simulate 1024 10 boundary-front)" 2 rigid
measure "$(simulate 2048 2)" 2 rigid
measure "$(simulate 2048 2)" 1 rigid
