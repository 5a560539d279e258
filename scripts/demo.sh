#!/usr/bin/env bash
# The main job on a fresh Debian machine: installs the system libraries if missing, builds
# HeatFront in release mode and analyses the bundled sample heating run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
out=${1:-out/boundary-front}
.build/release/heatfront run SampleFrames/boundary-front --out "$out"
.build/release/heatfront validate "$out" --truth SampleFrames/boundary-front || true
echo "report: $out/report.html"
