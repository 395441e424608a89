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

std::vector<uint32_t> ExactRefiner::Before(const Group &group, const expand::TernaryRule &rule,
                                           const PacketSpace::Literals &literals, uint32_t pos,
                                           bool &covered) const {
  // Only the earlier rules whose cubes meet this one can take its packets;
  // the index finds them without looking at the others.
  std::vector<uint32_t> before;
  covered = false;
  group.index.Query(
      rule,
      [&](uint32_t id) {
        uint32_t h = group.rules[id];
        if (covered || group.skip[id] || !PacketSpace::MayOverlap(literals, *literals_[h])) {
          return;
        }
        before.push_back(h);
        covered = PacketSpace::CubeContains(*literals_[h], literals);
      },
      group.Below(pos));
  return before;
}

void ExactRefiner::ForHolders(const Group &group, const std::vector<uint8_t> &bits, uint32_t below,
                              llvm::function_ref<void(uint32_t)> fn) const {
  space_->QueryPoint(
      group.index, bits,
      [&](uint32_t id) {
        if (!group.skip[id] && PacketSpace::InCube(*group.cubes[id], bits)) {
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
          space_->QueryPoint(group->index, bits, [&](uint32_t id) {
            if (taken || id == own || !PacketSpace::InCube(*group->cubes[id], bits)) {
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
  std::vector<target::HwRuleInfo> rules;
  rules.reserve(kept.size());
  for (uint32_t i : kept) {
    rules.push_back(std::move(hw.rules[i]));
  }
  hw.rules = std::move(rules);
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
    const expand::TernaryRule &rule = expanded_->rules[rules[kept[k]].expanded];
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
    for (uint64_t seed = reached_by_[k]; seed < kSamples && !differs; ++seed) {
      auto next = static_cast<uint32_t>(kept.size());
      auto consider = [&](uint32_t id) {
        uint32_t j = group->rules[id];
        if (!group->absent[id] && j > k && !gone[j]) {
          next = std::min(next, j);
        }
      };
      if (seed == reached_by_[k]) {
        // Prepare() listed the later rules that hold this packet.
        for (uint32_t s = reach_start_[k]; s < reach_start_[k + 1]; ++s) {
          consider(reach_later_[s]);
        }
      } else {
        if (!space_->PickInCube(lit, seed, bits)) {
          break; // not reached: the sets below say so
        }
        if (TakenBefore(*group, bits, pos_[k])) {
          continue;
        }
        space_->QueryPoint(
            group->index, bits,
            [&](uint32_t id) {
              if (PacketSpace::InCube(*group->cubes[id], bits)) {
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
    std::vector<uint32_t> later;
    group->index.Query(
        rule,
        [&](uint32_t id) {
          uint32_t j = group->rules[id];
          if (!group->absent[id] && j > k && !gone[j] &&
              PacketSpace::MayOverlap(lit, *literals_[j])) {
            later.push_back(j);
          }
        },
        UINT32_MAX, later_ids);
    // Without a later rule of its outcome that meets it, some packet ends
    // elsewhere.
    if (llvm::none_of(later, alike)) {
      continue;
    }
    llvm::sort(later);
    // Literals settle the common case: the first later rule that contains
    // it is alike, and so is every later rule before that one that may meet
    // it. Each packet that reaches it then goes on to one of those.
    auto whole = llvm::find_if(
        later, [&](uint32_t j) { return PacketSpace::CubeContains(*literals_[j], lit); });
    if (whole != later.end() && std::all_of(later.begin(), std::next(whole), alike)) {
      gone[k] = true;
      ++count;
      continue;
    }
    // Sets for the rest, walking the later rules in order. `left` is its
    // packets that no later rule walked so far holds, the earlier trapping
    // rules not taken out: they are many for a wide rule, and only the
    // packets it shares with a later rule of another outcome, or that no
    // later rule holds, need them. A kept rule is reached, so none of them
    // contains it.
    bool covered = false;
    std::vector<uint32_t> before = Before(*group, rule, lit, pos_[k], covered);
    llvm::sort(before);
    // `set` less the earlier trapping rules that may meet `cube` (a cube
    // that holds `set`).
    auto unreached = [&](bdd set, const PacketSpace::Literals &cube) {
      for (uint32_t h : before) {
        if (set == bddfalse) {
          break;
        }
        if (PacketSpace::MayOverlap(*literals_[h], cube)) {
          set = bdd_apply(set, space_->Match(*literals_[h]), bddop_diff);
        }
      }
      return set;
    };
    bdd left = space_->Match(lit) & space_->Universe();
    bool redundant = true;
    for (uint32_t j : later) {
      if (left == bddfalse) {
        break;
      }
      bdd cube = space_->Match(*literals_[j]);
      bdd shared = left & cube;
      if (shared == bddfalse) {
        continue;
      }
      // Packets that reach it and go on to `j` first must not exist where
      // `j` has another outcome.
      if (!alike(j) && unreached(shared, PacketSpace::Meet(lit, *literals_[j])) != bddfalse) {
        redundant = false;
        break;
      }
      left = bdd_apply(left, cube, bddop_diff);
    }
    // Packets no later rule holds would go to the default rules.
    if (redundant && unreached(left, lit) == bddfalse && !PacketSpace::Overflowed()) {
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
