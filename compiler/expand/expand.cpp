// Expansion of sets, ranges and masks into ternary matches.
#include "compiler/expand/expand.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>

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
uint64_t Pow2(unsigned n) {
  return n >= 64 ? std::numeric_limits<uint64_t>::max() : 1ull << n;
}

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
  /// The target's mask rule for the field, if it can match the field's
  /// header at that layer (a header it cannot match is legalize's to report).
  std::optional<target::MaskRule> MaskRuleOf(Field field, ir::Layer layer) const {
    const target::FieldRule *rule = target_.profile->FindField(field);
    if (rule == nullptr ||
        !target_.profile->HeaderSupported(GetFieldInfo(field).header, layer == ir::Layer::kInner)) {
      return std::nullopt;
    }
    return layer == ir::Layer::kInner ? rule->inner : rule->outer;
  }

  bool FullOnly(Field field, ir::Layer layer) const {
    return MaskRuleOf(field, layer) == target::MaskRule::kFullOrZero;
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
  static bool IsFullRange(const APInt &lo, const APInt &hi) {
    return lo.isZero() && hi.isAllOnes();
  }

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
      return span.getActiveBits() > 64 ? std::numeric_limits<uint64_t>::max() : span.getZExtValue();
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
    if (!full_only && n <= kMaxMerge && options_.merge_sets && AnyMask(m.field, m.layer)) {
      return Alternatives(m, false).size(); // what merging leaves
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
    if (options_.merge_sets && AnyMask(m.field, m.layer)) {
      // A VLAN field matched at all requires an 802.1Q tag (verbs-facts
      // §3.2): merged to the empty mask it would take untagged frames too.
      Merge(out, /*keep_one_bit=*/IsVlanTagField(m.field));
    }
    return out;
  }

  /// Whether the target takes any bit mask on the field.
  bool AnyMask(Field field, ir::Layer layer) const {
    return MaskRuleOf(field, layer) == target::MaskRule::kArbitrary;
  }

  /// The most alternatives of one field that Merge() compares pairwise for
  /// containment; more are only merged.
  static constexpr size_t kMaxContain = 256;
  /// The most alternatives of one field that Merge() looks at.
  static constexpr size_t kMaxMerge = 1 << 16;

  /// Makes `alts` (distinct) fewer where their union is one ternary match:
  /// two with one mask whose values differ in one bit under it become one
  /// without that bit (10.0.0.0/25 and 10.0.0.128/25 become 10.0.0.0/24;
  /// ports 80 and 81, 80/0xfffe), and one inside another goes. The values
  /// matched are the same; the mask may stop being a prefix, so only for
  /// fields that take any mask. With `keep_one_bit`, no match is merged
  /// into the empty mask (for a field whose match means more than its
  /// values, like a VLAN field's 802.1Q tag).
  static void Merge(std::vector<Alternative> &alts, bool keep_one_bit) {
    if (alts.size() < 2 || alts.size() > kMaxMerge) {
      return;
    }
    auto less = [](const Alternative &a, const Alternative &b) {
      return a.second.ult(b.second) || (a.second == b.second && a.first.ult(b.first));
    };
    std::set<Alternative, decltype(less)> set(less);
    std::vector<Alternative> work;
    for (Alternative &a : alts) {
      set.insert(a);
      work.push_back(std::move(a));
    }
    while (!work.empty()) {
      Alternative a = std::move(work.back());
      work.pop_back();
      if (set.count(a) == 0) {
        continue; // merged already
      }
      for (unsigned bit = 0; bit < a.second.getBitWidth(); ++bit) {
        if (!a.second[bit]) {
          continue;
        }
        if (keep_one_bit && a.second.countPopulation() == 1) {
          break; // the last bit stays
        }
        Alternative partner = a;
        partner.first.flipBit(bit);
        auto it = set.find(partner);
        if (it == set.end()) {
          continue;
        }
        set.erase(it);
        set.erase(a);
        a.first.clearBit(bit);
        a.second.clearBit(bit);
        if (set.insert(a).second) {
          work.push_back(a);
        }
        break;
      }
    }
    alts.assign(set.begin(), set.end());
    if (alts.size() <= kMaxContain) {
      auto inside = [](const Alternative &a, const Alternative &b) { // a within b
        return (a.second & b.second) == b.second && (a.first & b.second) == b.first;
      };
      std::vector<bool> gone(alts.size(), false);
      for (size_t i = 0; i < alts.size(); ++i) {
        for (size_t j = 0; j < alts.size() && !gone[i]; ++j) {
          gone[i] = i != j && !gone[j] && inside(alts[i], alts[j]);
        }
      }
      std::vector<Alternative> kept;
      for (size_t i = 0; i < alts.size(); ++i) {
        if (!gone[i]) {
          kept.push_back(std::move(alts[i]));
        }
      }
      alts = std::move(kept);
    }
    std::sort(alts.begin(), alts.end(), [](const Alternative &a, const Alternative &b) {
      return a.first.ult(b.first) || (a.first == b.first && a.second.ult(b.second));
    });
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
    return llvm::any_of(
        m.elements, [&](const ir::SetElement &e) { return partial(e.kind, e.mask, e.lo, e.hi); });
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
    std::vector<Slot> prerequisites;
    AddPrerequisites(rule, prerequisites);
    for (const Slot &slot : prerequisites) {
      total = Mul(total, slot.size());
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
    // One slot per matched field with its alternatives, then the
    // prerequisites the rule's headers need written out, first slot slowest.
    std::vector<Slot> slots;
    for (size_t i = 0; i < rule.matches.size(); ++i) {
      const ir::FieldMatch &m = rule.matches[i];
      Slot slot;
      for (Alternative &a : Alternatives(m, full_only[i])) {
        slot.push_back({m.layer, m.field, std::move(a.first), std::move(a.second), 0});
      }
      slots.push_back(std::move(slot));
    }
    for (Slot &slot : prerequisites) {
      slots.push_back(std::move(slot));
    }
    if (options_.warn_per_rule != 0 && total > options_.warn_per_rule) {
      // The product of the alternatives overstates what narrowing keeps;
      // count the rules themselves before saying how many.
      uint64_t made = 0;
      Enumerate(index, slots, [&](TernaryRule &&) { ++made; });
      if (made > options_.warn_per_rule) {
        Report(Kind::kLargeExpansion, rule.range.Start,
               llvm::formatv("{0} becomes {1} hardware rules on {2}, more than {3}; each costs a "
                             "flow table entry and an ibv_create_flow() call (ranges and sets "
                             "multiply; prefixes that align with a range need fewer)",
                             RuleTitle(rule), made, target_.profile->name, options_.warn_per_rule))
            .Range(rule.range);
      }
    }
    if (options_.representative_only) {
      // Only the matched fields: the prerequisites keep every choice.
      for (size_t i = 0; i < rule.matches.size(); ++i) {
        Slot &slot = slots[i];
        auto fewest =
            std::min_element(slot.begin(), slot.end(), [](const Option &a, const Option &b) {
              return a.mask.countPopulation() < b.mask.countPopulation();
            });
        Option keep = *fewest;
        slot.assign(1, keep);
      }
    }
    Enumerate(index, slots, sink_);
  }

  /// One choice for one slot: a field's value under a mask, and a header the
  /// choice brings in.
  struct Option {
    ir::Layer layer;
    Field field;
    APInt value, mask;
    ir::HeaderSet add_header;
  };
  using Slot = std::vector<Option>;

  /// Calls `sink` with every combination of one option per slot for rule
  /// `index`, narrowed and without duplicates, first slot slowest.
  void Enumerate(uint32_t index, const std::vector<Slot> &slots, RuleSink sink) const {
    const ir::Rule &rule = policy_.rules[index];
    // Narrowing can make two combinations equal; one combination is
    // unique by itself.
    bool one = llvm::all_of(slots, [](const Slot &slot) { return slot.size() == 1; });
    std::set<std::string> seen;
    std::vector<size_t> at(slots.size(), 0);
    for (;;) {
      TernaryRule t;
      t.source = index;
      std::copy(std::begin(rule.headers), std::end(rule.headers), std::begin(t.headers));
      for (size_t i = 0; i < slots.size(); ++i) {
        const Option &o = slots[i][at[i]];
        t.headers[static_cast<unsigned>(o.layer)] |= o.add_header;
        if (!o.mask.isZero()) {
          t.matches.push_back({o.layer, o.field, o.value, o.mask});
        }
      }
      if (Narrow(t) && (one || seen.insert(Key(t)).second)) {
        sink(std::move(t));
      }
      size_t k = slots.size();
      while (k > 0 && ++at[k - 1] == slots[k - 1].size()) {
        at[k - 1] = 0;
        --k;
      }
      if (k == 0) {
        break;
      }
    }
  }

  static Option Exact(ir::Layer layer, Field f, uint64_t v, ir::HeaderSet add = 0) {
    unsigned bits = GetFieldInfo(f).bits;
    return {layer, f, APInt(bits, v), APInt::getAllOnes(bits), add};
  }

  static bool Matches(const ir::Rule &r, ir::Layer layer, Field f) {
    return llvm::any_of(r.matches,
                        [&](const ir::FieldMatch &m) { return m.layer == layer && m.field == f; });
  }

  /// The prerequisites that no spec of the rule would otherwise enforce
  /// (verbs-facts §3.2: mlx5's VXLAN and ESP specs set no IP protocol, and a
  /// bare MPLS spec no ethertype), written as matches: vxlan => UDP 4789;
  /// esp => IP protocol 50, over IPv4 or IPv6; MPLS right after Ethernet =>
  /// ethertype 0x8847 or 0x8848; MPLS over GRE => GRE protocol 0x8847 or
  /// 0x8848; MPLS over UDP => UDP 6635 (RFC 7510), as DPDK does (§5.5).
  void AddPrerequisites(const ir::Rule &r, std::vector<Slot> &slots) const {
    // Where the target cannot match the header at all, legalize says so;
    // prerequisites would only add noise.
    auto supported = [&](Header h) { return target_.profile->HeaderSupported(h, false); };
    constexpr ir::Layer kOuter = ir::Layer::kOuter;
    ir::HeaderSet outer = r.headers[static_cast<unsigned>(kOuter)];
    ir::HeaderSet tunnel = r.headers[static_cast<unsigned>(ir::Layer::kTunnel)];
    if ((tunnel & ir::Bit(Header::kVxlan)) && supported(Header::kVxlan) &&
        !Matches(r, kOuter, Field::kUdpDst)) {
      slots.push_back({Exact(kOuter, Field::kUdpDst, 4789, ir::Bit(Header::kUdp))});
    }
    if ((outer & ir::Bit(Header::kEsp)) && supported(Header::kEsp)) {
      bool v4 = outer & ir::Bit(Header::kIpv4), v6 = outer & ir::Bit(Header::kIpv6);
      if (!v4 && !v6) {
        slots.push_back({Exact(kOuter, Field::kIpv4Proto, 50, ir::Bit(Header::kIpv4)),
                         Exact(kOuter, Field::kIpv6NextHdr, 50, ir::Bit(Header::kIpv6))});
      } else if (v4 && !Matches(r, kOuter, Field::kIpv4Proto)) {
        slots.push_back({Exact(kOuter, Field::kIpv4Proto, 50)});
      } else if (v6 && !Matches(r, kOuter, Field::kIpv6NextHdr)) {
        slots.push_back({Exact(kOuter, Field::kIpv6NextHdr, 50)});
      }
    }
    bool carried = (outer & ir::Bit(Header::kUdp)) || (tunnel & ir::Bit(Header::kGre));
    bool mpls = (tunnel & ir::Bit(Header::kMpls)) && supported(Header::kMpls);
    // An MPLS spec with nothing to match matches nothing either: without
    // these, `udp, mpls` would take every UDP packet.
    if (mpls && (tunnel & ir::Bit(Header::kGre)) &&
        !Matches(r, ir::Layer::kTunnel, Field::kGreProtocol)) {
      slots.push_back({Exact(ir::Layer::kTunnel, Field::kGreProtocol, 0x8847),
                       Exact(ir::Layer::kTunnel, Field::kGreProtocol, 0x8848)});
    } else if (mpls && (outer & ir::Bit(Header::kUdp)) && !(tunnel & ir::Bit(Header::kGre)) &&
               !Matches(r, kOuter, Field::kUdpDst)) {
      slots.push_back({Exact(kOuter, Field::kUdpDst, 6635)});
    }
    if ((tunnel & ir::Bit(Header::kMpls)) && !carried && supported(Header::kMpls) &&
        !Matches(r, kOuter, Field::kEthType)) {
      slots.push_back({Exact(kOuter, Field::kEthType, 0x8847, ir::Bit(Header::kEth)),
                       Exact(kOuter, Field::kEthType, 0x8848, ir::Bit(Header::kEth))});
    }
  }

  /// What the headers of `t` imply about each field: the values it may take.
  static void ImpliedValues(const TernaryRule &t,
                            llvm::SmallVectorImpl<std::pair<Option, uint64_t>> &out) {
    for (ir::Layer layer : {ir::Layer::kOuter, ir::Layer::kInner}) {
      ir::HeaderSet h = t.headers[static_cast<unsigned>(layer)];
      auto add = [&](Field f, uint64_t v, uint64_t v2 = ~0ull) {
        out.push_back({Exact(layer, f, v), v2});
      };
      if (h & ir::Bit(Header::kIpv4)) {
        add(Field::kEthType, 0x0800);
      }
      if (h & ir::Bit(Header::kIpv6)) {
        add(Field::kEthType, 0x86dd);
      }
      for (auto [header, proto] : {std::pair{Header::kTcp, 6u}, std::pair{Header::kUdp, 17u},
                                   std::pair{Header::kEsp, 50u}}) {
        if ((h & ir::Bit(header)) == 0) {
          continue;
        }
        if (h & ir::Bit(Header::kIpv4)) {
          add(Field::kIpv4Proto, proto);
        }
        if (h & ir::Bit(Header::kIpv6)) {
          add(Field::kIpv6NextHdr, proto);
        }
      }
    }
    ir::HeaderSet outer = t.headers[static_cast<unsigned>(ir::Layer::kOuter)];
    ir::HeaderSet tunnel = t.headers[static_cast<unsigned>(ir::Layer::kTunnel)];
    auto outer_proto = [&](uint64_t v) {
      if (outer & ir::Bit(Header::kIpv4)) {
        out.push_back({Exact(ir::Layer::kOuter, Field::kIpv4Proto, v), ~0ull});
      }
      if (outer & ir::Bit(Header::kIpv6)) {
        out.push_back({Exact(ir::Layer::kOuter, Field::kIpv6NextHdr, v), ~0ull});
      }
    };
    if (tunnel & ir::Bit(Header::kGre)) {
      outer_proto(47);
    }
    if (tunnel & ir::Bit(Header::kVxlan)) {
      outer_proto(17);
      out.push_back({Exact(ir::Layer::kOuter, Field::kUdpDst, 4789), ~0ull});
    }
    bool carried = (outer & ir::Bit(Header::kUdp)) || (tunnel & ir::Bit(Header::kGre));
    if ((tunnel & ir::Bit(Header::kMpls)) && !carried) {
      out.push_back({Exact(ir::Layer::kOuter, Field::kEthType, 0x8847), 0x8848});
    }
    if ((tunnel & ir::Bit(Header::kMpls)) && (tunnel & ir::Bit(Header::kGre))) {
      out.push_back({Exact(ir::Layer::kTunnel, Field::kGreProtocol, 0x8847), 0x8848});
    } else if ((tunnel & ir::Bit(Header::kMpls)) && (outer & ir::Bit(Header::kUdp))) {
      out.push_back({Exact(ir::Layer::kOuter, Field::kUdpDst, 6635), ~0ull});
    }
  }

  /// Intersects the matches of `t` with what its headers imply: a match that
  /// admits exactly one implied value becomes that value (so `udp dst
  /// 4000..4999, vxlan` is `udp dst 4789`, and `ipv4 proto {6, 17}, tcp` is
  /// proto 6), one that admits none makes the rule empty (false). With
  /// representative_only the rule is kept regardless, for its diagnostics.
  bool Narrow(TernaryRule &t) const {
    llvm::SmallVector<std::pair<Option, uint64_t>, 8> implied;
    ImpliedValues(t, implied);
    for (auto &[fact, second] : implied) {
      for (TernaryMatch &m : t.matches) {
        if (m.layer != fact.layer || m.field != fact.field) {
          continue;
        }
        llvm::SmallVector<APInt, 2> admitted;
        for (uint64_t v : {fact.value.getZExtValue(), second}) {
          if (v == ~0ull) {
            continue;
          }
          APInt x(m.value.getBitWidth(), v);
          if ((x & m.mask) == m.value) {
            admitted.push_back(x);
          }
        }
        if (admitted.empty() && !options_.representative_only) {
          return false;
        }
        if (admitted.size() == 1) {
          m.value = admitted.front();
          m.mask = APInt::getAllOnes(m.value.getBitWidth());
        }
      }
    }
    std::sort(t.matches.begin(), t.matches.end(), [](const TernaryMatch &a, const TernaryMatch &b) {
      return std::make_pair(a.layer, a.field) < std::make_pair(b.layer, b.field);
    });
    return true;
  }

  /// A rule's identity, to drop the duplicates that narrowing can make.
  static std::string Key(const TernaryRule &t) {
    std::string key;
    auto add = [&](const auto &x) { key.append(reinterpret_cast<const char *>(&x), sizeof x); };
    for (ir::HeaderSet h : t.headers) {
      add(h);
    }
    // Layer and field fix each value's width, so the words need no
    // separators.
    for (const TernaryMatch &m : t.matches) {
      add(m.layer);
      add(m.field);
      for (const APInt *v : {&m.value, &m.mask}) {
        key.append(reinterpret_cast<const char *>(v->getRawData()),
                   v->getNumWords() * sizeof(uint64_t));
      }
    }
    return key;
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

TernaryRule Meet(const TernaryRule &a, const TernaryRule &b) {
  TernaryRule both = a;
  both.matches.append(b.matches.begin(), b.matches.end());
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    both.headers[l] |= b.headers[l];
  }
  return both;
}

} // namespace flowc::expand
