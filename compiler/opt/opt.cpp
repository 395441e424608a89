#include "compiler/opt/opt.h"

#include <map>
#include <utility>

#include "llvm/Support/FormatVariadic.h"

namespace flowc::opt {

ExactRefiner::~ExactRefiner() {
  reach_.clear(); // release the BDDs before the model goes
  space_.reset();
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
  space_ = std::make_unique<analysis::PacketSpace>(expanded.rules, options_.max_nodes);
  const bdd &universe = space_->Universe();
  // Per port and direction, what the earlier trapping rules take.
  std::map<std::pair<int, unsigned>, bdd> taken;
  std::vector<target::HwRuleInfo> kept;
  std::vector<bdd> reach;
  uint32_t removed = 0;
  for (const target::HwRuleInfo &info : hw.rules) {
    const ir::Rule &r = policy.rules[info.source];
    if (r.kind != ast::RuleKind::kNormal) {
      kept.push_back(info);
      reach.push_back(bddfalse);
      continue;
    }
    bdd &before =
        taken.try_emplace({static_cast<int>(r.direction), r.port}, bddfalse).first->second;
    bdd cube = space_->Match(expanded.rules[info.expanded]);
    bdd reaches = bdd_apply(cube, before, bddop_diff) & universe;
    if (!r.pass) {
      before |= cube;
    }
    if (reaches == bddfalse) {
      ++removed; // every packet it matches is taken before it: it changes nothing
      continue;
    }
    kept.push_back(info);
    reach.push_back(reaches);
  }
  if (analysis::PacketSpace::Overflowed()) {
    // The answers are not to be used; the rules go through unchanged.
    fallback_ = llvm::formatv("the exact model needs more than {0} BDD nodes", options_.max_nodes);
    reach.clear();
    taken.clear();
    space_.reset();
    return;
  }
  hw.rules = std::move(kept);
  hw.removed += removed;
  hw.exact_levels = true;
  reach_ = std::move(reach);
}

void ExactRefiner::AddPiece(size_t piece, size_t whole) {
  if (!space_) {
    return;
  }
  if (reach_.size() <= piece) {
    reach_.resize(piece + 1, bddfalse);
  }
  bdd cube = space_->Match(expanded_->rules[hw_->rules[piece].expanded]);
  reach_[piece] = whole < reach_.size() ? reach_[whole] & cube : cube;
}

bool ExactRefiner::Reaches(size_t a, size_t b) {
  if (!space_ || a >= reach_.size()) {
    return true; // no exact answer: overlapping cubes stay ordered
  }
  bdd cube = space_->Match(expanded_->rules[hw_->rules[b].expanded]);
  bool overlap = (reach_[a] & cube) != bddfalse;
  return analysis::PacketSpace::Overflowed() || overlap;
}

} // namespace flowc::opt
