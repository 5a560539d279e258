#!/usr/bin/env bash
# Runs HeatFront's whole test suite on a fresh Debian machine: installs the system
# libraries if missing, then `swift test` in release mode (numeric loops run 10–50×
# slower in debug builds), then a short fuzz smoke: every fuzz target of Fuzz/ run on its
# repository seeds (scripts/fuzz.sh --smoke; skipped, with a message, on a toolchain that
# cannot build libFuzzer binaries). Tests that read ../shared/ skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift test -c release "$@"
bash scripts/fuzz.sh --smoke
