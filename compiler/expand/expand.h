// Expansion: every rule of the checked policy as ternary matches only. Sets
// become several rules, ranges a prefix cover (or exact values where the
// target takes only full masks, when allowed), with limits on the growth.
#ifndef FLOWC_EXPAND_EXPAND_H
#define FLOWC_EXPAND_EXPAND_H

#include <cstdint>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/ir/ir.h"
#include "compiler/target/profile.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace flowc::expand {

/// One field constrained to `value` under `mask` (value & ~mask == 0).
struct TernaryMatch {
  ir::Layer layer;
  Field field;
  llvm::APInt value, mask;
};

/// One rule of the expanded policy: all or part of a source rule.
struct TernaryRule {
  /// The rule of ir::Policy::rules it comes from.
  uint32_t source;
  /// Sorted by (layer, field); no zero masks.
  llvm::SmallVector<TernaryMatch, 6> matches;
  /// The headers per layer: the source rule's, plus any a prerequisite
  /// brought in (`esp` without an IP header becomes an IPv4 and an IPv6 rule).
  ir::HeaderSet headers[ir::kNumLayers] = {0, 0, 0};

  TernaryRule() = default;
  TernaryRule(const TernaryRule &) = default;
  TernaryRule &operator=(const TernaryRule &) = default;
  // noexcept, so that a growing std::vector of rules moves them (the
  // SmallVector's move constructor is not declared noexcept, and without
  // this the vector would copy every rule and its values).
  TernaryRule(TernaryRule &&) noexcept = default;
  TernaryRule &operator=(TernaryRule &&) noexcept = default;
  ~TernaryRule() = default;
};

struct Options {
  /// --expand-masks: on a full-or-zero target, turn a partial mask, prefix
  /// or range into exact rules instead of reporting it.
  bool expand_masks = false;
  /// --max-expansion: the most rules one source rule may become.
  uint64_t max_per_rule = 4096;
  /// The most rules the whole policy may become.
  uint64_t max_total = 1u << 20;
  /// --warn-expansion: report FL8015 for a rule that becomes more hardware
  /// rules than this (0: never).
  uint64_t warn_per_rule = 64;
  /// For `flowc check`: count as usual and report what Expand reports, but
  /// keep one rule per source rule, made of each field's alternative with
  /// the fewest mask bits, so that legalization sees a partial mask if any
  /// alternative has one.
  bool representative_only = false;
  /// Merge a set's elements where their union is one ternary match, on
  /// fields that take any mask. The proof (compiler/verify) turns it off, so
  /// that it reads the source without the compiler's own rewriting.
  bool merge_sets = true;
};

struct Expanded {
  /// In source order (ir::Rule::source_order); the rules of one source rule
  /// are consecutive.
  std::vector<TernaryRule> rules;
};

/// Receives the expanded rules one at a time, in order.
using RuleSink = llvm::function_ref<void(TernaryRule &&)>;

/// Expands `policy` for `target` into `sink`, keeping nothing (see Expand).
void ExpandInto(const ir::Policy &policy, const target::Target &target, const Options &options,
                diag::Engine &diags, RuleSink sink);

/// Expands `policy` for `target`. Reports FL8003 (a partial mask where the
/// target takes full masks only) and FL8008 (over a limit); such rules are
/// left out.
Expanded Expand(const ir::Policy &policy, const target::Target &target, const Options &options,
                diag::Engine &diags);

/// Reports a problem of `rule` (may be null) at `loc`. Where `loc` is not in
/// the rule's own text (it is in a template the rule uses), a note points at
/// the rule.
diag::Builder ReportInRule(diag::Engine &diags, const ir::Rule *rule, diag::Kind kind,
                           llvm::SMLoc loc, const llvm::Twine &message);

/// A rule matching the packets both `a` and `b` match: their matches and
/// headers together (a field both fix to different values makes it empty).
TernaryRule Meet(const TernaryRule &a, const TernaryRule &b);

/// The smallest set of prefixes (value, mask) whose union is [lo, hi].
std::vector<std::pair<llvm::APInt, llvm::APInt>> PrefixCover(const llvm::APInt &lo,
                                                             const llvm::APInt &hi);

} // namespace flowc::expand

#endif // FLOWC_EXPAND_EXPAND_H
