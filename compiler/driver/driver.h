// The flowc command line: subcommands, options and the pipeline.
#ifndef FLOWC_DRIVER_DRIVER_H
#define FLOWC_DRIVER_DRIVER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

namespace flowc::driver {

/// Exit statuses (docs/cli.md).
enum ExitCode : int { kExitClean = 0, kExitErrors = 1, kExitUsage = 2 };

/// Runs flowc with `args` (without the program name), writing results to
/// `out` and diagnostics to `err`. Never throws.
int Main(llvm::ArrayRef<llvm::StringRef> args, llvm::raw_ostream &out, llvm::raw_ostream &err);

} // namespace flowc::driver

#endif // FLOWC_DRIVER_DRIVER_H
