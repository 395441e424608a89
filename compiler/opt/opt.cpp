#include "compiler/opt/opt.h"

#include <algorithm>
#include <numeric>
#include <utility>

#include "compiler/base/parallel.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::opt {

using analysis::PacketSpace;

ExactRefiner::~ExactRefiner() = default;

void ExactRefiner::ForHolders(const Group &group, const std::vector<uint8_t> &bits, uint32_t below,
                              llvm::function_ref<void(uint32_t)> fn) const {
  PacketSpace::PackedBits packed;
  PacketSpace::Pack(bits, packed);
  ForHolders(group, bits, packed, below, fn);
}

void ExactRefiner::ForHolders(const Group &group, const std::vector<uint8_t> &bits,
                              llvm::ArrayRef<uint64_t> packed, uint32_t below,
                              llvm::function_ref<void(uint32_t)> fn) const {
  space_->QueryPoint(
      group.index, bits,
      [&](uint32_t id) {
        if (!group.skip[id] && PacketSpace::InCube(*group.cubes[id], packed)) {
          fn(id);
        }
      },
      below);
}

bool ExactRefiner::TakenBefore(const Group &group, const std::vector<uint8_t> &bits,
                               uint32_t pos) const {
  bool taken = false;
  ForHolders(group, bits, group.Below(pos), [&](uint32_t) { taken = true; });
  return taken;
}

bool ExactRefiner::Uncovered(const Group &group, const PacketSpace::Literals &literals,
                             uint32_t below) const {
  // Only the earlier rules that hold the least packet not yet taken are
  // asked for.
  std::vector<uint8_t> bits;
  return space_->Uncovered(
      literals,
      [&](const std::vector<uint8_t> &at, std::vector<const PacketSpace::Literals *> &out) {
        ForHolders(group, at, below, [&](uint32_t id) { out.push_back(group.cubes[id]); });
      },
      bits);
}

bool ExactRefiner::Reachable(const Group &group, const PacketSpace::Literals &literals,
                             uint32_t pos) const {
  // Most answers are "yes", and a packet of the rule that no earlier rule
  // takes shows it: the index finds the few rules that hold one packet,
  // where listing every earlier rule that meets the rule can take thousands.
  std::vector<uint8_t> bits;
  for (uint64_t seed = 0; seed < kSamples; ++seed) {
    if (!space_->PickInCube(literals, seed, bits)) {
      return false; // no packet of it can exist
    }
    if (!TakenBefore(group, bits, pos)) {
      return true;
    }
  }
  return Uncovered(group, literals, group.Below(pos));
}

