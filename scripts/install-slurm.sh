#!/usr/bin/env bash
# Installs SLURM and munge from Debian's packages (slurm-wlm, munge) for the tests that
# start a single-node SLURM (Tests/ClusterTests, scripts/local-slurm.sh). Idempotent. Never
# fails the caller: without root or apt-get it says why, and those tests then skip.
set -uo pipefail
pkgs=(slurm-wlm munge)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo"; else
    echo "install-slurm: not root and no sudo: ${missing[*]} not installed (the SLURM tests will skip)" >&2; exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "install-slurm: no apt-get: ${missing[*]} not installed (the SLURM tests will skip)" >&2; exit 0
fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
  || echo "install-slurm: apt-get could not install ${missing[*]} (the SLURM tests will skip)" >&2
exit 0
