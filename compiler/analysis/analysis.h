// Lints from the exact packet-set model (packet_space.h): rules that no
// packet can reach, each with the rules that take its packets and a witness.
#ifndef FLOWC_ANALYSIS_ANALYSIS_H
#define FLOWC_ANALYSIS_ANALYSIS_H

#include <cstdint>
#include <functional>

#include "compiler/diag/diagnostic.h"
#include "compiler/ir/ir.h"

namespace flowc::analysis {

struct Options {
  /// The most BDD nodes the analysis may use (about 20 bytes each); past it
  /// the analysis stops and reports nothing more.
  int max_nodes = 8 << 20;
  /// The most expanded (ternary) rules analysed; a larger policy is not
  /// analysed at all (0: no limit). flowc check's --analysis-limit.
  uint32_t max_rules = 200000;
  /// FL9003 is reported when earlier rules take at least this percentage of
  /// a rule's packets (0: never).
  double partly_percent = 90;
  /// Report FL9004 (redundant-rule).
  bool redundant = true;
  /// Called as the rules are analysed: rules done of all (may be empty).
  std::function<void(uint64_t done, uint64_t total)> progress;
};

/// What one run did, for --time-phases.
struct Stats {
  uint32_t rules = 0;     ///< source rules analysed
  uint32_t expanded = 0;  ///< ternary rules they became
  uint32_t shadowed = 0;  ///< FL9001 reports
  uint32_t partly = 0;    ///< FL9003 reports
  uint32_t redundant = 0; ///< FL9004 reports
  bool complete = true;   ///< false if the analysis stopped early
  bool skipped = false;   ///< true if the policy was over max_rules
};

/// Reports FL9001 (shadowed-rule) for every normal rule of `policy` that no
/// packet reaches because earlier rules of its port and direction take all
/// its packets, and FL9003 (partly-shadowed) for one whose packets they take
/// for the most part (Options::partly_percent). Rules are read with the source semantics (sets and
/// ranges exactly, no target limits). Nothing is reported that the model cannot prove; see
/// docs/architecture.md, "Analysis".
Stats Analyze(const ir::Policy &policy, const Options &options, diag::Engine &diags);

/// Reports FL9002 (unused-object) for every queue, counter and handle of the
/// root file (SourceMgr buffer `root_buffer`) that no rule's action names,
/// in declaration order. Objects of imported files are shared declarations
/// that a policy may use in part, so they are not reported (and the driver
/// does not call this for a root file without rules, a library).
void ReportUnusedObjects(const ir::Policy &policy, unsigned root_buffer, diag::Engine &diags);

} // namespace flowc::analysis

#endif // FLOWC_ANALYSIS_ANALYSIS_H
