// Legalization: each expanded rule as the specs, attr type and flags of one
// ibv_flow_attr that the target accepts, or diagnostics saying why not; then
// hardware priorities that keep the policy's order where it matters.
#ifndef FLOWC_TARGET_LEGALIZE_H
#define FLOWC_TARGET_LEGALIZE_H

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/emit/buffer.h"
#include "compiler/expand/expand.h"
#include "compiler/ir/ir.h"
#include "compiler/target/profile.h"

namespace flowc::target {

/// One rule for ibv_create_flow() with what the loader needs besides its
/// buffer.
struct HwRuleInfo {
  emit::HwRule rule;
  /// The source rule (ir::Policy::rules index).
  uint32_t source = 0;
  /// The queue the rule is created on (its `steer`), if any.
  std::optional<uint32_t> queue;
  /// The expanded rule it was made from (expand::Expanded::rules index).
  uint32_t expanded = 0;
};

/// The hardware rules of a policy, in the policy's order.
struct HwPolicy {
  std::vector<HwRuleInfo> rules;
  /// The rules after expansion, before budget fitting adds any.
  uint32_t expanded = 0;
  /// Priority levels used and available, per (direction, port) group, for
  /// --stats and messages.
  unsigned levels_used = 0;
  /// Rules a Refiner left out: no packet reaches them.
  uint32_t removed = 0;
  /// Rules a Refiner left out: later rules do the same with every packet
  /// they take.
  uint32_t redundant = 0;
  /// Whether the priority levels come from exact overlap (a Refiner).
  bool exact_levels = false;
  /// Budget fitting: rules that needed a level above the target's last,
  /// and the rules that replaced them.
  uint32_t split_from = 0, split_into = 0;
  /// Of split_from: rules already placed that were split again so that a
  /// later rule could fit below them.
  uint32_t lowered = 0;
  /// Budget fitting: rules added for the packets an earlier rule shares
  /// with a later one, above both, so that the two may share a level.
  uint32_t copies = 0;
  /// Budget fitting's goal levels, per group fitted: the layout GoalsFor()
  /// chose, and the copies its estimate expected (0: not estimated).
  struct FitGoals {
    std::string layout;
    uint64_t estimate = 0;
  };
  std::vector<FitGoals> fit_goals;
  /// Rules moved to a later level because the flow table of theirs would
  /// be full (mlx5, verbs-facts §3.8).
  uint32_t table_moves = 0;
  /// Flow tables whose rules are emitted most frequent match mask first,
  /// not in policy order, so that those masks take the big groups.
  uint32_t tables_reordered = 0;
  /// The longest chain of rules that compete for a packet with different
  /// outcomes, before budget fitting: the levels the rules need as written.
  unsigned levels_bound = 0;
};

/// Whether hardware rules `a` and `b` of `policy` do the same to a packet
/// they take: the same source rule, or the same queue, flags and actions.
/// A `pass` rule never does the same as another rule (two copies at one
/// priority would be one).
bool SameOutcome(const ir::Policy &policy, const HwRuleInfo &a, const HwRuleInfo &b);

/// What the optimizer (compiler/opt) knows from the exact packet model, for
/// the priority assignment. Rules are indexes into HwPolicy::rules.
class Refiner {
public:
  virtual ~Refiner();
  /// Called once the rules are legalized and in policy order, before any
  /// priority is assigned; may leave out rules that change nothing (their
  /// count goes to HwPolicy::removed).
  virtual void Prepare(const ir::Policy &policy, const expand::Expanded &expanded,
                       HwPolicy &hw) = 0;
  /// `a` precedes `b` in the same port and direction and their cubes
  /// overlap: whether some packet that reaches `a` (no earlier trapping rule
  /// takes it) is also matched by `b`. Only then must `a` stay before `b`.
  virtual bool Reaches(size_t a, size_t b) = 0;
  /// Rule `piece` (appended to HwPolicy::rules) is a part of rule `whole`
  /// that budget fitting made: it reaches what `whole` reaches of it.
  virtual void AddPiece(size_t piece, size_t whole) = 0;
  /// The most hardware rules budget fitting may lead to (--max-rules).
  virtual uint64_t MaxRules() const = 0;
};

/// Turns the expanded policy into hardware rules for `target` and assigns
/// hardware priorities. Rules with a problem are reported (FL8001-FL8014)
/// and left out; the result is usable only if `diags` has no errors.
HwPolicy Legalize(const ir::Policy &policy, const expand::Expanded &expanded, const Target &target,
                  diag::Engine &diags);

/// How far budget fitting is: `done` of `total` rules of the port and
/// direction being fitted.
using FitProgress = std::function<void(uint64_t done, uint64_t total)>;

/// Expand and Legalize rule by rule, so that each source rule's diagnostics
/// come together and in source order; `expanded` receives the expansion.
/// With a `refiner`, its exact answers decide which rules must stay ordered,
/// and rules are split or added to fit the target's levels (reported to
/// `progress`, if given).
HwPolicy ExpandAndLegalize(const ir::Policy &policy, const Target &target,
                           const expand::Options &options, diag::Engine &diags,
                           expand::Expanded &expanded, Refiner *refiner = nullptr,
                           FitProgress progress = {});

/// The target checks of `flowc check`: what Expand and Legalize report,
/// except the priority budget (FL8009), one representative expansion per
/// source rule at a time, keeping nothing, so that memory stays flat.
void CheckForTarget(const ir::Policy &policy, const Target &target, const expand::Options &options,
                    diag::Engine &diags);

} // namespace flowc::target

#endif // FLOWC_TARGET_LEGALIZE_H
