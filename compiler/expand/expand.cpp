// Expansion of sets, ranges and masks into ternary matches.
#include "compiler/expand/expand.h"

#include <algorithm>
#include <limits>

#include "llvm/Support/FormatVariadic.h"

namespace flowc::expand {
namespace {

using llvm::APInt;
using Kind = diag::Kind;

/// A saturating count of rules.
uint64_t Mul(uint64_t a, uint64_t b) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) {
    return std::numeric_limits<uint64_t>::max();
  }
  return a * b;
}
uint64_t Add(uint64_t a, uint64_t b) {
  return b > std::numeric_limits<uint64_t>::max() - a ? std::numeric_limits<uint64_t>::max()
                                                      : a + b;
}

/// 2^n, saturated.
uint64_t Pow2(unsigned n) { return n >= 64 ? std::numeric_limits<uint64_t>::max() : 1ull << n; }

std::string Count(uint64_t n) {
  return n == std::numeric_limits<uint64_t>::max() ? std::string("more than 2^64")
                                                   : std::to_string(n);
}

using Alternative = std::pair<APInt, APInt>;

class Expander {
public:
  /// A diagnostic about the rule being processed (see ReportInRule).
  diag::Builder Report(diag::Kind kind, llvm::SMLoc loc, const llvm::Twine &message) {
    return expand::ReportInRule(diags_, current_, kind, loc, message);
  }
  const ir::Rule *current_ = nullptr;

  Expander(const ir::Policy &policy, const target::Target &target, const Options &options,
           diag::Engine &diags, RuleSink sink)
      : policy_(policy), target_(target), options_(options), diags_(diags), sink_(sink) {}

  /// Visits the rules in source order, so that diagnostics come in the
  /// order of the text; each expanded rule still names its policy index.
  void Run() {
    std::vector<uint32_t> order(policy_.rules.size());
    for (uint32_t i = 0; i < order.size(); ++i) {
      order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      return policy_.rules[a].source_order < policy_.rules[b].source_order;
    });
    for (uint32_t i : order) {
      ExpandRule(i);
    }
  }

