#!/usr/bin/env bash
# How far a preset's hold velocities are from the information limit: for every seed that
# scripts/sweep-kinetics.sh ran (same WORK), `heatfront-bench front-bound` gives each moving
# hold's Cramér–Rao bound; then, per hold, the RMS over the seeds of the reported velocity's
# relative error (steps.csv against ground_truth.json), of the bound (also with the front's
# width, the grain's cation mixing and each frame's dose unknown), and their ratio (1 would
# be an efficient estimator), and how much of the error is smooth over the hold (frames.csv:
# the frames' travel error against what their scatter alone would give it).
# Prints one line per hold.
#
# usage: scripts/sweep-bound.sh PRESET SEED... (after scripts/sweep-kinetics.sh PRESET SEED...)
# env:   WORK=dir (default /tmp/heatfront-sweep), SIZE=px as given to sweep-kinetics.sh,
#        BENCH=path to a built heatfront-bench (default: builds it)
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 PRESET SEED..." >&2; exit 64; }
preset=$1; shift
work=${WORK:-/tmp/heatfront-sweep}
if [ -z "${BENCH:-}" ]; then
  swift build -c release --product heatfront-bench >/dev/null || exit 1
  BENCH=.build/release/heatfront-bench
fi
tag="$preset${SIZE:+-$SIZE}"
for seed in "$@"; do
  run="$work/$tag-$seed"
  [ -f "$run-out/steps.csv" ] || { echo "seed $seed: no $run-out/steps.csv (run sweep-kinetics.sh first)" >&2; continue; }
  "$BENCH" front-bound "$run" | sed "s|^|$seed $run |"
done | python3 -c '
import csv, json, math, re, sys
from collections import defaultdict
holds = defaultdict(list)
travels = defaultdict(list)
def travel_error(run, step):
    # The frame positions against the truth over one hold: the travel error of their line
    # (slope × duration), and the variance their scatter about that line alone would give it.
    truth = csv.DictReader(open(run + "/ground_truth.csv"))
    ours = csv.DictReader(open(run + "-out/frames.csv"))
    pts = [(float(a["time_s"]), float(a["front_position_nm"]) - float(b["front_position_nm"])) for a, b in zip(ours, truth)
           if int(b["step_index"]) == step and a["status"] == "ok" and a["front_position_nm"] and b["front_position_nm"]]
    if len(pts) < 4: return None
    n = len(pts); tm = sum(t for t, _ in pts) / n; em = sum(e for _, e in pts) / n
    sxx = sum((t - tm) ** 2 for t, _ in pts); slope = sum((t - tm) * (e - em) for t, e in pts) / sxx
    scatter = sum((e - em - slope * (t - tm)) ** 2 for t, e in pts) / (n - 2)
    span = max(t for t, _ in pts) - min(t for t, _ in pts)
    return slope * span, scatter / sxx * span ** 2

for line in sys.stdin:
    m = re.match(r"(\S+) (\S+) step (\d+) \(([\d.]+) °C\): \d+ frames, travel ([\d.]+) nm; position bound ([\d.]+) nm .*velocity bound ([\d.]+) %"
                 r"(?:; with width and mixing unknown [\d.]+ %, and each frame.s dose ([\d.]+) %)?", line)
    if not m: continue
    seed, run, step = m.group(1), m.group(2), int(m.group(3))
    truth = json.load(open(run + "/ground_truth.json"))["steps"][step]
    row = next((r for r in csv.DictReader(open(run + "-out/steps.csv")) if int(r["step_index"]) == step), None)
    v = row and row["front_velocity_nm_per_s"]
    error = (float(v) / truth["front_velocity_nm_per_s"] - 1) * 100 if v not in (None, "", "nan") else None
    holds[(step, m.group(4))].append((float(m.group(5)), float(m.group(6)), float(m.group(7)), error, seed, m.group(8) and float(m.group(8))))
    travels[(step, m.group(4))].append(travel_error(run, step))
rms = lambda xs: (sum(x * x for x in xs) / len(xs)) ** 0.5
for (step, temperature), rows in sorted(holds.items()):
    errors = [r[3] for r in rows if r[3] is not None]
    travel = [r[0] for r in rows]; position = sorted(r[1] for r in rows); bound = rms([r[2] for r in rows])
    line = f"hold {step} ({temperature} °C): {len(rows)} seeds, travel {min(travel):.2f}–{max(travel):.2f} nm, position bound {position[len(position) // 2]:.4f} nm (median)"
    if errors:
        line += (f"; velocity error RMS {rms(errors):.2f} % ({len(errors)} with a velocity), bound RMS {bound:.2f} % "
                 + (f"({rms([r[5] for r in rows]):.2f} % with width, mixing and dose unknown), " if all(r[5] for r in rows) else "")
                 + f"ratio {rms(errors) / bound:.2f}")
    pairs = [p for p in travels[(step, temperature)] if p]
    if pairs:
        line += (f"; frames: travel error RMS {rms([p[0] for p in pairs]):.4f} nm, "
                 f"{(sum(p[1] for p in pairs) / len(pairs)) ** 0.5:.4f} nm from their scatter about their line")
    print(line)

# The 10 % target at the limit: an unbiased estimator whose error SD is the bound keeps a
# hold within 10 % with probability erf(10 / (bound·√2)); per seed, every hold with ≥ 1 nm
# of travel, the holds taken as independent.
seeds = defaultdict(list)
for (step, _), rows in holds.items():
    for travel, _, bound, error, seed, _ in rows:
        if travel >= 1: seeds[seed].append((bound, error))
if seeds:
    chance = {s: math.prod(math.erf(10 / (b * 2 ** 0.5)) for b, _ in hs) for s, hs in seeds.items()}
    met = sum(all(e is not None and abs(e) <= 10 for _, e in hs) for hs in seeds.values())
    print(f"velocity within 10 % on every hold with ≥ 1 nm of travel: {met} of {len(seeds)} seeds; "
          f"an efficient estimator would expect {sum(chance.values()):.1f}, and all {len(seeds)} with probability {math.prod(chance.values()):.2f}")
'
