#!/usr/bin/env bash
# Fuzzes HeatFront's inputs with libFuzzer + AddressSanitizer, one target per input kind:
# tiff png dm ser emi mrc emd-velox emd-berkeley hspy zspy heating-log config run-folder.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]   each target (default: all) for SECONDS (default 60)
#   scripts/fuzz.sh --smoke               build, then 200 inputs per target from its seeds
#                                         alone, with a fixed random seed (the test suite's
#                                         smoke: deterministic, about half a minute after the
#                                         build; skips with a message when this toolchain
#                                         cannot build -sanitize=fuzzer)
#
# The fuzzer runs under `nice -n 10` (FUZZ_NICE sets another niceness).
#
# Builds Fuzz/ (its own SwiftPM package, depending on this one by path) with every Swift
# module instrumented. Each target starts from its seeds in Fuzz/seeds/TARGET/, the corpus
# files of its format up to 64 KiB (../shared/corpus/formats, when present), its corpus of
# earlier runs (Fuzz/.build-corpus/TARGET, git-ignored) and the reproducers of earlier
# crashes (Fuzz/crashes/TARGET/). libFuzzer's whole output goes to Fuzz/.build-logs/TARGET.log
# (TARGET.smoke.log for --smoke);
# its final coverage and execution counts are printed and appended to
# Fuzz/.build-logs/totals.tsv. Exits non-zero when any target finds a crash, a leak, a
# timeout or an oversized allocation; the reproducer is left in Fuzz/crashes/TARGET/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz="$here/Fuzz"
all_targets=(tiff png dm ser emi mrc emd-velox emd-berkeley hspy zspy heating-log config run-folder)

smoke=0
seconds=60
if [ "${1:-}" = "--smoke" ]; then smoke=1; shift; fi
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then seconds="$1"; shift; fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

# Can this toolchain build a libFuzzer binary at all?
probe="$(mktemp -d "${TMPDIR:-/tmp}/heatfront-fuzz-probe.XXXXXX")"
printf '@_cdecl("LLVMFuzzerTestOneInput") public func f(_ d: UnsafePointer<UInt8>?, _ n: Int) -> Int32 { 0 }\n' > "$probe/p.swift"
if ! swiftc -sanitize=fuzzer,address -parse-as-library "$probe/p.swift" -o "$probe/p" >/dev/null 2>&1; then
    rm -rf "$probe"
    if [ "$smoke" = 1 ]; then
        echo "fuzz.sh: skipped: this Swift toolchain cannot build with -sanitize=fuzzer,address"
        exit 0
    fi
    echo "fuzz.sh: this Swift toolchain cannot build with -sanitize=fuzzer,address" >&2
    exit 1
fi
rm -rf "$probe"

echo "== building the fuzzer (debug, -sanitize=fuzzer,address)"
flags=(--product FrameFuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -g)
(cd "$fuzz" && swift build "${flags[@]}" 2>&1 | grep -E "error|warning: unre|Compiling|Build|Linking" | grep -v "^\[" | tail -n 5)
bin="$(cd "$fuzz" && swift build "${flags[@]}" --show-bin-path)/FrameFuzzer"
[ -x "$bin" ] || { echo "fuzz.sh: the fuzzer did not build" >&2; exit 1; }

corpus_src="$here/../shared/corpus/formats"
logs="$fuzz/.build-logs"
mkdir -p "$logs"
# Inputs are written to a scratch folder for every execution: in memory when /dev/shm exists.
scratch_parent="${TMPDIR:-/tmp}"; [ -d /dev/shm ] && [ -w /dev/shm ] && scratch_parent=/dev/shm
scratch="$(mktemp -d "$scratch_parent/heatfront-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# The corpus files each target starts from (its format's extensions).
extensions() {
    case "$1" in
        tiff) echo tif ;; png) echo png ;; dm) echo "dm3 dm4" ;; ser) echo ser ;; emi) echo emi ;;
        mrc) echo mrc ;; emd-velox) echo emd ;; emd-berkeley) echo emd ;; hspy) echo "hspy hdf5" ;;
        zspy) echo zspy ;; *) echo "" ;;
    esac
}

