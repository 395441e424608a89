#include "compiler/opt/opt.h"

#include <algorithm>
#include <utility>

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::opt {

using analysis::PacketSpace;

ExactRefiner::~ExactRefiner() = default;

bool ExactRefiner::Reachable(const Group &group, const expand::TernaryRule &rule,
                             const PacketSpace::Literals &literals, uint32_t pos) const {
  // Only the earlier rules whose cubes meet this one can take its packets;
  // the index finds them without looking at the others.
  std::vector<uint32_t> before;
  bool covered = false;
  group.index.Query(rule, [&](uint32_t id) {
    uint32_t h = group.trapping[id];
    if (covered || pos_[h] >= pos || !PacketSpace::MayOverlap(literals, *literals_[h])) {
      return;
    }
    before.push_back(h);
    covered = PacketSpace::CubeContains(*literals_[h], literals);
  });
  if (covered) {
    return false; // one earlier rule takes all of it
  }
  bdd left = space_->Match(literals) & space_->Universe();
  if (left == bddfalse || before.empty()) {
    return left != bddfalse;
  }
  // Most answers are "yes", and a packet that no earlier rule matches shows
  // it without building their union: try a few before the exact answer.
  for (uint64_t seed = 0; seed < 4; ++seed) {
    analysis::Packet p = seed == 0 ? space_->Pick(left) : space_->Sample(left, seed);
    if (llvm::none_of(before,
                      [&](uint32_t h) { return PacketSpace::InCube(*literals_[h], p.bits); })) {
      return true;
    }
  }
  llvm::sort(before);
  for (uint32_t h : before) {
    left = bdd_apply(left, space_->Match(*literals_[h]), bddop_diff);
    if (left == bddfalse) {
      return false;
    }
  }
  return true;
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
  for (const target::HwRuleInfo &info : hw.rules) {
    if (policy.rules[info.source].kind == ast::RuleKind::kNormal) {
      groups_[group_key(info)].index.Plan(expanded.rules[info.expanded]);
    }
  }
  // Each rule's packets minus what the earlier trapping rules of its port
  // and direction take; a rule left with none changes nothing.
  std::vector<target::HwRuleInfo> kept;
  uint32_t removed = 0;
  for (const target::HwRuleInfo &info : hw.rules) {
    const ir::Rule &r = policy.rules[info.source];
    auto pos = static_cast<uint32_t>(kept.size());
    const expand::TernaryRule &rule = expanded.rules[info.expanded];
    const PacketSpace::Literals &literals = space_->CubeOfRule(info.expanded);
    if (r.kind != ast::RuleKind::kNormal) {
      kept.push_back(info);
      pos_.push_back(pos);
      literals_.push_back(&literals);
      group_of_.push_back(nullptr);
      continue;
    }
    Group &group = groups_[group_key(info)];
    if (!Reachable(group, rule, literals, pos)) {
      ++removed; // every packet it matches is taken before it
      continue;
    }
    pos_.push_back(pos);
    literals_.push_back(&literals);
    if (!r.pass) {
      group.index.Insert(static_cast<uint32_t>(group.trapping.size()), rule);
      group.trapping.push_back(pos);
    }
    kept.push_back(info);
    group_of_.push_back(&group);
  }
  if (PacketSpace::Overflowed()) {
    // The answers are not to be used; the rules go through unchanged.
    fallback_ = llvm::formatv("the exact model needs more than {0} BDD nodes", options_.max_nodes);
    group_of_.clear();
    groups_.clear();
    space_.reset();
    return;
  }
  hw.rules = std::move(kept);
  hw.removed += removed;
  hw.exact_levels = true;
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
  // The packets both match, less what the rules before `a` take: small
  // where `a` alone is not, so it is built when asked, not kept.
  expand::TernaryRule both = expand::Meet(expanded_->rules[hw_->rules[a].expanded],
                                          expanded_->rules[hw_->rules[b].expanded]);
  return Reachable(*group_of_[a], both, PacketSpace::Meet(*literals_[a], *literals_[b]), pos_[a]) ||
         PacketSpace::Overflowed();
}

} // namespace flowc::opt
