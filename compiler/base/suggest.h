// "Did you mean" suggestions for near-miss names.
#ifndef FLOWC_BASE_SUGGEST_H
#define FLOWC_BASE_SUGGEST_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

namespace flowc {

/// Returns the candidate closest to `name` by edit distance, or an empty
/// string when none is close enough to be a plausible typo (at most one edit
/// per three characters, and at least one). Ties go to the earliest candidate.
llvm::StringRef SuggestName(llvm::StringRef name, llvm::ArrayRef<llvm::StringRef> candidates);

} // namespace flowc

#endif // FLOWC_BASE_SUGGEST_H
