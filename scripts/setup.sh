#!/usr/bin/env bash
# Installs every Debian package that building and testing flowsteer need.
# Non-interactive, idempotent: packages already present are skipped.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  antlr4 libantlr4-runtime-dev
  llvm-14-dev llvm-14-tools
  libgtest-dev googletest
  libibverbs-dev libpcap-dev libbdd-dev
  python3 zlib1g-dev libzstd-dev libtinfo-dev libxml2-dev libedit-dev libffi-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
