#!/usr/bin/env bash
# Quick start, step 1: install dependencies, build, check the example policy
# and compile it for mlx5, showing the ibv_create_flow() rules it becomes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
build="${FLOWSTEER_BUILD_DIR:-$root/build}"
flowc="$build/compiler/driver/flowc"
echo "+ flowc check examples/quickstart.flow"
"$flowc" check "$root/examples/quickstart.flow"
echo "quickstart.flow: no problems found"
echo "+ flowc build examples/quickstart.flow --target mlx5 --emit=text"
"$flowc" build "$root/examples/quickstart.flow" --target mlx5 --emit=text
echo "+ flowc build examples/quickstart.flow --target mlx5 -o $build/quickstart.fbin"
"$flowc" build "$root/examples/quickstart.flow" --target mlx5 -o "$build/quickstart.fbin"
echo "wrote $build/quickstart.fbin ($(wc -c < "$build/quickstart.fbin") bytes)"
