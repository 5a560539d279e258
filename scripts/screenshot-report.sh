#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium to a PNG, to check it as a person sees it.
# usage: scripts/screenshot-report.sh OUT_DIR/report.html docs/report-screenshot.png [height]
set -euo pipefail
html=$(realpath "$1"); png=$2; height=${3:-2400}
command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,"$height" \
  --screenshot="$(realpath -m "$png")" "file://$html" 2>/dev/null
echo "wrote $png"
