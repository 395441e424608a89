#!/usr/bin/env bash
# Configures and builds flowsteer into build/ (Ninja, -j2 by default).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FLOWSTEER_BUILD_DIR:-$root/build}"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
