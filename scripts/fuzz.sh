#!/usr/bin/env bash
# Fuzzes HeatFront's frame decoders (DM3/DM4, SER, MRC, TIFF, PNG) with libFuzzer + AddressSanitizer.
#
#   scripts/fuzz.sh [seconds]      (default 60)
#
# Builds Fuzz/ (its own SwiftPM package, depending on this one by path) with every Swift
# module instrumented, seeds it with the corpus's small DM/TIFF/SER/MRC files
# (../shared/corpus/formats, when present), a small 16-bit PNG with a text chunk on each side
# of its pixels, and the crashes/ folder of earlier runs, and runs libFuzzer for that long with memory limits. Exits non-zero when libFuzzer finds a crash,
# a leak, a timeout or an oversized allocation; the reproducer is left in Fuzz/crashes/.
set -euo pipefail

seconds="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$here/Fuzz"
corpus_src="$here/../shared/corpus/formats"
work="$fuzz/.build-corpus"            # grows between runs; ignored by git
crashes="$fuzz/crashes"
mkdir -p "$work" "$crashes"

echo "== building the fuzzer (debug, -sanitize=fuzzer,address)"
(cd "$fuzz" && swift build --product FrameFuzzer \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -g 2>&1 | tail -n 5)
bin="$(cd "$fuzz" && swift build --product FrameFuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -g --show-bin-path)/FrameFuzzer"

# Seeds: the corpus's DM, TIFF, SER, MRC and PNG files up to 128 KiB (larger ones slow every
# mutation down without adding structure).
seeds="$fuzz/.build-seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
if [ -d "$corpus_src" ]; then
    find "$corpus_src" -type f \( -name '*.dm3' -o -name '*.dm4' -o -name '*.tif' -o -name '*.ser' -o -name '*.mrc' -o -name '*.png' \) \
        -size -129k -print0 | while IFS= read -r -d '' f; do
        cp "$f" "$seeds/$(basename "$f" | tr ' ,' '__')"
    done
fi
# The corpus has no PNG: a 16×16 16-bit grey one, tEXt before and after the image data.
python3 - "$seeds/seed16.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
rows = b"".join(b"\0" + b"".join(struct.pack(">H", (x * 977 + y * 131) % 65536) for x in range(16)) for y in range(16))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 16, 0, 0, 0, 0))
       + chunk(b"tEXt", b"Comment\0before") + chunk(b"IDAT", zlib.compress(rows))
       + chunk(b"tEXt", b"Comment\0after") + chunk(b"IEND", b""))
open(sys.argv[1], "wb").write(png)
PY
echo "== $(ls "$seeds" | wc -l) seed files, fuzzing for ${seconds}s"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/heatfront-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
export HEATFRONT_FUZZ_SCRATCH="$scratch"

set +e
"$bin" "$work" "$seeds" "$crashes" \
    -max_total_time="$seconds" -max_len=131072 -rss_limit_mb=2048 -malloc_limit_mb=512 \
    -timeout=20 -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | tail -n 40
status="${PIPESTATUS[0]}"
set -e
if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: libFuzzer stopped with status $status; reproducers in $crashes" >&2
    exit 1
fi
echo "fuzz.sh: no crash in ${seconds}s"
