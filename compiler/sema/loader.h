// Reading `.flow` files into the SourceMgr, with the input checks every file
// gets (readable, regular, .flow, no NUL bytes, valid UTF-8).
#ifndef FLOWC_SEMA_LOADER_H
#define FLOWC_SEMA_LOADER_H

#include <optional>

#include "compiler/diag/diagnostic.h"

namespace flowc::sema {

/// Why a file could not be loaded.
enum class LoadFailure { kNone, kUnreadable, kBadContent };

/// The result of LoadSource: a buffer id, or the reason there is none.
struct Loaded {
  unsigned buffer_id = 0;
  LoadFailure failure = LoadFailure::kNone;
};

/// Reads `path` into `diags.sources()`, recording `imported_from` (the
/// import's path; invalid for the root file) as the include location.
/// Reports FL0001..FL0004 at `imported_from`, or against the file name for
/// the root.
Loaded LoadSource(llvm::StringRef path, llvm::SMRange imported_from, diag::Engine &diags);

} // namespace flowc::sema

#endif // FLOWC_SEMA_LOADER_H
