#!/usr/bin/env bash
# Feeds `heatfront` the inputs of a reliability attack and reports, for each, the exit code,
# the wall time and the peak resident memory (GNU time), with the first line of any error.
# Every case must end with its documented exit code, within the memory limit (400 MB).
# usage: scripts/attack-limits.sh [work-dir]     (needs python3 and /usr/bin/time)
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
work=${1:-/tmp/heatfront-attack}
limit_mb=400
swift build -c release --product heatfront >/dev/null || exit 1
bin=$(pwd)/.build/release/heatfront
rm -rf "$work"; mkdir -p "$work"; cd "$work"
$bin simulate --out base --preset boundary-front --size 256 --frames-per-step 5 >/dev/null || exit 1
fail=0

# case NAME EXPECTED_EXIT COMMAND…: runs one attack, prints one line.
case_() {
  local name=$1 want=$2; shift 2
  /usr/bin/time -f '%e %M' -o time.txt timeout 300 "$@" >out.txt 2>err.txt
  local code=$? t m
  read -r t m < <(tail -n 1 time.txt) 2>/dev/null || { t=?; m=0; }
  local mb=$((m / 1024)) ok=ok
  [ "$code" = "$want" ] || ok="FAIL (exit $code, expected $want)"
  [ "$mb" -le "$limit_mb" ] || ok="FAIL (RSS $mb MB > $limit_mb)"
  [ "$ok" = ok ] || fail=1
  printf '%-28s exit %3s  %6s s  %5s MB  %s  %s\n' "$name" "$code" "$t" "$mb" "$ok" "$(head -c 160 err.txt | head -1)"
}
copy() { rm -rf "$1"; cp -r base "$1"; }

# 1. A heating log of 10 million rows.
copy biglog
python3 - <<'EOF'
import random
random.seed(1)
rows = []
with open("biglog/heating_log.csv", "w") as f:
    f.write("time_s,temperature_C\n")
    n = 10_000_000
    for i in range(n):
        t = i * 330.0 / n
        T = 475 + 25 * min(3, int(t // 82)) + random.uniform(-0.1, 0.1)
        f.write(f"{t:.6f},{T:.3f}\n")
EOF
case_ "log 10M rows (inspect)" 0 $bin inspect biglog
# 2. Impossible temperatures.
copy hot; sed -i '5s/,.*/,1e308/' hot/heating_log.csv
case_ "log 1e308 °C" 2 $bin inspect hot
copy cold; sed -i '5s/,.*/,-1000/' cold/heating_log.csv
case_ "log -1000 °C" 2 $bin inspect cold
# 3. A log that started 600 s before the first frame.
copy preheat
python3 - <<'EOF'
rows = open("base/heating_log.csv").read().split("\n")[1:]
out = ["time_s,temperature_C"] + [f"{t},25.0" for t in range(540)] + [f"{t},{25 + 450 * (t - 540) / 60:.2f}" for t in range(540, 600)]
out += [f"{float(r.split(',')[0]) + 600:.3f},{r.split(',')[1]}" for r in rows if r]
open("preheat/heating_log.csv", "w").write("\n".join(out) + "\n")
EOF
case_ "log 600 s early (run)" 0 $bin run preheat --out preheat-out --quiet
grep -o '"heating_log_offset_s" : [0-9.]*' preheat-out/summary.json
# 4. No hold: min_hold_s longer than the run; duplicated time stamps.
copy nohold; echo "min_hold_s: 100000" >> nohold/heatfront.yaml
case_ "min_hold_s > run" 0 $bin run nohold --out nohold-out --quiet
copy dup; awk -F, 'NR==1 {print; next} {printf "%d,%s\n", int($1/100)*100, $2}' base/heating_log.csv > dup/heating_log.csv
case_ "duplicated log times" 0 $bin run dup --out dup-out --quiet
# 5. Special files and names.
copy odd; mkfifo odd/475C/pipe.tif; ln -s nowhere.tif odd/gone.tif; ln -s self.tif odd/self.tif
ln -s .. odd/475C/up; python3 -c "open(b'odd/500C/caf\xe9.tif', 'wb').write(open('base/500C/frame_0005.tif','rb').read())"
case_ "fifo, links, latin-1 name" 0 timeout 60 $bin run odd --out odd-out --quiet
grep -c '"reason"' odd-out/summary.json
# 6. Sparse MRC stacks: 100,000 blank pages; 2^31-1 claimed pages.
mrc() { python3 - "$1" "$2" <<'EOF'
import struct, sys
path, nz = sys.argv[1], int(sys.argv[2])
h = bytearray(1024)
struct.pack_into("<4i", h, 0, 16, 16, nz, 2)
h[208:212] = b"MAP "; h[212] = 0x44
with open(path, "wb") as f:
    f.write(h); f.truncate(1024 + 16 * 16 * 4 * nz)
EOF
}
copy mrc100k; mrc mrc100k/500C/blank.mrc 100000
case_ "sparse MRC 100k pages" 0 $bin run mrc100k --out mrc100k-out --quiet
copy mrcbomb; mrc mrcbomb/500C/bomb.mrc 2147483647
case_ "sparse MRC 2^31 pages" 0 $bin run mrcbomb --out mrcbomb-out --quiet
# 7. A PNG whose text chunk claims 2 GB (the decoders' own limits).
copy pngbomb
python3 - <<'EOF'
import struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0))
png += struct.pack(">I", 0x7FFFFFFF) + b"zTXt" + b"k\x00\x00" + zlib.compress(b"x" * 100000)[:3000]
open("pngbomb/475C/bomb.png", "wb").write(png)
EOF
case_ "PNG text-chunk bomb" 0 $bin run pngbomb --out pngbomb-out --quiet
# 8. Configs: deeply nested, huge.
copy deep; python3 -c "open('deep/heatfront.yaml','w').write('a: ' + '['*200000 + ']'*200000 + '\n')"
case_ "YAML nested 200k deep" 2 $bin inspect deep
[ "$(wc -c < err.txt)" -lt 500 ] || { echo "  error message of $(wc -c < err.txt) bytes"; fail=1; }
# 9. Output: the run folder itself, a locked folder, a closed pipe.
case_ "--out = run folder" 64 $bin run base --out base --quiet
$bin inspect base | head -c 100 >/dev/null; code=${PIPESTATUS[0]}
printf '%-28s exit %3s  %s\n' "inspect | head -c 100" "$code" "$([ "$code" = 0 ] && echo ok || { fail=1; echo FAIL; })"
# 10. The crafted HDF5 files the fuzzers found (Fuzz/known): one error line each.
for f in "$repo"/Fuzz/known/*; do
  case_ "known/$(basename "$f" | cut -c1-21)" 1 $bin inspect "$f"
done
exit $fail
