#!/usr/bin/env bash
# Runs HeatFront's whole test suite on a fresh Debian machine: installs the system
# libraries if missing, then `swift test` in release mode (numeric loops run 10–50×
# slower in debug builds), then a short fuzz smoke: every fuzz target of Fuzz/ run on its
# repository seeds (scripts/fuzz.sh --smoke; skipped, with a message, on a toolchain that
# cannot build libFuzzer binaries). Tests that read ../shared/ skip when it is absent. SLURM
# and munge are installed for the tests that start a single-node SLURM (they skip where it
# cannot run). Chromium is installed for the test that renders report.html in a headless
# browser (scripts/install-chromium.sh; that test skips where it cannot be installed).
# The tests write their runs and outputs under a scratch TMPDIR of their own, removed when
# they pass and kept (its path printed) when they fail, so repeated runs leave nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/install-slurm.sh
bash scripts/install-chromium.sh
scratch=$(mktemp -d "${TMPDIR:-/tmp}/heatfront-tests.XXXXXX")
chmod 1777 "$scratch"  # like /tmp: the tests that run heatfront as the user nobody reach their files
TMPDIR="$scratch" swift test -c release "$@" || { status=$?; echo "test files kept in $scratch" >&2; exit $status; }
rm -rf "$scratch"
bash scripts/fuzz.sh --smoke