private:
  /// Whether `field` in `layer` takes only full (or empty) masks here; such
  /// fields get exact values instead of partial masks.
  bool FullOnly(Field field, ir::Layer layer) const {
    const target::FieldRule *rule = target_.profile->FindField(field);
    // A header the target cannot match at all is legalize's to report.
    if (rule == nullptr || !target_.profile->HeaderSupported(GetFieldInfo(field).header,
                                                             layer == ir::Layer::kInner)) {
      return false;
    }
    target::MaskRule r = layer == ir::Layer::kInner ? rule->inner : rule->outer;
    return r == target::MaskRule::kFullOrZero;
  }

  /// Whether `mask` is acceptable as it is on a full-or-zero field.
  bool MaskOk(Field field, const APInt &mask) const {
    if (mask.isZero() || mask.isAllOnes()) {
      return true;
    }
    const target::FieldRule *rule = target_.profile->FindField(field);
    return rule != nullptr &&
           llvm::any_of(rule->extra_masks, [&](uint64_t m) { return mask == m; });
  }

  /// A range of every value: the empty mask, which every target takes.
  static bool IsFullRange(const APInt &lo, const APInt &hi) { return lo.isZero() && hi.isAllOnes(); }

  /// How many exact values a ternary (value, mask) stands for on a
  /// full-or-zero field.
  uint64_t ExactCount(Field field, const APInt &mask) const {
    return MaskOk(field, mask) ? 1 : Pow2(mask.getBitWidth() - mask.countPopulation());
  }

  /// How many ternary matches one element becomes.
  uint64_t CountOf(Field field, bool full_only, ir::MatchKind kind, const APInt &value,
                   const APInt &mask, const APInt &lo, const APInt &hi) const {
    if (kind == ir::MatchKind::kTernary) {
      return full_only ? ExactCount(field, mask) : 1;
    }
    if (full_only && IsFullRange(lo, hi)) {
      return 1;
    }
    if (full_only) {
      APInt span = (hi - lo).zext(hi.getBitWidth() + 1) + 1;
      return span.getActiveBits() > 64 ? std::numeric_limits<uint64_t>::max()
                                       : span.getZExtValue();
    }
    return PrefixCover(lo, hi).size();
  }

  uint64_t CountOf(const ir::FieldMatch &m, bool full_only) const {
    if (m.kind != ir::MatchKind::kSet) {
      return CountOf(m.field, full_only, m.kind, m.value, m.mask, m.lo, m.hi);
    }
    uint64_t n = 0;
    for (const ir::SetElement &e : m.elements) {
      n = Add(n, CountOf(m.field, full_only, e.kind, e.value, e.mask, e.lo, e.hi));
    }
    return n;
  }

  /// Appends the exact values that (value, mask) stands for.
  static void Exact(const APInt &value, const APInt &mask, std::vector<Alternative> &out) {
    unsigned width = mask.getBitWidth();
    llvm::SmallVector<unsigned, 16> free_bits;
    for (unsigned b = 0; b < width; ++b) {
      if (!mask[b]) {
        free_bits.push_back(b);
      }
    }
    APInt full = APInt::getAllOnes(width);
    for (uint64_t i = 0; i < Pow2(static_cast<unsigned>(free_bits.size())); ++i) {
      APInt v = value;
      for (size_t k = 0; k < free_bits.size(); ++k) {
        if ((i >> k) & 1) {
          v.setBit(free_bits[k]);
        }
      }
      out.emplace_back(v, full);
    }
  }

  void AddElement(Field field, bool full_only, ir::MatchKind kind, const APInt &value,
                  const APInt &mask, const APInt &lo, const APInt &hi,
                  std::vector<Alternative> &out) const {
    if (kind == ir::MatchKind::kTernary) {
      if (full_only && !MaskOk(field, mask)) {
        Exact(value, mask, out);
      } else {
        out.emplace_back(value, mask);
      }
      return;
    }
    if (full_only && IsFullRange(lo, hi)) {
      out.emplace_back(APInt(lo.getBitWidth(), 0), APInt(lo.getBitWidth(), 0));
      return;
    }
    if (full_only) {
      APInt full = APInt::getAllOnes(lo.getBitWidth());
      for (APInt v = lo;; ++v) {
        out.emplace_back(v, full);
        if (v == hi) {
          break;
        }
      }
      return;
    }
    for (auto &p : PrefixCover(lo, hi)) {
      out.push_back(std::move(p));
    }
  }

  std::vector<Alternative> Alternatives(const ir::FieldMatch &m, bool full_only) const {
    std::vector<Alternative> out;
    if (m.kind != ir::MatchKind::kSet) {
      AddElement(m.field, full_only, m.kind, m.value, m.mask, m.lo, m.hi, out);
      return out;
    }
    for (const ir::SetElement &e : m.elements) {
      AddElement(m.field, full_only, e.kind, e.value, e.mask, e.lo, e.hi, out);
    }
    // Two set elements may cover the same values after expansion.
    std::sort(out.begin(), out.end(), [](const Alternative &a, const Alternative &b) {
      return a.first.ult(b.first) || (a.first == b.first && a.second.ult(b.second));
    });
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

  /// Whether a match needs more than one exact rule on a full-or-zero field.
  bool NeedsExactRules(const ir::FieldMatch &m) const {
    auto partial = [&](ir::MatchKind kind, const APInt &mask, const APInt &lo, const APInt &hi) {
      return kind == ir::MatchKind::kRange ? lo != hi && !IsFullRange(lo, hi)
                                           : !MaskOk(m.field, mask);
    };
    if (m.kind != ir::MatchKind::kSet) {
      return partial(m.kind, m.mask, m.lo, m.hi);
    }
    return llvm::any_of(m.elements, [&](const ir::SetElement &e) {
      return partial(e.kind, e.mask, e.lo, e.hi);
    });
  }

  std::string RuleTitle(const ir::Rule &r) const { return ir::RuleTitle(r); }

  void ExpandRule(uint32_t index) {
    const ir::Rule &rule = policy_.rules[index];
    current_ = &rule;
    uint64_t total = 1;
    bool ok = true;
    std::vector<bool> full_only(rule.matches.size());
    for (size_t i = 0; i < rule.matches.size(); ++i) {
      const ir::FieldMatch &m = rule.matches[i];
      full_only[i] = FullOnly(m.field, m.layer);
      uint64_t n = CountOf(m, full_only[i]);
      if (full_only[i] && !options_.expand_masks && NeedsExactRules(m)) {
        // Offer --expand-masks only where it would succeed.
        std::string fix = n <= options_.max_per_rule
                              ? "allow that with --expand-masks, or use a target with bit masks "
                                "such as mlx5"
                              : "use a target with bit masks such as mlx5, or narrow the match";
        Report(Kind::kTargetMask, m.range.Start,
               llvm::formatv("{0} matches {1} only with a full or empty mask; this needs {2} "
                             "exact rules ({3})",
                             target_.profile->name, ir::FieldTitle(m.field, m.layer), Count(n),
                             fix))
            .Range(m.range);
        ok = false;
      }
      total = Mul(total, n);
    }
    if (!ok) {
      return;
    }
    if (total > options_.max_per_rule) {
      Report(Kind::kExpansionLimit, rule.range.Start,
                  llvm::formatv("{0} would become {1} hardware rules, more than the limit of {2}; "
                                "split it, use prefixes that align with its ranges, or raise "
                                "--max-expansion",
                                RuleTitle(rule), Count(total), options_.max_per_rule))
          .Range(rule.range);
      return;
    }
    if (Add(produced_, total) > options_.max_total) {
      Report(Kind::kExpansionLimit, rule.range.Start,
                  llvm::formatv("the policy would become more than {0} hardware rules at {1}; "
                                "narrow its sets, ranges and masks or split the policy",
                                options_.max_total, RuleTitle(rule)))
          .Range(rule.range);
      produced_ = options_.max_total + 1;
      return;
    }
    produced_ += total;
    // The cross product of every field's alternatives, first field slowest.
    std::vector<std::vector<Alternative>> alts;
    alts.reserve(rule.matches.size());
    for (size_t i = 0; i < rule.matches.size(); ++i) {
      alts.push_back(Alternatives(rule.matches[i], full_only[i]));
      if (options_.representative_only) {
        auto fewest = std::min_element(
            alts.back().begin(), alts.back().end(), [](const Alternative &a, const Alternative &b) {
              return a.second.countPopulation() < b.second.countPopulation();
            });
        Alternative keep = *fewest;
        alts.back().assign(1, keep);
      }
    }
    std::vector<size_t> at(alts.size(), 0);
    for (;;) {
      TernaryRule t;
      t.source = index;
      for (size_t i = 0; i < alts.size(); ++i) {
        const Alternative &a = alts[i][at[i]];
        if (!a.second.isZero()) {
          t.matches.push_back({rule.matches[i].layer, rule.matches[i].field, a.first, a.second});
        }
      }
      sink_(std::move(t));
      size_t k = alts.size();
      while (k > 0 && ++at[k - 1] == alts[k - 1].size()) {
        at[k - 1] = 0;
        --k;
      }
      if (k == 0) {
        break;
      }
    }
  }

  const ir::Policy &policy_;
  const target::Target &target_;
  const Options &options_;
  diag::Engine &diags_;
  uint64_t produced_ = 0;
  RuleSink sink_;
};

} // namespace

