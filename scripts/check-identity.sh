#!/usr/bin/env bash
# Whether two builds of heatfront write the same outputs: both analyse the same six simulated
# runs (boundary-front, gradual-onset, registration-stress and the slow-front preset's seed 3
# rigidly; scan-distortion rigidly and non-rigidly), and every output file is compared byte
# for byte, except
#   summary.json   compared as JSON without its wall-clock keys (timings_s, peak_memory_mb,
#                  started_at, run_dir);
#   report.html    compared without the lines that show timings or memory.
# The runs are simulated once by BASE and kept in WORK/runs. Prints each difference and ends
# with "identical" (exit 0) or "outputs differ" (exit 1).
# usage: scripts/check-identity.sh BASE_BIN NEW_BIN [work-dir]
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BASE_BIN NEW_BIN [work-dir]" >&2; exit 64; }
base=$1 new=$2 work=${3:-/tmp/heatfront-identity}
mkdir -p "$work/runs"
simulate() {  # name preset [seed]
    [ -f "$work/runs/$1/ground_truth.json" ] && return
    "$base" simulate --out "$work/runs/$1" --preset "$2" --seed "${3:-1}" >/dev/null
}
simulate boundary-front boundary-front
simulate gradual-onset gradual-onset
simulate registration-stress registration-stress
simulate scan-distortion scan-distortion
simulate slow-front slow-front 3

files() { (cd "$1" && find . -type f ! -path './.heatfront-cache/*' ! -name .heatfront-output | sort); }
volatile='timing|seconds|[0-9]+\.[0-9]+ s\b|started|frames/s|MB'
status=0
for case in boundary-front:rigid gradual-onset:rigid registration-stress:rigid scan-distortion:rigid \
            scan-distortion:nonrigid slow-front:rigid; do
    run=${case%%:*} mode=${case##*:} name=${case/:/-}
    for side in base new; do
        bin=$base; [ $side = new ] && bin=$new
        rm -rf "$work/$side/$name"; mkdir -p "$work/$side"
        "$bin" run "$work/runs/$run" --out "$work/$side/$name" --mode "$mode" --quiet --force >/dev/null 2>&1
        echo $? > "$work/$side/$name.rc"
    done
    a=$work/base/$name b=$work/new/$name
    cmp -s "$a.rc" "$b.rc" || { echo "$name: exit $(cat "$b.rc"), base $(cat "$a.rc")"; status=1; }
    only=$(sort <(files "$a") <(files "$b") | uniq -u)
    [ -z "$only" ] || { echo "$name: files on one side only: $only"; status=1; }
    while read -r f; do
        [ -f "$b/$f" ] || continue
        case "$f" in
            ./summary.json)
                python3 - "$a/$f" "$b/$f" <<'PY' || { echo "$name: differs: $f"; status=1; }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for s in (a, b):
    for k in ("timings_s", "peak_memory_mb", "started_at", "run_dir"):
        s.pop(k, None)
if a != b:
    print("   keys:", sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k)))
    sys.exit(1)
PY
                ;;
            ./report.html)
                cmp -s <(grep -v -i -E "$volatile" "$a/$f") <(grep -v -i -E "$volatile" "$b/$f") \
                    || { echo "$name: differs: $f"; status=1; } ;;
            *) cmp -s "$a/$f" "$b/$f" || { echo "$name: differs: $f"; status=1; } ;;
        esac
    done < <(files "$a")
done
[ $status = 0 ] && echo "identical" || echo "outputs differ"
exit $status
