// Parsing a Flow source buffer into an ast::Module.
#ifndef FLOWC_PARSE_PARSE_H
#define FLOWC_PARSE_PARSE_H

#include "compiler/ast/ast.h"
#include "compiler/diag/diagnostic.h"

namespace flowc::parse {

/// Parse options.
struct Options {
  /// Always predict with full LL (for tests comparing against SLL-first).
  bool force_ll = false;
};

/// Counters from one parse, for --time-phases and tests.
struct Stats {
  unsigned declarations = 0;
  unsigned rules = 0;
  /// Declarations that SLL could not parse and LL re-parsed.
  unsigned ll_fallbacks = 0;
};

/// Parses buffer `buffer_id` of `diags.sources()`. Lexical and syntax errors
/// become diagnostics; parsing recovers at the next declaration or rule, so
/// one file reports several errors. Never throws.
ast::Module Parse(unsigned buffer_id, diag::Engine &diags, const Options &options = {},
                  Stats *stats = nullptr);

} // namespace flowc::parse

#endif // FLOWC_PARSE_PARSE_H
