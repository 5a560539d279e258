#!/usr/bin/env bash
# Simulates one preset over many seeds, analyses each run with `heatfront run`, scores it
# with `heatfront validate`, and prints every metric's distribution over the seeds (median,
# worst, how many met the target) and the pooled coverage of the reported uncertainties:
# the share of true hold velocities within one reported SEM, and of true activation
# energies within one SEM and inside the 95 % interval, each with how unusual its count
# would be if the uncertainties were exactly right (two-sided binomial p).
#
# usage: scripts/sweep-kinetics.sh PRESET SEED... (e.g. slow-front $(seq 1 20))
# env:   SIZE=px (frame width; the preset's own when unset), WORK=dir (default
#        /tmp/heatfront-sweep), REUSE_SIMS=1 keeps simulated runs already in WORK,
#        BIN=path to a built heatfront (default: builds .build/release/heatfront),
#        SUMMARY_ONLY=1 only summarises the validations already in WORK (e.g. seeds swept
#        in several parts)
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 PRESET SEED..." >&2; exit 64; }
preset=$1; shift
work=${WORK:-/tmp/heatfront-sweep}
if [ "${SUMMARY_ONLY:-0}" = 1 ]; then
  :
elif [ -z "${BIN:-}" ]; then
  swift build -c release --product heatfront >/dev/null || exit 1
  BIN=.build/release/heatfront
fi
mkdir -p "$work"
sizearg=(); [ -n "${SIZE:-}" ] && sizearg=(--size "$SIZE")
tag="$preset${SIZE:+-$SIZE}"
for seed in "$@"; do
  [ "${SUMMARY_ONLY:-0}" = 1 ] && break
  run="$work/$tag-$seed"
  if [ "${REUSE_SIMS:-0}" != 1 ] || [ ! -f "$run/ground_truth.json" ]; then
    rm -rf "$run"
    "$BIN" simulate --out "$run" --preset "$preset" --seed "$seed" "${sizearg[@]}" >/dev/null || { echo "seed $seed: simulate failed" >&2; continue; }
  fi
  "$BIN" run "$run" --out "$run-out" --quiet 2>"$run-out.stderr"
  "$BIN" validate "$run-out" --truth "$run" >"$run-out.validate.txt" 2>&1
  printf 'seed %s: %s\n' "$seed" "$(tail -1 "$run-out.validate.txt")"
done

# Distribution per metric. Lines: VERDICT NAME VALUE UNIT [(target …)] DETAIL.
for seed in "$@"; do
  f="$work/$tag-$seed-out.validate.txt"
  [ -f "$f" ] && awk -v seed="$seed" '$1 ~ /^(PASS|FAIL|info)$/ { print seed, $0 }' "$f"
done | awk '
  function abs(x) { return x < 0 ? -x : x }
  # Two-sided binomial p of k of n at rate p (twice the smaller tail): how unusual the count would be
  # for uncertainties that are exactly right.
  function binomial(k, n, p,   j, pmf, below, above) {
    pmf = (1 - p) ^ n; below = 0; above = 0
    for (j = 0; j <= n; j++) {
      if (j <= k) below += pmf
      if (j >= k) above += pmf
      pmf *= (n - j) / (j + 1) * p / (1 - p)
    }
    return below < above ? (2 * below < 1 ? 2 * below : 1) : (2 * above < 1 ? 2 * above : 1)
  }
  {
    name = $3; v = $4; verdict = $2
    if (!(name in seen)) { seen[name] = 1; order[++n] = name }
    if (verdict == "PASS") pass[name]++
    if (verdict != "info") scored[name]++
    if (v != "—") { vals[name, ++cnt[name]] = v; if ($0 ~ /target ≥/) higher[name] = 1 }
    else missing[name]++
    if (match($0, /[0-9]+ of [0-9]+ (holds )?within/) || match($0, /[0-9]+ of 1 inside/)) {
      split(substr($0, RSTART, RLENGTH), kn, " "); k[name] += kn[1]; m[name] += kn[3]
    }
  }
  END {
    printf "\n%-36s %8s %10s %10s %s\n", "metric", "seeds", "median", "worst", "target met"
    for (i = 1; i <= n; i++) {
      name = order[i]; c = cnt[name]
      for (j = 1; j <= c; j++) a[j] = vals[name, j] + 0
      for (x = 1; x <= c; x++) for (y = x + 1; y <= c; y++) if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
      med = c ? (c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2) : 0
      worst = 0
      if (c) { if (higher[name]) worst = a[1]; else { worst = a[1]; for (j = 1; j <= c; j++) if (abs(a[j]) > abs(worst)) worst = a[j] } }
      met = scored[name] ? sprintf("%d/%d", pass[name], scored[name]) : "info"
      if (missing[name]) met = met sprintf(" (%d none)", missing[name])
      printf "%-36s %8d %10.4g %10.4g %s\n", name, c, med, worst, met
    }
    printf "\npooled coverage\n"
    for (i = 1; i <= n; i++) {
      name = order[i]; if (m[name] == 0) continue
      rate = name ~ /ci95/ ? 0.95 : 0.6827
      printf "%-36s %d of %d = %.1f %% (two-sided p = %.2f at a true rate of %.1f %%)\n", name, k[name], m[name],
             100 * k[name] / m[name], binomial(k[name], m[name], rate), 100 * rate
    }
  }'
