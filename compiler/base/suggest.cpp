// "Did you mean" suggestions for near-miss names.
#include "compiler/base/suggest.h"

#include <algorithm>

namespace flowc {

llvm::StringRef SuggestName(llvm::StringRef name, llvm::ArrayRef<llvm::StringRef> candidates) {
  unsigned limit = std::max<unsigned>(1, static_cast<unsigned>(name.size()) / 3);
  llvm::StringRef best;
  unsigned best_distance = limit + 1;
  for (llvm::StringRef c : candidates) {
    if (c == name) {
      continue;
    }
    unsigned d = name.edit_distance(c, /*AllowReplacements=*/true, best_distance);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

} // namespace flowc
