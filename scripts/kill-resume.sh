#!/usr/bin/env bash
# Kills `heatfront run` with SIGKILL at random points, resumes, and checks that the result is
# byte-identical to an uninterrupted run (apart from summary.json's wall-clock fields) with
# no temporary file left. Each round kills the run 1–3 times before letting it finish.
# usage: scripts/kill-resume.sh [rounds] [size] [work-dir]
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}; size=${2:-256}; work=${3:-/tmp/heatfront-kill}
swift build -c release --product heatfront >/dev/null || exit 1
bin=$(pwd)/.build/release/heatfront
rm -rf "$work"; mkdir -p "$work"; cd "$work"
$bin simulate --out run --preset boundary-front --size "$size" --frames-per-step 5 >/dev/null || exit 1
start=$(date +%s.%N)
$bin run run --out ref --quiet >/dev/null || exit 1
full=$(echo "$(date +%s.%N) - $start" | bc)
echo "uninterrupted run: $full s"

# Every output file but the wall-clock fields of summary.json, as "sha256  path" lines.
digest() {
  (cd "$1" && find . -type f ! -path './.heatfront-*' ! -name summary.json -print0 | sort -z | xargs -0 sha256sum
   python3 -c "import json,sys; d=json.load(open('summary.json')); [d.pop(k) for k in ('timings_s','peak_memory_mb','started_at')]; print(json.dumps(d, sort_keys=True))" | sha256sum)
}
want=$(digest ref)
kills=0; bad=0
for r in $(seq 1 "$rounds"); do
  rm -rf out
  for k in $(seq 1 $((RANDOM % 3 + 1))); do
    $bin run run --out out --quiet >/dev/null 2>&1 & pid=$!
    sleep "$(python3 -c "import random; print(round(random.uniform(0.05, $full), 2))")"
    kill -9 "$pid" 2>/dev/null && kills=$((kills + 1))
    wait "$pid" 2>/dev/null
  done
  $bin run run --out out --quiet >/dev/null || { echo "round $r: resume failed"; bad=$((bad + 1)); continue; }
  temps=$(find out -name '.*.tmp-*' -o -name '*heatfront-tmp*' | wc -l)
  if [ "$(digest out)" != "$want" ] || [ "$temps" != 0 ]; then
    echo "round $r: outputs differ or $temps temporary file(s) left"; bad=$((bad + 1))
  fi
done
echo "$rounds rounds, $kills kills: $bad round(s) with differences or temporary files"
[ "$bad" = 0 ]