std::vector<std::pair<APInt, APInt>> PrefixCover(const APInt &lo_in, const APInt &hi_in) {
  // Greedy: from lo, the largest aligned block that stays within hi. Work one
  // bit wider so that hi + 1 cannot wrap.
  unsigned width = lo_in.getBitWidth();
  APInt lo = lo_in.zext(width + 1), end = hi_in.zext(width + 1) + 1;
  std::vector<std::pair<APInt, APInt>> out;
  while (lo.ult(end)) {
    unsigned size_bits = lo.isZero() ? width : std::min(lo.countTrailingZeros(), width);
    while ((lo + APInt::getOneBitSet(width + 1, size_bits)).ugt(end)) {
      --size_bits;
    }
    out.emplace_back(lo.trunc(width), APInt::getHighBitsSet(width, width - size_bits));
    lo += APInt::getOneBitSet(width + 1, size_bits);
  }
  return out;
}

diag::Builder ReportInRule(diag::Engine &diags, const ir::Rule *rule, diag::Kind kind,
                           llvm::SMLoc loc, const llvm::Twine &message) {
  diag::Builder b = diags.Report(kind, loc, message);
  if (rule != nullptr && rule->range.isValid() &&
      (loc.getPointer() < rule->range.Start.getPointer() ||
       loc.getPointer() > rule->range.End.getPointer())) {
    b.AddNote(rule->range.Start, rule->name.empty() && rule->kind == ast::RuleKind::kNormal
                                     ? std::string("in the rule that uses it here")
                                     : "in " + ir::RuleTitle(*rule) + ", which uses it here");
  }
  return b;
}

void ExpandInto(const ir::Policy &policy, const target::Target &target, const Options &options,
                diag::Engine &diags, RuleSink sink) {
  Expander(policy, target, options, diags, sink).Run();
}

Expanded Expand(const ir::Policy &policy, const target::Target &target, const Options &options,
                diag::Engine &diags) {
  Expanded out;
  ExpandInto(policy, target, options, diags,
             [&](TernaryRule &&rule) { out.rules.push_back(std::move(rule)); });
  return out;
}

} // namespace flowc::expand
