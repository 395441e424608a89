// Semantic analysis: loading a program with its imports, then checking it
// into the IR.
#ifndef FLOWC_SEMA_SEMA_H
#define FLOWC_SEMA_SEMA_H

#include <string>
#include <vector>

#include "compiler/ast/ast.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/ir/ir.h"

namespace flowc::sema {

/// A root file and every file it imports, parsed.
struct Program {
  /// In dependency order: each module after every module it imports; the
  /// root file last. Rules of imported files therefore come first.
  std::vector<ast::Module> modules;
  /// Whether the root file could be read at all (exit status 2 if not).
  bool root_readable = true;
  /// Totals over all modules, for --time-phases.
  unsigned rules_parsed = 0;
  unsigned ll_fallbacks = 0;
};

/// Options for loading and checking.
struct Options {
  /// --stdlib-dir: searched first for `import std.x;`.
  std::vector<std::string> stdlib_dirs;
  /// Search the installed share folder and the source tree's stdlib/ after
  /// stdlib_dirs (tests turn this off to stay hermetic).
  bool default_stdlib_dirs = true;
  /// --target: overrides the file's `target` declaration.
  std::string target_override;
};

/// The target profiles sema knows by name (the build issue gives them rules).
llvm::ArrayRef<llvm::StringRef> KnownTargets();

/// The directories searched for `import std.x;`, in order.
std::vector<std::string> StdlibSearchPath(const Options &options);

/// Reads and parses `root_path` and, transitively, its imports. Reports
/// unreadable files, missing imports and import cycles.
Program LoadProgram(llvm::StringRef root_path, const Options &options, diag::Engine &diags);

/// Checks a loaded program: names, constants, templates, types, value ranges,
/// contradictions, actions and rule kinds. Returns the IR of what was valid;
/// the policy is usable only if `diags` has no errors.
ir::Policy Check(const Program &program, const Options &options, diag::Engine &diags);

} // namespace flowc::sema

#endif // FLOWC_SEMA_SEMA_H
