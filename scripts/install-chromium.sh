#!/usr/bin/env bash
# Installs Debian's chromium for the test that renders report.html in a headless browser
# (Tests/PipelineTests/FigureOutputTests, reportRendersInChromiumWithEveryImageLoaded) and for scripts/screenshot-report.sh. Idempotent.
# Never fails the caller: without root or apt-get it says why, and that test then skips.
set -uo pipefail
dpkg -s chromium >/dev/null 2>&1 && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "install-chromium: not root and no sudo: chromium not installed (the browser test will skip)" >&2; exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "install-chromium: no apt-get: chromium not installed (the browser test will skip)" >&2; exit 0
fi
echo "installing: chromium"
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
  || echo "install-chromium: apt-get could not install chromium (the browser test will skip)" >&2
exit 0
