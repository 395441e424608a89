// "Did you mean" suggestions for near-miss names.
#include "compiler/base/suggest.h"

#include <algorithm>

namespace flowc {
namespace {

// True if `b` is `a` with two adjacent characters swapped ("dts"/"dst"), the
// most common typo, which plain edit distance counts as two edits.
bool IsTransposition(llvm::StringRef a, llvm::StringRef b) {
  if (a.size() != b.size()) {
    return false;
  }
  size_t i = 0;
  while (i < a.size() && a[i] == b[i]) {
    ++i;
  }
  return i + 1 < a.size() && a[i] == b[i + 1] && a[i + 1] == b[i] &&
         a.substr(i + 2) == b.substr(i + 2);
}

} // namespace

llvm::StringRef SuggestName(llvm::StringRef name, llvm::ArrayRef<llvm::StringRef> candidates) {
  unsigned limit = std::max<unsigned>(1, static_cast<unsigned>(name.size()) / 3);
  llvm::StringRef best;
  unsigned best_distance = limit + 1;
  for (llvm::StringRef c : candidates) {
    if (c == name) {
      continue;
    }
    unsigned d = IsTransposition(name, c)
                     ? 1
                     : name.edit_distance(c, /*AllowReplacements=*/true, best_distance);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

} // namespace flowc
