// How full a NIC's flow tables get: mlx5 puts the rules of one priority in a
// table of a fixed number of entries, grouped by match mask (verbs-facts
// §3.8). flowc fills a model of each table in installation order, to move
// rules to other levels before the device would fail with ENOSPC, and to
// report the tables that still do not fit.
#ifndef FLOWC_TARGET_TABLES_H
#define FLOWC_TARGET_TABLES_H

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/emit/buffer.h"

namespace flowc::target {

/// One auto-grouped flow table (fs_core.c, alloc_auto_flow_group): a rule
/// joins a group of its match mask that has room, or else a new group is
/// made at the end: of `entries / (groups + 1)` entries while fewer than
/// `groups` such groups exist, of one entry after that. A rule that finds
/// neither fails (ENOSPC) and takes nothing.
class TableFill {
public:
  /// What a rule took.
  enum class Slot : uint8_t { kGroup, kSingle, kFull };

  TableFill(unsigned entries, unsigned groups)
      : entries_(entries), groups_(groups), group_size_(entries / (groups + 1)) {}

  /// Adds a rule whose match mask is `mask` (a small id per MaskKey()).
  Slot Add(uint32_t mask);
  /// Whether Add(mask) would find room.
  bool Fits(uint32_t mask) const;
  uint32_t rules() const { return rules_; }

  /// The most rules any table of this shape takes whatever their masks and
  /// order: each of the first groups may hold one rule only.
  static uint64_t SafeRules(unsigned entries, unsigned groups);

  /// The most rules that `tables` tables of this shape take, whatever
  /// their priorities and order, where `per_mask` counts the rules of each
  /// match mask. A table makes its big groups first, so it has one-entry
  /// groups only once all of its big ones exist: it holds at most its
  /// big groups' rules, each group of one mask, plus
  /// `entries - groups * (entries / (groups + 1))` others. The big groups
  /// hold the most when they take the most frequent masks whole groups at
  /// a time. An upper bound: the levels the rules must keep are not asked.
  static uint64_t MostRules(unsigned entries, unsigned groups, uint64_t tables,
                            std::vector<uint64_t> per_mask);

private:
  /// The size of the group a new mask (or a mask whose groups are full)
  /// gets: big while fewer than `groups_` big ones exist, then one entry.
  unsigned NextGroupSize() const { return big_ < groups_ && group_size_ > 0 ? group_size_ : 1; }

  unsigned entries_, groups_, group_size_;
  /// Free entries in the groups of each mask.
  std::vector<uint32_t> free_;
  unsigned big_ = 0;
  uint64_t used_ = 0;
  uint32_t rules_ = 0;
};

/// verbs-facts §3.3: a first spec that matches only multicast (an IPv4
/// multicast destination, or a destination MAC whose value and mask both
/// have the group bit) sends a trapping normal rule to mlx5's multicast
/// priority, after every other. INNER specs never count.
bool MulticastOnly(const emit::HwSpec &spec);

/// mlx5's table for a NORMAL rule of one port and direction, in lookup
/// order: 2 * priority for DONT_TRAP rules, 2 * priority + 1 for trapping
/// ones (verbs-facts §3.4), and kMulticastTable, after all of them, for a
/// trapping rule whose first spec matches only multicast when
/// `multicast_first_spec` (the profile's flag, §3.3).
inline constexpr uint64_t kMulticastTable = UINT64_MAX;
uint64_t TableOf(const emit::HwRule &rule, bool multicast_first_spec);

/// The match mask of a hardware rule, as a string: rules with equal strings
/// share flow groups. Equal spec masks give equal match criteria on the
/// device; unequal ones are taken to differ (a few differ only in specs the
/// device folds together), which can only make the model fuller.
std::string MaskKey(const emit::HwRule &rule);

} // namespace flowc::target

#endif // FLOWC_TARGET_TABLES_H