failed=()
for t in "${targets[@]}"; do
    seeds="$fuzz/.build-seeds/$t" work="$fuzz/.build-corpus/$t" crashes="$fuzz/crashes/$t"
    rm -rf "$seeds" && mkdir -p "$seeds" "$work" "$crashes"
    [ -d "$fuzz/seeds/$t" ] && cp "$fuzz/seeds/$t"/* "$seeds"/ 2>/dev/null || true
    budget=(-max_total_time="$seconds")
    # HDF5 keeps freed memory in its own free lists, so nearly every input looks like a leak
    # and LeakSanitizer scans the heap after it (a 3-4x slowdown); the leaks it would find
    # there are HDF5's own (see Fuzz/README.md), so the HDF5 targets run without leak checks.
    # HDF5 also mallocs metadata sizes read from the file: a null return (as glibc gives for
    # an impossible size, and HDF5 turns into an error) rather than a sanitizer stop.
    asan="allocator_may_return_null=0"
    case "$t" in emd-velox|emd-berkeley|hspy) budget+=(-detect_leaks=0); asan="allocator_may_return_null=1" ;; esac
    # A run-folder input touches HDF5, Foundation's directory enumeration and every reader,
    # whose retained caches make most inputs look like leaks: the heap scan after each one
    # cut throughput sixfold. Long runs skip leak checks there; the smoke keeps them.
    [ "$t" = run-folder ] && [ "$smoke" = 0 ] && budget+=(-detect_leaks=0)
    if [ "$smoke" = 1 ]; then
        # The repository's seeds only, a fixed seed and a fixed number of inputs: the same
        # inputs on every run, so the smoke cannot fail by chance.
        work="$scratch/$t-corpus"; mkdir -p "$work"
        budget=(-runs=200 -seed=1)
    elif [ -d "$corpus_src" ]; then
        for ext in $(extensions "$t"); do
            find "$corpus_src" -type f -name "*.$ext" -size -65k -print0 | while IFS= read -r -d '' f; do
                cp "$f" "$seeds/$(basename "$f" | tr ' ,' '__')"
            done
        done
    fi
    mkdir -p "$scratch/$t"
    # A smoke keeps its own log, so a test run beside a long fuzz run does not truncate it.
    log="$logs/$t.log"; [ "$smoke" = 1 ] && log="$logs/$t.smoke.log"
    set +e
    # libhdf5 1.10 loses the partly decoded object header of a malformed file (a few kB per
    # such file): those leaks are suppressed (Fuzz/README.md, "HDF5"); every other leak and
    # every memory error stops the run.
    HEATFRONT_FUZZ_SCRATCH="$scratch/$t" LSAN_OPTIONS="suppressions=$fuzz/lsan-suppressions.txt" \
    ASAN_OPTIONS="$asan" \
    nice -n "${FUZZ_NICE:-10}" "$bin" "$t" "$work" "$seeds" "$crashes" \
        "${budget[@]}" -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -timeout=20 -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    # The last status line ("#N DONE cov: … ft: … corp: … exec/s: …") and the final stats.
    last="$(grep -aE '^#[0-9]+' "$log" | tail -n 1)"
    runs="$(grep -aE '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
    rss="$(grep -aE '^stat::peak_rss_mb' "$log" | awk '{print $2}')"
    cov="$(echo "$last" | grep -oE 'cov: [0-9]+' | awk '{print $2}')"
    ft="$(echo "$last" | grep -oE 'ft: [0-9]+' | awk '{print $2}')"
    printf '%-13s %s\n' "$t" "${last:-no status line}"
    printf '%-13s executions %s, peak RSS %s MB\n' "" "${runs:-?}" "${rss:-?}"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "${runs:-0}" "$seconds" "${cov:-}" "${ft:-}" "$status" >> "$logs/totals.tsv"
    if [ "$status" -ne 0 ]; then
        failed+=("$t")
        grep -aE 'ERROR|SUMMARY|Test unit written|^==[0-9]+==' "$log" | head -n 20 >&2 || true
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: libFuzzer stopped on ${failed[*]}; logs in $logs, reproducers in $fuzz/crashes/" >&2
    exit 1
fi
[ "$smoke" = 1 ] && echo "fuzz.sh: smoke passed (200 inputs per target: ${targets[*]})" && exit 0
echo "fuzz.sh: no crash in ${seconds}s per target (${targets[*]})"
