#!/usr/bin/env bash
# Decoding speed: MB/s of pixel data for uncompressed 16-bit 2048×2048 frames in TIFF and
# DM4 (written by HeatFront's own writers via a simulated run), one core.
# usage: scripts/bench-decode.sh [work-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/heatfront-bench-decode}
swift build -c release --product heatfront --product heatfront-bench >/dev/null 2>&1 || swift build -c release >/dev/null
bin=.build/release
rm -rf "$work"; mkdir -p "$work"
for fmt in tiff dm4; do
    $bin/heatfront simulate --out "$work/$fmt" --preset registration-stress --size 2048 --frames-per-step 2 --format $fmt >/dev/null
    files=$(find "$work/$fmt" -name "*.tif" -o -name "*.dm4" | sort | head -8)
    printf '%-5s ' "$fmt"; $bin/heatfront-bench decode $files --repeat 5
done
