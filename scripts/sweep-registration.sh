#!/usr/bin/env bash
# Registration over many simulator seeds of one preset: simulate, register, validate, and
# print each seed's registration RMS error, TM column precision and frames a lattice vector
# off, then their distribution (median, worst).
#
# usage: scripts/sweep-registration.sh PRESET SEED... [-- EXTRA_SIMULATE_ARGS...]
#   SEED may be a range: 1-20.
# environment:
#   HEATFRONT  the binary (default .build/release/heatfront, built if absent)
#   SIMULATOR  the binary that simulates (default: HEATFRONT), to score another build on the
#              same runs
#   WORK       work folder (default /tmp/heatfront-sweep); each seed's run is removed after
#              it is scored unless KEEP=1
#   MODE       register | run (default: run for presets analysed non-rigidly, whose column
#              precision needs the step analysis, register otherwise)
#   JOBS       --jobs for heatfront (default: its own)
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,14p "$0"; exit 2; }
preset=$1; shift
seeds=(); extra=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; extra=("$@"); break; fi
  if [[ $1 =~ ^([0-9]+)-([0-9]+)$ ]]; then
    for ((s = BASH_REMATCH[1]; s <= BASH_REMATCH[2]; s++)); do seeds+=("$s"); done
  else seeds+=("$1"); fi
  shift
done
bin=${HEATFRONT:-.build/release/heatfront}
if [ ! -x "$bin" ]; then swift build -c release --product heatfront >/dev/null || exit 1; fi
sim=${SIMULATOR:-$bin}
work=${WORK:-/tmp/heatfront-sweep}
mkdir -p "$work"
mode=${MODE:-}
if [ -z "$mode" ]; then
  case $preset in scan-distortion|strong-distortion) mode=run ;; *) mode=register ;; esac
fi
jobs=(); [ -n "${JOBS:-}" ] && jobs=(--jobs "$JOBS")
value() { awk -v m="$1" '$2 == m { print $3; exit }' "$2"; }
results="$work/$preset-results.txt"
: > "$results"
printf '%-6s %12s %14s %10s %9s %8s\n' seed rms_px precision_pm off_frames reported time_s
for seed in "${seeds[@]}"; do
  run="$work/$preset-$seed"; out="$work/$preset-$seed-out"
  rm -rf "$run" "$out"
  if ! "$sim" simulate --out "$run" --preset "$preset" --seed "$seed" "${extra[@]}" >/dev/null; then
    echo "seed $seed: simulate failed"; continue
  fi
  start=$(date +%s.%N)
  "$bin" "$mode" "$run" --out "$out" --quiet "${jobs[@]}" >"$out.stdout" 2>"$out.stderr" || echo "seed $seed: $mode failed ($(tail -1 "$out.stderr"))"
  end=$(date +%s.%N)
  "$bin" validate "$out" --truth "$run" > "$out.validate" 2>&1
  rms=$(value registration_rms_error "$out.validate"); prec=$(value column_position_precision "$out.validate")
  off=$(value frames_lattice_vector_off "$out.validate")
  # Suspected slips the run itself reported (summary.json registration.alias_slip_frames).
  warn=$(tr -d ' \n' < "$out/summary.json" 2>/dev/null | grep -o '"alias_slip_frames":\[[^]]*\]' | grep -o '[0-9]\+' | wc -l)
  printf '%-6s %12s %14s %10s %9s %8.1f\n' "$seed" "${rms:-—}" "${prec:-—}" "${off:-—}" "${warn:-—}" "$(echo "$end - $start" | bc)"
  echo "$seed ${rms:-nan} ${prec:-nan} ${off:-nan} ${warn:-0}" >> "$results"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$run" "$out"
done
# Distribution: median and worst of each column over the seeds that produced it.
awk -v preset="$preset" '
  function report(name, col, unit,   n, i, j, t, v, med) {
    n = 0
    for (i = 1; i <= NR; i++) if (val[i, col] != "nan" && val[i, col] != "") v[++n] = val[i, col] + 0
    if (n == 0) { printf "%-28s —\n", name; return }
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    printf "%-28s median %.4g, worst %.4g, best %.4g %s (%d seeds)\n", name, med, v[n], v[1], unit, n
  }
  { for (c = 1; c <= NF; c++) val[NR, c] = $c }
  END {
    printf "\n%s over %d seeds:\n", preset, NR
    report("registration RMS error", 2, "px")
    report("TM column precision", 3, "pm")
    report("frames a lattice vector off", 4, "frames")
    total = 0; reported = 0
    for (i = 1; i <= NR; i++) { if (val[i, 4] != "nan") total += val[i, 4]; reported += val[i, 5] }
    printf "%-28s %d in all; suspected slips the runs reported: %d\n", "frames a lattice vector off", total, reported
  }' "$results"
