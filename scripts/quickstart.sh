#!/usr/bin/env bash
# Quick start, step 1: install dependencies, build, and check the example
# policy with flowc.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
build="${FLOWSTEER_BUILD_DIR:-$root/build}"
echo "+ flowc check examples/quickstart.flow"
"$build/compiler/driver/flowc" check "$root/examples/quickstart.flow"
echo "quickstart.flow: no problems found"