void ExactRefiner::Prepare(const ir::Policy &policy, const expand::Expanded &expanded,
                           target::HwPolicy &hw) {
  hw_ = &hw;
  expanded_ = &expanded;
  if (options_.max_rules != 0 && expanded.rules.size() > options_.max_rules) {
    fallback_ = llvm::formatv("{0} expanded rules, over --optimize-limit ({1})",
                              expanded.rules.size(), options_.max_rules);
    return;
  }
  space_ = std::make_unique<PacketSpace>(expanded.rules, options_.max_nodes);
  auto group_key = [&](const target::HwRuleInfo &info) {
    const ir::Rule &r = policy.rules[info.source];
    return std::make_pair(static_cast<int>(r.direction), r.port);
  };
  // Every normal rule goes into its group's index, in policy order.
  auto n = static_cast<uint32_t>(hw.rules.size());
  std::vector<Group *> group_of(n, nullptr);
  std::vector<uint32_t> id_of(n, 0);
  std::map<const Group *, std::vector<expand::OverlapIndex::Item>> items;
  for (uint32_t i = 0; i < n; ++i) {
    const target::HwRuleInfo &info = hw.rules[i];
    const ir::Rule &r = policy.rules[info.source];
    if (r.kind != ast::RuleKind::kNormal) {
      continue;
    }
    Group &group = groups_[group_key(info)];
    auto id = static_cast<uint32_t>(group.cubes.size());
    group.index.Plan(expanded.rules[info.expanded]);
    items[&group].push_back({id, &expanded.rules[info.expanded], id});
    group_of[i] = &group;
    id_of[i] = id;
    group.cubes.push_back(&space_->CubeOfRule(info.expanded));
    group.skip.push_back(r.pass);
  }
  for (auto &[key, group] : groups_) {
    group.index.InsertAll(items[&group]);
    group.rules.assign(group.cubes.size(), 0);
    group.absent.assign(group.cubes.size(), false);
  }

  // A rule is left out when every packet it matches is taken by an earlier
  // trapping rule of its port and direction. Most rules are reached by a
  // sample packet that no earlier rule holds. An earlier rule that is left
  // out has each of its packets taken by a still earlier one, so the
  // samples may ask every earlier rule, and the rules do not depend on each
  // other: two threads sample them against the whole index (the index and
  // the model are only read). The later rules that hold the packet that
  // reached a rule are kept for RemoveRedundant().
  constexpr uint8_t kNoPacket = kSamples + 1;
  std::vector<uint8_t> reached(n, kSamples);
  std::vector<uint32_t> later_end(n, 0);
  auto sample = [&](uint32_t lo, uint32_t hi, std::vector<uint32_t> &later) {
    std::vector<uint8_t> bits;
    PacketSpace::PackedBits packed;
    for (uint32_t i = lo; i < hi; ++i) {
      const Group *group = group_of[i];
      if (group != nullptr) {
        uint32_t own = id_of[i];
        for (uint64_t seed = 0; seed < kSamples; ++seed) {
          if (!space_->PickInCube(*group->cubes[own], seed, bits)) {
            reached[i] = kNoPacket;
            break;
          }
          bool taken = false;
          size_t mark = later.size();
          PacketSpace::Pack(bits, packed);
          space_->QueryPoint(group->index, bits, [&](uint32_t id) {
            if (taken || id == own || !PacketSpace::InCube(*group->cubes[id], packed)) {
              return;
            }
            if (id > own) {
              later.push_back(id);
            } else if (!group->skip[id]) {
              taken = true;
            }
          });
          later.resize(taken ? mark : later.size());
          if (!taken) {
            reached[i] = static_cast<uint8_t>(seed);
            break;
          }
        }
      }
      later_end[i] = static_cast<uint32_t>(later.size());
    }
  };
  std::vector<uint32_t> later_lo, later_hi;
  uint32_t half = n / 2;
  RunBoth([&] { sample(0, half, later_lo); }, [&] { sample(half, n, later_hi); },
          n >= kParallelFrom);

  // The rules in order: those no sample reached are settled exactly, with
  // only the earlier trapping rules that hold the least packet not yet
  // taken.
  std::vector<uint32_t> kept;
  uint32_t removed = 0;
  reach_start_.assign(1, 0);
  for (uint32_t i = 0; i < n; ++i) {
    const target::HwRuleInfo &info = hw.rules[i];
    auto pos = static_cast<uint32_t>(kept.size());
    const PacketSpace::Literals &literals = space_->CubeOfRule(info.expanded);
    Group *group = group_of[i];
    if (group == nullptr) {
      kept.push_back(i);
      pos_.push_back(pos);
      literals_.push_back(&literals);
      group_of_.push_back(nullptr);
      reached_by_.push_back(kSamples);
      reach_start_.push_back(static_cast<uint32_t>(reach_later_.size()));
      continue;
    }
    uint32_t id = id_of[i];
    group->rules[id] = pos;
    bool reachable = reached[i] < kSamples;
    if (reached[i] == kSamples) {
      reachable = Uncovered(*group, literals, id);
    }
    if (!reachable) {
      ++removed; // every packet it matches is taken before it
      group->skip[id] = true;
      group->absent[id] = true;
      continue;
    }
    kept.push_back(i);
    pos_.push_back(pos);
    literals_.push_back(&literals);
    group_of_.push_back(group);
    reached_by_.push_back(reached[i]);
    if (reached[i] < kSamples) {
      const std::vector<uint32_t> &later = i < half ? later_lo : later_hi;
      uint32_t begin = i == 0 || i == half ? 0 : later_end[i - 1];
      reach_later_.insert(reach_later_.end(), later.begin() + begin, later.begin() + later_end[i]);
    }
    reach_start_.push_back(static_cast<uint32_t>(reach_later_.size()));
  }
  uint32_t redundant = PacketSpace::Overflowed() ? 0 : RemoveRedundant(policy, hw.rules, kept);
  reached_by_ = {};
  reach_start_ = {};
  reach_later_ = {};
  if (PacketSpace::Overflowed()) {
    // The answers are not to be used; the rules go through unchanged.
    fallback_ = llvm::formatv("the exact model needs more than {0} BDD nodes", options_.max_nodes);
    group_of_.clear();
    groups_.clear();
    space_.reset();
    return;
  }
  // The kept rules close up in place (`kept` ascends): a new vector would
  // fault in as many fresh pages as the rules take.
  size_t to = 0;
  for (uint32_t i : kept) {
    if (i != to) {
      hw.rules[to] = std::move(hw.rules[i]);
    }
    ++to;
  }
  hw.rules.erase(hw.rules.begin() + static_cast<std::ptrdiff_t>(to), hw.rules.end());
  hw.removed += removed;
  hw.redundant += redundant;
  hw.exact_levels = true;
}

