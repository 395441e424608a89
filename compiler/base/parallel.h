// Two pieces of work at once: flowc runs on machines with at least two
// cores, and a few phases split into two independent halves.
#ifndef FLOWC_BASE_PARALLEL_H
#define FLOWC_BASE_PARALLEL_H

#include <cstddef>
#include <future>

namespace flowc {

/// Below this many items of work, a second thread costs more than it saves.
inline constexpr size_t kParallelFrom = 4096;

/// Runs `high` on a second thread while `low` runs on this one, and returns
/// when both are done; serially when `parallel` is false or no thread can be
/// had. The two must share no state that either writes. An exception from
/// either reaches the caller (`high`'s once `low` is done).
template <typename Low, typename High> void RunBoth(Low &&low, High &&high, bool parallel = true) {
  if (!parallel) {
    low();
    high();
    return;
  }
  std::future<void> other = std::async(std::launch::async | std::launch::deferred, high);
  low();
  other.get();
}

} // namespace flowc

#endif // FLOWC_BASE_PARALLEL_H
