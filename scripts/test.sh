#!/usr/bin/env bash
# Quick start, step 2: install dependencies, build, and run every test
# (GoogleTest units and the lit golden tests) through ctest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
build="${FLOWSTEER_BUILD_DIR:-$root/build}"
ctest --test-dir "$build" --output-on-failure -j "${JOBS:-2}"