uint32_t ExactRefiner::RemoveRedundant(const ir::Policy &policy,
                                       const std::vector<target::HwRuleInfo> &rules,
                                       std::vector<uint32_t> &kept) {
  // Last first: a rule is redundant when, without it, every packet it takes
  // goes on to a later kept rule with its outcome, before any rule with
  // another outcome or a `pass` rule (which would add a copy), and none is
  // left to the default rules. The later rules are final by then, and the
  // earlier ones only take packets away, so each verdict holds for the
  // rules that stay.
  std::vector<bool> gone(kept.size(), false);
  uint32_t count = 0;
  for (size_t k = kept.size(); k-- > 0;) {
    Group *group = group_of_[k];
    if (group == nullptr || policy.rules[rules[kept[k]].source].pass) {
      continue;
    }
    const PacketSpace::Literals &lit = *literals_[k];
    // The group's rules after this one: ids from `later_ids` on.
    uint32_t later_ids = group->Below(static_cast<uint32_t>(k + 1));
    auto alike = [&](uint32_t j) {
      return !policy.rules[rules[kept[j]].source].pass &&
             target::SameOutcome(policy, rules[kept[k]], rules[kept[j]]);
    };
    // Cheap first: a packet that reaches it and meets another outcome (or
    // no rule) first settles it. The index finds the rules that hold one
    // packet; listing every later rule that meets this one can take
    // thousands. Prepare() tried the same packets: those before the one
    // that reached the rule are taken before it, and that one is not.
    bool differs = false;
    std::vector<uint8_t> bits;
    PacketSpace::PackedBits packed;
    // The first later rule (place and id) that holds the packet that
    // reached it, for the sets below.
    auto first = static_cast<uint32_t>(kept.size());
    uint32_t first_id = 0;
    for (uint64_t seed = reached_by_[k]; seed < kSamples && !differs; ++seed) {
      auto next = static_cast<uint32_t>(kept.size());
      uint32_t next_id = 0;
      auto consider = [&](uint32_t id) {
        uint32_t j = group->rules[id];
        if (!group->absent[id] && j > k && !gone[j] && j < next) {
          next = j;
          next_id = id;
        }
      };
      if (seed == reached_by_[k]) {
        // Prepare() listed the later rules that hold this packet.
        for (uint32_t s = reach_start_[k]; s < reach_start_[k + 1]; ++s) {
          consider(reach_later_[s]);
        }
        first = next;
        first_id = next_id;
      } else {
        if (!space_->PickInCube(lit, seed, bits)) {
          break; // not reached: the sets below say so
        }
        if (TakenBefore(*group, bits, pos_[k])) {
          continue;
        }
        PacketSpace::Pack(bits, packed);
        space_->QueryPoint(
            group->index, bits,
            [&](uint32_t id) {
              if (PacketSpace::InCube(*group->cubes[id], packed)) {
                consider(id);
              }
            },
            UINT32_MAX, later_ids);
      }
      differs = next == kept.size() || !alike(next);
    }
    if (differs) {
      continue;
    }
    // Sets for the rest, one packet at a time as in Uncovered(): `left` is
    // its packets not yet settled. The least one is taken out with the cubes
    // of the earlier trapping rules that hold it (they take it before this
    // rule would), or else it goes first to a later rule L, which must be
    // alike. Then every packet of L that no rule of another outcome between
    // the two holds goes to L or to an alike rule before it, and is settled.
    // Each round takes out the packet it picked, so an earlier rule or an L
    // comes up at most once, and only those that hold a packet of the rule
    // are touched, not every rule that meets it.
    bdd left;
    bool built = false;
    bool redundant = true;
    std::vector<const PacketSpace::Literals *> found;
    std::vector<std::pair<uint32_t, uint32_t>> unlike; // (place, id)
    for (uint32_t next = first, next_id = first_id;;) {
      if (next == kept.size()) {
        if (!built) {
          left = space_->Match(lit) & space_->Universe();
          built = true;
        }
        if (left == bddfalse || PacketSpace::Overflowed()) {
          break;
        }
        bits = space_->Pick(left).bits;
        found.clear();
        ForHolders(*group, bits, group->Below(pos_[k]),
                   [&](uint32_t id) { found.push_back(group->cubes[id]); });
        if (!found.empty()) {
          for (const PacketSpace::Literals *c : found) {
            left = bdd_apply(left, space_->Match(*c), bddop_diff);
          }
          continue;
        }
        PacketSpace::Pack(bits, packed);
        space_->QueryPoint(
            group->index, bits,
            [&](uint32_t id) {
              uint32_t j = group->rules[id];
              if (!group->absent[id] && j > k && !gone[j] && j < next &&
                  PacketSpace::InCube(*group->cubes[id], packed)) {
                next = j;
                next_id = id;
              }
            },
            UINT32_MAX, later_ids);
        if (next == kept.size() || !alike(next)) {
          redundant = false; // it goes to the default rules or elsewhere
          break;
        }
      }
      // The rules between the two with another outcome (or `pass`) that
      // may hold packets of both, asked of the index with the narrower of
      // the two (the one whose cube fixes more variables).
      PacketSpace::Literals meet = PacketSpace::Meet(lit, *literals_[next]);
      uint32_t narrow = PacketSpace::FixedVars(*literals_[next]) > PacketSpace::FixedVars(lit)
                            ? next
                            : static_cast<uint32_t>(k);
      unlike.clear();
      group->index.Query(
          expanded_->rules[rules[kept[narrow]].expanded],
          [&](uint32_t id) {
            uint32_t j = group->rules[id];
            if (!group->absent[id] && j > k && j < next && !gone[j] && !alike(j) &&
                PacketSpace::MayOverlap(meet, *literals_[j])) {
              unlike.emplace_back(j, id);
            }
          },
          next_id, later_ids);
      // A packet of both and of such a rule U that no earlier trapping
      // rule takes and no later rule before U holds goes to U first: it
      // shows the rule is not redundant. Without one, every packet of L
      // that reaches the rule goes to L or to an alike rule before it.
      llvm::sort(unlike);
      uint32_t below = group->Below(pos_[k]);
      for (auto [j, id] : unlike) {
        PacketSpace::Literals cube = PacketSpace::Meet(meet, *literals_[j]);
        if (space_->Uncovered(
                cube,
                [&](const std::vector<uint8_t> &at,
                    std::vector<const PacketSpace::Literals *> &out) {
                  PacketSpace::Pack(at, packed);
                  ForHolders(*group, at, packed, below,
                             [&](uint32_t h) { out.push_back(group->cubes[h]); });
                  space_->QueryPoint(
                      group->index, at,
                      [&](uint32_t h) {
                        uint32_t i = group->rules[h];
                        if (!group->absent[h] && i > k && !gone[i] &&
                            PacketSpace::InCube(*group->cubes[h], packed)) {
                          out.push_back(group->cubes[h]);
                        }
                      },
                      id, later_ids);
                },
                bits)) {
          redundant = false;
          break;
        }
      }
      if (!redundant || PacketSpace::Overflowed()) {
        break;
      }
      if (!built && PacketSpace::CubeContains(*literals_[next], lit)) {
        break; // literals settle the common case: it all goes to L
      }
      if (!built) {
        left = space_->Match(lit) & space_->Universe();
        built = true;
      }
      left = bdd_apply(left, space_->Match(*literals_[next]), bddop_diff);
      next = static_cast<uint32_t>(kept.size());
    }
    if (redundant && !PacketSpace::Overflowed()) {
      gone[k] = true;
      ++count;
    }
  }
  if (count == 0) {
    return 0;
  }
  // The rules that stay, and the model's view of them: a packet that
  // reached a removed rule now reaches the rules after it.
  std::vector<uint32_t> stay;
  std::vector<const PacketSpace::Literals *> literals;
  std::vector<Group *> group_of;
  for (size_t k = 0; k < kept.size(); ++k) {
    if (!gone[k]) {
      stay.push_back(kept[k]);
      literals.push_back(literals_[k]);
      group_of.push_back(group_of_[k]);
    }
  }
  kept = std::move(stay);
  literals_ = std::move(literals);
  // The groups keep the rules that went, skipped, at the place of the next
  // rule that stays, so that each group's places stay in order.
  std::vector<uint32_t> renumbered(gone.size() + 1);
  uint32_t stays = 0;
  for (size_t k = 0; k < gone.size(); ++k) {
    renumbered[k] = stays;
    stays += gone[k] ? 0 : 1;
  }
  renumbered[gone.size()] = stays;
  for (auto &[key, group] : groups_) {
    for (size_t id = 0; id < group.rules.size(); ++id) {
      if (!group.absent[id] && gone[group.rules[id]]) {
        group.skip[id] = true;
      }
      group.rules[id] = renumbered[group.rules[id]];
    }
  }
  pos_.resize(kept.size());
  std::iota(pos_.begin(), pos_.end(), 0);
  group_of_ = std::move(group_of);
  return count;
}

void ExactRefiner::AddPiece(size_t piece, size_t whole) {
  if (!space_) {
    return;
  }
  if (pos_.size() <= piece) {
    group_of_.resize(piece + 1, nullptr);
    pos_.resize(piece + 1, 0);
    literals_.resize(piece + 1);
  }
  // A piece reaches what its rule reaches of it: the same place in order.
  literals_[piece] =
      &piece_literals_.emplace_back(space_->CubeOf(expanded_->rules[hw_->rules[piece].expanded]));
  pos_[piece] = pos_[whole];
  group_of_[piece] = group_of_[whole];
}

bool ExactRefiner::Reaches(size_t a, size_t b) {
  if (!space_ || a >= pos_.size() || b >= literals_.size() || group_of_[a] == nullptr) {
    return true; // no exact answer: overlapping cubes stay ordered
  }
  if (!PacketSpace::MayOverlap(*literals_[a], *literals_[b])) {
    return false;
  }
  // The packets both match, less what the rules before `a` take.
  return Reachable(*group_of_[a], PacketSpace::Meet(*literals_[a], *literals_[b]), pos_[a]) ||
         PacketSpace::Overflowed();
}

} // namespace flowc::opt
