// The optimizer: exact answers from the packet model (analysis::PacketSpace)
// for the priority assignment in target/legalize.cpp. Hardware rules that no
// packet reaches are left out, and so are rules whose packets later rules
// would treat alike (redundant rules); two rules are kept in order only when
// a packet that reaches the first is matched by the second, so the levels
// used are the longest chain of rules that really compete for packets.
#ifndef FLOWC_OPT_OPT_H
#define FLOWC_OPT_OPT_H

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "compiler/analysis/packet_space.h"
#include "compiler/expand/overlap_index.h"
#include "compiler/target/legalize.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace flowc::opt {

struct Options {
  /// The most expanded rules the exact model takes on; above it the
  /// assignment falls back to pairwise overlap of cubes (flowc build's
  /// --optimize-limit; 0: no limit). The same as flowc check's
  /// --analysis-limit: the 100k ClassBench policy (159,025 expanded rules)
  /// builds as fast with the model as without it, and to fewer rules.
  uint64_t max_rules = 200000;
  /// The most BDD nodes (about 20 bytes each); past it, the same fallback.
  int max_nodes = 8 << 20;
  /// flowc build's --max-rules: the most hardware rules the policy may
  /// become when rules are split to fit the target's priority levels.
  uint64_t max_hw_rules = 1u << 20;
};

/// A target::Refiner over the exact model. Holds BuDDy's global state from
/// Prepare() until it is destroyed, so destroy it before another PacketSpace
/// is made (verify::Verify makes one).
class ExactRefiner : public target::Refiner {
public:
  explicit ExactRefiner(const Options &options) : options_(options) {}
  ~ExactRefiner() override;

  void Prepare(const ir::Policy &policy, const expand::Expanded &expanded,
               target::HwPolicy &hw) override;
  bool Reaches(size_t a, size_t b) override;
  void AddPiece(size_t piece, size_t whole) override;
  uint64_t MaxRules() const override { return options_.max_hw_rules; }

  /// Why the exact model was not used ("" if it was).
  const std::string &fallback() const { return fallback_; }

private:
  /// The rules of a port and direction, of which the trapping ones decide
  /// which packets reach a rule: indexed by their first fields, in policy
  /// order.
  struct Group {
    /// Its normal rules, `pass` rules too, in policy order (ids), each with
    /// its id as key.
    expand::OverlapIndex index;
    /// Per id: the place of the kept rule (pos_), or for a rule left out,
    /// the place of the next rule kept, so that places stay in order.
    std::vector<uint32_t> rules;
    /// Per id: its cube.
    std::vector<const analysis::PacketSpace::Literals *> cubes;
    /// Per id: not one of the trapping rules that take packets (a `pass`
    /// rule, or one that is left out).
    std::vector<bool> skip;
    /// Per id: left out by Prepare() because no packet reaches it. Such a
    /// rule is no earlier rule's packets' next taker either.
    std::vector<bool> absent;
    /// The ids of the rules before place `pos` (ExactRefiner::pos_, which
    /// is a kept rule's own place): those below the result.
    uint32_t Below(uint32_t pos) const {
      if (rules.empty() || rules.back() < pos) {
        return static_cast<uint32_t>(rules.size()); // all: while they are being added
      }
      return static_cast<uint32_t>(
          std::partition_point(rules.begin(), rules.end(), [&](uint32_t h) { return h < pos; }) -
          rules.begin());
    }
  };

  /// Calls `fn` with the id of each trapping rule of `group` with an id
  /// below `below` that holds the packet `bits` (analysis::Packet::bits),
  /// found by a point query.
  void ForHolders(const Group &group, const std::vector<uint8_t> &bits, uint32_t below,
                  llvm::function_ref<void(uint32_t)> fn) const;
  /// ForHolders() with the packet already packed (PacketSpace::Pack()).
  void ForHolders(const Group &group, const std::vector<uint8_t> &bits,
                  llvm::ArrayRef<uint64_t> packed, uint32_t below,
                  llvm::function_ref<void(uint32_t)> fn) const;
  /// Whether a trapping rule of `group` before place `pos` takes the packet
  /// `bits`.
  bool TakenBefore(const Group &group, const std::vector<uint8_t> &bits, uint32_t pos) const;
  /// Packets tried before an exact answer from sets: enough that most
  /// answers need no set, few enough to cost little when none settles it.
  static constexpr uint64_t kSamples = 4;
  /// Whether some packet of the cube `literals` is taken by no trapping
  /// rule of `group` with an id below `below`, exactly (without samples).
  bool Uncovered(const Group &group, const analysis::PacketSpace::Literals &literals,
                 uint32_t below) const;
  /// Whether some packet of the cube `literals` is taken by no trapping
  /// rule of `group` before place `pos`: sample packets first, then
  /// Uncovered().
  bool Reachable(const Group &group, const analysis::PacketSpace::Literals &literals,
                 uint32_t pos) const;

  /// Leaves out of `kept` (places in `rules`, in policy order, with pos_,
  /// literals_ and group_of_ by their place in `kept`) the rules that later
  /// rules make redundant; the groups keep them, skipped, and the places
  /// are renumbered over the rest. Returns how many.
  uint32_t RemoveRedundant(const ir::Policy &policy, const std::vector<target::HwRuleInfo> &rules,
                           std::vector<uint32_t> &kept);

  Options options_;
  std::unique_ptr<analysis::PacketSpace> space_;
  const expand::Expanded *expanded_ = nullptr;
  const target::HwPolicy *hw_ = nullptr;
  std::map<std::pair<int, unsigned>, Group> groups_;
  /// Per hardware rule: its group (null if not a normal rule), its place
  /// in policy order (a piece takes the place of the rule it was cut from)
  /// and its literals (the model's own, or a piece's in piece_literals_).
  std::vector<Group *> group_of_;
  std::vector<uint32_t> pos_;
  std::vector<const analysis::PacketSpace::Literals *> literals_;
  /// Per kept rule, until RemoveRedundant() is done: the seed of the first
  /// sample packet that reached it in Prepare() (kSamples: none did), and
  /// the ids of the later rules of its group that hold that packet, from
  /// reach_later_[reach_start_[k]] to reach_later_[reach_start_[k + 1]].
  std::vector<uint8_t> reached_by_;
  std::vector<uint32_t> reach_start_, reach_later_;
  std::deque<analysis::PacketSpace::Literals> piece_literals_;
  std::string fallback_;
};

} // namespace flowc::opt

#endif // FLOWC_OPT_OPT_H
