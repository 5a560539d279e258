#!/usr/bin/env bash
# Installs the system libraries HeatFront links against (Debian/Ubuntu).
# Idempotent: does nothing when every package is already present.
set -euo pipefail
# libzip and libblosc (with libzstd) read HyperSpy's ZSpy files: a zip of zarr chunks.
# gnuplot-nox draws the plots of plots/ (SVG and 300-dpi PNG through cairo); without it a run
# says so once and writes them as SVG only. cairo (libcairo2-dev) draws the image figures'
# title, scale bar and legend over their pictures.
pkgs=(pkg-config zlib1g-dev libpng-dev libtiff-dev libfftw3-dev libhdf5-dev libzip-dev libblosc-dev libzstd-dev libcairo2-dev gnuplot-nox)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
