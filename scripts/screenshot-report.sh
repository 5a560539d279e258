#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium to a PNG, to check it as a person sees it.
# usage: scripts/screenshot-report.sh OUT_DIR/report.html docs/report-screenshot.png [height]
set -euo pipefail
html=$(realpath "$1"); png=$2; height=${3:-2400}
command -v chromium >/dev/null || bash "$(dirname "$0")/install-chromium.sh"
command -v chromium >/dev/null || { echo "chromium is not installed" >&2; exit 1; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,"$height" \
  --screenshot="$(realpath -m "$png")" "file://$html" 2>/dev/null
echo "wrote $png"
