#!/usr/bin/env bash
# Installs the build into a scratch prefix with 'cmake --install', then builds
# examples/runtime/steer_quickstart.c from outside the tree twice, with the
# CMake package (find_package(flowrt)) and with pkg-config, plus a C++
# program using flowrt.hpp, and runs them on libflowrt-sim.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
for f in include/flowrt/flowrt.h include/flowrt/flowrt.hpp include/flowrt/format.h \
         include/flowrt/sim.h include/flowrt/sim_validate.h bin/flowctl bin/flowc; do
  test -e "$prefix/$f" || { echo "not installed: $f"; exit 1; }
done
libdir="$(dirname "$(find "$prefix" -name libflowrt.so | head -1)")"
test -n "$libdir" || { echo "libflowrt.so not installed"; exit 1; }
test -e "$libdir/libflowrt-sim.a" || { echo "libflowrt-sim.a not installed"; exit 1; }
"$build/compiler/driver/flowc" build "$src/examples/quickstart.flow" -o "$tmp/quickstart.fbin"

# 1. The CMake package.
cmake -S "$src/examples/runtime" -B "$tmp/with-cmake" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/cmake.log"
cmake --build "$tmp/with-cmake" > "$tmp/build.log"
LD_LIBRARY_PATH="$libdir" "$tmp/with-cmake/steer_quickstart" "$tmp/quickstart.fbin" > "$tmp/cmake.out"

# 2. pkg-config.
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -Werror -o "$tmp/with-pc" "$src/examples/runtime/steer_quickstart.c" \
  $(pkg-config --cflags --libs flowrt flowrt-sim)
LD_LIBRARY_PATH="$libdir" "$tmp/with-pc" "$tmp/quickstart.fbin" > "$tmp/pc.out"
cmp "$tmp/cmake.out" "$tmp/pc.out"

# 3. C++ with flowrt.hpp: the same policy, errors as exceptions.
cat > "$tmp/raii.cpp" <<'CPP'
#include <flowrt/flowrt.hpp>
#include <flowrt/sim.h>
#include <cstdio>
int main(int, char **argv) {
  flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, nullptr, 1);
  flowrt::Policy policy = flowrt::Policy::Open(argv[1]);
  try {
    policy.BindQueue("no_such_queue", flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET));
  } catch (const flowrt::Error &e) {
    std::printf("error %d: %s\n", e.errnum(), e.what());
  }
  for (const char *q : {"rx_storage", "rx_monitor", "rx_default"}) {
    policy.BindQueue(q, flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET));
  }
  {
    flowrt::Installation inst(flowrt_sim_context(dev), policy);
    std::printf("%u flows, storage_packets %llu\n", inst.NumFlows(),
                (unsigned long long)inst.ReadCounter("storage_packets").first);
  }
  std::printf("%u flows after scope\n", flowrt_sim_num_flows(dev));
  flowrt_sim_close(dev);
  return 0;
}
CPP
c++ -std=c++17 -Wall -Wextra -Werror -o "$tmp/raii" "$tmp/raii.cpp" \
  $(pkg-config --cflags --libs flowrt flowrt-sim)
LD_LIBRARY_PATH="$libdir" "$tmp/raii" "$tmp/quickstart.fbin" > "$tmp/raii.out"
cat "$tmp/cmake.out" "$tmp/raii.out"
