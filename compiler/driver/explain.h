// `flowc explain`: the documentation of a diagnostic code.
#ifndef FLOWC_DRIVER_EXPLAIN_H
#define FLOWC_DRIVER_EXPLAIN_H

#include "llvm/ADT/StringRef.h"

namespace flowc::driver {

/// The docs/diagnostics.md section of `code` ("FL3001"), or "" if it has none.
llvm::StringRef ExplainText(llvm::StringRef code);

} // namespace flowc::driver

#endif // FLOWC_DRIVER_EXPLAIN_H
