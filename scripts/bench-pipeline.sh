#!/usr/bin/env bash
# End-to-end speed and memory of `heatfront run`, rigid and non-rigid, on simulated runs with
# a moving front and six holds (slow-front preset, seed 3, 12 frames per hold = 72 frames):
# 512×512, 1024×512 (the preset's own frames) and 1024×1024. For each run: wall time and the
# whole run's frames/s, peak memory, and the stage profile (summary.json `timings_s`).
# Each run starts from an empty output folder (--force), in a fresh process. The second line
# of each run: CPU seconds per stage (HEATFRONT_STAGE_CPU), steadier than wall time on a
# shared machine.
# With FRAMES_PER_STEP=N the runs hold N frames per hold instead of 12 (their own folders):
# the difference between two such benches is the cost of each further frame, what a long
# run's rate tends to.
# usage: scripts/bench-pipeline.sh [work-dir] [sizes...]   sizes: 512sq 1024x512 1024sq
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/heatfront-bench-pipeline}
shift || true
sizes=${*:-512sq 1024x512 1024sq}
swift build -c release --product heatfront >/dev/null
bin=.build/release/heatfront
mkdir -p "$work"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
report() {  # run-dir out-dir mode label
    local start end
    rm -rf "$2"
    start=$(date +%s.%N)
    HEATFRONT_STAGE_CPU=1 $bin run "$1" --out "$2" --mode "$3" --quiet --force >/dev/null 2>"$2.cpu"
    end=$(date +%s.%N)
    python3 - "$2/summary.json" "$(echo "$end - $start" | bc -l)" "$3" "$4" "$2.cpu" <<'PY'
import json, re, sys
s = json.load(open(sys.argv[1]))
cpu = re.findall(r"stage cpu: (.+?) ([0-9.]+) s \(child processes ([0-9.]+) s\)", open(sys.argv[5]).read())
wall = float(sys.argv[2])
t = s["timings_s"]
stages = ", ".join(f"{k} {v:.2f}" for k, v in sorted(t.items(), key=lambda kv: -kv[1]) if v >= 0.005)
print(f'{sys.argv[4]:9s} {sys.argv[3]:9s} {s["n_frames"]:3d} frames: {wall:6.2f} s wall = {s["n_frames"] / wall:5.1f} frames/s, '
      f'peak memory {s["peak_memory_mb"]:.0f} MB  ({stages})')
print(f'{"":19s} CPU s {sum(float(c) for _, c, _ in cpu):.1f}: '
      + ", ".join(f"{n} {float(c):.2f}" + (f" (gnuplot {float(g):.2f})" if float(g) > 0 else "") for n, c, g in cpu if float(c) >= 0.005))
PY
}
for size in $sizes; do
    case $size in
        512sq) args="--size 512 --aspect 1" ;;
        1024x512) args="--size 1024" ;;
        1024sq) args="--size 1024 --aspect 1" ;;
        *) echo "unknown size $size (512sq, 1024x512, 1024sq)" >&2; exit 64 ;;
    esac
    per=${FRAMES_PER_STEP:-12}
    run="$work/run-$size${FRAMES_PER_STEP:+-$per}"
    [ -f "$run/heatfront.yaml" ] || $bin simulate --out "$run" --preset slow-front --seed 3 --frames-per-step "$per" $args >/dev/null
    for mode in rigid nonrigid; do
        report "$run" "$work/out-$size${FRAMES_PER_STEP:+-$per}-$mode" $mode "$size"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
