// Legalization and hardware priorities. Every target difference comes from
// the Profile; the verbs-facts section behind each rule is in profile.cpp.
#include "compiler/target/legalize.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <map>
#include <numeric>
#include <set>
#include <tuple>

#include "compiler/expand/overlap_index.h"
#include "compiler/target/tables.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

namespace flowc::target {
namespace {

using emit::HwSpec;
using emit::SpecKind;
using llvm::APInt;
using Kind = diag::Kind;

/// Protocol-stack order of the headers of the outer and tunnel layers; the
/// tunnel layer's MPLS then follows the UDP, GRE or ETH that carries it.
constexpr Header kStackOrder[] = {Header::kEth,   Header::kIpv4, Header::kIpv6,
                                  Header::kEsp,   Header::kTcp,  Header::kUdp,
                                  Header::kVxlan, Header::kGre,  Header::kMpls};
/// Inside the tunnel an MPLS entry sits between L2 and L3 (the man page's
/// "inner specs must be ordered").
constexpr Header kInnerOrder[] = {Header::kEth,  Header::kMpls, Header::kIpv4,
                                  Header::kIpv6, Header::kTcp,  Header::kUdp};

/// The spec a header becomes; IPv4 is IPV4_EXT when more than its
/// addresses is matched.
SpecKind SpecFor(Header h, bool ipv4_ext) {
  switch (h) {
  case Header::kEth:
    return SpecKind::kEth;
  case Header::kIpv4:
    return ipv4_ext ? SpecKind::kIpv4Ext : SpecKind::kIpv4;
  case Header::kIpv6:
    return SpecKind::kIpv6;
  case Header::kEsp:
    return SpecKind::kEsp;
  case Header::kTcp:
    return SpecKind::kTcp;
  case Header::kUdp:
    return SpecKind::kUdp;
  case Header::kVxlan:
    return SpecKind::kVxlanTunnel;
  case Header::kGre:
    return SpecKind::kGre;
  case Header::kMpls:
    return SpecKind::kMpls;
  }
  return SpecKind::kEth;
}

SpecKind ActionSpec(ast::ActionKind k) {
  switch (k) {
  case ast::ActionKind::kTag:
    return SpecKind::kActionTag;
  case ast::ActionKind::kDrop:
    return SpecKind::kActionDrop;
  case ast::ActionKind::kHandle:
    return SpecKind::kActionHandle;
  default:
    return SpecKind::kActionCount;
  }
}

// --- Overlap -----------------------------------------------------------------

/// One constraint of a rule on one word of the packet, for overlap tests.
struct Constraint {
  unsigned key;
  APInt value, mask;
};

/// A key per (layer, word): a sub-field shares its container's key, and the
/// IPv4 protocol and IPv6 next header are the same thing.
unsigned KeyOf(ir::Layer layer, Field f) {
  Field word = GetFieldInfo(f).container == Field::kNone ? f : GetFieldInfo(f).container;
  if (word == Field::kIpv6NextHdr) {
    word = Field::kIpv4Proto;
  }
  return static_cast<unsigned>(layer) * 256 + static_cast<unsigned>(word);
}

/// `value`/`mask` of field `f` moved into its key's word.
Constraint ConstraintOf(ir::Layer layer, Field f, const APInt &value, const APInt &mask) {
  ContainerMatch c = InContainer(f, value, mask);
  return {KeyOf(layer, f), std::move(c.value), std::move(c.mask)};
}

/// What the headers of a rule imply about the packet (design.md: vxlan =>
/// UDP 4789, gre => IP protocol 47, tcp/udp => IP protocol, ipv4/ipv6 =>
/// ethertype). Only exact implications are listed; leaving one out can only
/// make two rules look overlapping, which costs a level, never correctness.
void Implied(const expand::TernaryRule &r, std::vector<Constraint> &out) {
  auto add = [&](ir::Layer layer, Field f, uint64_t v) {
    unsigned bits = GetFieldInfo(f).bits;
    out.push_back({KeyOf(layer, f), APInt(bits, v), APInt::getAllOnes(bits)});
  };
  for (ir::Layer layer : {ir::Layer::kOuter, ir::Layer::kInner}) {
    ir::HeaderSet h = r.headers[static_cast<unsigned>(layer)];
    if (h & ir::Bit(Header::kIpv4)) {
      add(layer, Field::kEthType, 0x0800);
    }
    if (h & ir::Bit(Header::kIpv6)) {
      add(layer, Field::kEthType, 0x86dd);
    }
    if (h & ir::Bit(Header::kTcp)) {
      add(layer, Field::kIpv4Proto, 6);
    }
    if (h & ir::Bit(Header::kUdp)) {
      add(layer, Field::kIpv4Proto, 17);
    }
    if (h & ir::Bit(Header::kEsp)) {
      add(layer, Field::kIpv4Proto, 50);
    }
  }
  ir::HeaderSet tunnel = r.headers[static_cast<unsigned>(ir::Layer::kTunnel)];
  if (tunnel & ir::Bit(Header::kGre)) {
    add(ir::Layer::kOuter, Field::kIpv4Proto, 47);
  }
  if (tunnel & ir::Bit(Header::kVxlan)) {
    add(ir::Layer::kOuter, Field::kIpv4Proto, 17);
    add(ir::Layer::kOuter, Field::kUdpDst, 4789);
  }
}

/// The constraints of a rule and of its headers, for Overlap().
std::vector<Constraint> ConstraintsOf(const expand::TernaryRule &t) {
  std::vector<Constraint> out;
  for (const expand::TernaryMatch &m : t.matches) {
    out.push_back(ConstraintOf(m.layer, m.field, m.value, m.mask));
  }
  Implied(t, out);
  return out;
}

/// A ternary rule with every sub-field moved into its container (`eth vlan`
/// into `eth tci`), for cube arithmetic.
struct Cube {
  expand::TernaryRule rule;
  std::map<std::pair<ir::Layer, Field>, std::pair<APInt, APInt>> fields;
  bool vlan[ir::kNumLayers] = {false, false, false};
};

Cube ToCube(const expand::TernaryRule &t) {
  Cube c;
  c.rule = t;
  for (const expand::TernaryMatch &m : t.matches) {
    ContainerMatch word = InContainer(m.field, m.value, m.mask);
    unsigned bits = word.value.getBitWidth();
    auto &[value, mask] =
        c.fields.try_emplace({m.layer, word.field}, APInt(bits, 0), APInt(bits, 0)).first->second;
    value |= word.value;
    mask |= word.mask;
    if (IsVlanTagField(m.field) && !m.mask.isZero()) {
      c.vlan[static_cast<unsigned>(m.layer)] = true;
    }
  }
  return c;
}

expand::TernaryRule FromCube(const Cube &c) {
  expand::TernaryRule t = c.rule;
  t.matches.clear();
  for (const auto &[key, vm] : c.fields) {
    if (!vm.second.isZero()) {
      t.matches.push_back({key.first, key.second, vm.first, vm.second});
    }
  }
  return t; // std::map order is (layer, field) order
}

/// `b` minus `a` as cubes that are disjoint from `a` and from each other,
/// appended to `out`; false if the difference is not a union of cubes of
/// the same headers (`a` needs a header or an 802.1Q tag `b` does not: "not
/// IPv4" cannot be matched).
bool Subtract(const Cube &b, const Cube &a, std::vector<Cube> &out) {
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    if ((a.rule.headers[l] & ~b.rule.headers[l]) != 0 || (a.vlan[l] && !b.vlan[l])) {
      return false;
    }
  }
  for (const auto &[key, vm] : a.fields) {
    auto it = b.fields.find(key);
    if (it != b.fields.end() &&
        !((vm.first ^ it->second.first) & vm.second & it->second.second).isZero()) {
      out.push_back(b); // disjoint already
      return true;
    }
  }
  Cube rest = b;
  for (const auto &[key, vm] : a.fields) {
    unsigned bits = vm.second.getBitWidth();
    auto &[value, mask] =
        rest.fields.try_emplace(key, APInt(bits, 0), APInt(bits, 0)).first->second;
    for (unsigned i = bits; i-- > 0;) {
      if (!vm.second[i] || mask[i]) {
        continue;
      }
      // The packets of `rest` whose bit i differs from a's leave here.
      Cube piece = rest;
      auto &[pv, pm] = piece.fields[key];
      pm.setBit(i);
      if (!vm.first[i]) {
        pv.setBit(i);
      }
      out.push_back(std::move(piece));
      mask.setBit(i);
      if (vm.first[i]) {
        value.setBit(i);
      }
    }
  }
  return true; // what is left of `rest` lies inside `a`
}

/// The packets of `c` as a string: equal strings, equal cubes.
std::string CubeKey(const Cube &c) {
  std::string key;
  for (unsigned l = 0; l < ir::kNumLayers; ++l) {
    key += std::to_string(c.rule.headers[l]) + (c.vlan[l] ? "v;" : ";");
  }
  for (const auto &[field, vm] : c.fields) {
    if (vm.second.isZero()) {
      continue;
    }
    key += std::to_string(static_cast<int>(field.first)) + ":" +
           std::to_string(static_cast<int>(field.second)) + "=" +
           llvm::toString(vm.first, 16, false) + "/" + llvm::toString(vm.second, 16, false) + ";";
  }
  return key;
}

bool Overlap(const std::vector<Constraint> &a, const std::vector<Constraint> &b) {
  for (const Constraint &x : a) {
    for (const Constraint &y : b) {
      if (x.key == y.key && !((x.value ^ y.value) & x.mask & y.mask).isZero()) {
        return false;
      }
    }
  }
  return true;
}

// --- Legalization ------------------------------------------------------------

} // namespace

bool SameOutcome(const ir::Policy &policy, const HwRuleInfo &a, const HwRuleInfo &b) {
  if (a.source == b.source) {
    return true;
  }
  const ir::Rule &ra = policy.rules[a.source], &rb = policy.rules[b.source];
  // Two `pass` rules are ordered too: a table lookup hits one entry per
  // priority, so two overlapping copies at one priority lose one.
  if (ra.pass || rb.pass || a.queue != b.queue || a.rule.flags != b.rule.flags) {
    return false;
  }
  auto key = [](const ir::Rule &r) {
    std::vector<std::pair<int, uint32_t>> k;
    for (const ir::Action &x : r.actions) {
      k.emplace_back(static_cast<int>(x.kind), x.operand);
    }
    llvm::sort(k);
    return k;
  };
  return key(ra) == key(rb);
}

namespace {

/// Puts `rules` in policy order (by source rule, stable). A rule is a few
/// hundred bytes (its specs are inline), so an order is sorted and the
/// rules are moved once, and not at all when they are in order already.
void SortBySource(std::vector<HwRuleInfo> &rules) {
  auto by_source = [](const HwRuleInfo &a, const HwRuleInfo &b) { return a.source < b.source; };
  if (std::is_sorted(rules.begin(), rules.end(), by_source)) {
    return;
  }
  std::vector<uint32_t> order(rules.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return rules[a].source < rules[b].source; });
  std::vector<HwRuleInfo> sorted;
  sorted.reserve(rules.size());
  for (uint32_t i : order) {
    sorted.push_back(std::move(rules[i]));
  }
  rules = std::move(sorted);
}

class Legalizer {
public:
  /// A diagnostic about the rule being processed (see ReportInRule).
  diag::Builder Report(diag::Kind kind, llvm::SMLoc loc, const llvm::Twine &message) {
    return expand::ReportInRule(quiet_ != nullptr ? *quiet_ : diags_, current_, kind, loc, message);
  }
  const ir::Rule *current_ = nullptr;

  Legalizer(const ir::Policy &policy, const expand::Expanded &expanded, const Target &target,
            diag::Engine &diags)
      : policy_(policy), expanded_(expanded), target_(target), profile_(*target.profile),
        diags_(diags) {}

  HwPolicy Run() {
    for (uint32_t i = 0; i < expanded_.rules.size(); ++i) {
      Add(i);
    }
    return Finish();
  }

  /// Legalizes expanded rule `i`, keeping the result.
  void Add(uint32_t i) {
    const expand::TernaryRule &t = expanded_.rules[i];
    std::optional<HwRuleInfo> hw = Build(t, policy_.rules[t.source]);
    if (hw) {
      hw->expanded = i;
      out_.rules.push_back(std::move(*hw));
    }
  }

  /// Rule-kind combinations the target mishandles (per port, not per rule).
  void CheckKinds() {
    if (!profile_.all_default_covers_multicast) {
      return;
    }
    std::map<unsigned, const ir::Rule *> defaults;
    for (const ir::Rule &r : policy_.rules) {
      if (r.kind == ast::RuleKind::kDefault && r.direction == ast::Direction::kIngress) {
        defaults.emplace(r.port, &r);
      }
    }
    for (const ir::Rule &r : policy_.rules) {
      auto d = defaults.find(r.port);
      if (r.kind != ast::RuleKind::kMulticastDefault || d == defaults.end()) {
        continue;
      }
      auto actions = [](const ir::Rule &x) {
        std::vector<std::pair<int, uint32_t>> k;
        for (const ir::Action &a : x.actions) {
          k.emplace_back(static_cast<int>(a.kind), a.operand);
        }
        std::sort(k.begin(), k.end());
        return k;
      };
      if (actions(r) == actions(*d->second)) {
        continue; // the same queue takes the merged entry once (§3.8)
      }
      current_ = &r;
      Report(Kind::kTargetRuleKind, r.range.Start,
             llvm::formatv("{0} installs a 'default' rule as a multicast and a unicast rule, so "
                           "beside this 'default multicast' rule unclaimed multicast packets "
                           "would reach both queues (verbs-facts §3.5, §3.8); keep one of the "
                           "two, or steer multicast with normal rules",
                           Name()))
          .Range(r.range)
          .AddNote(d->second->range.Start, "the 'default' rule of this port is here",
                   d->second->range);
    }
  }

  /// Puts the rules in policy order and assigns hardware priorities.
  HwPolicy Finish() {
    CheckKinds();
    // The expansion may have visited the rules in another order.
    SortBySource(out_.rules);
    if (refiner_ != nullptr && diags_.error_count() == 0) {
      refiner_->Prepare(policy_, expanded_, out_);
    }
    out_.expanded = static_cast<uint32_t>(expanded_.rules.size());
    AssignPriorities();
    if (diags_.error_count() == 0) {
      FitTables();
    }
    return std::move(out_);
  }

  void SetRefiner(Refiner *refiner, expand::Expanded *expanded, FitProgress progress) {
    refiner_ = refiner;
    expanded_mut_ = expanded;
    fit_progress_ = std::move(progress);
  }

  /// Legalizes one rule for its diagnostics only.
  void CheckOne(const expand::TernaryRule &t) { Build(t, policy_.rules[t.source]); }

private:
  bool CapMissing(Cap c) const { return (profile_.caps & CapBit(c)) != 0 && !target_.Has(c); }

  void CapError(llvm::SMRange at, Cap c, llvm::StringRef what) {
    Report(Kind::kMissingCapability, at.Start,
           llvm::formatv("{0} needs the capability '{1}' ({2}), which --cap removed", what,
                         GetCapInfo(c).name, GetCapInfo(c).description))
        .Range(at);
  }

  llvm::SMRange FieldRange(const ir::Rule &r, ir::Layer layer, Field f) const {
    for (const ir::FieldMatch &m : r.matches) {
      if (m.layer == layer && m.field == f) {
        return m.range;
      }
    }
    return r.range;
  }

  llvm::SMRange HeaderRange(const ir::Rule &r, ir::Layer layer, Header h) const {
    for (const ir::HeaderUse &u : r.header_uses) {
      if (u.layer == layer && u.header == h) {
        return u.range;
      }
    }
    return r.range;
  }

  std::string Name() const { return profile_.name.str(); }

  std::optional<HwRuleInfo> Build(const expand::TernaryRule &t, const ir::Rule &r) {
    current_ = &r;
    HwRuleInfo info;
    info.source = t.source;
    emit::HwRule &hw = info.rule;
    hw.port = r.port;
    bool ok = true;
    bool egress = r.direction == ast::Direction::kEgress;
    switch (r.kind) {
    case ast::RuleKind::kNormal:
      hw.type = emit::AttrType::kNormal;
      break;
    case ast::RuleKind::kDefault:
      hw.type = emit::AttrType::kAllDefault;
      ok &= KindAllowed(r, profile_.all_default, "'default' rules");
      break;
    case ast::RuleKind::kMulticastDefault:
      hw.type = emit::AttrType::kMcDefault;
      ok &= KindAllowed(r, profile_.mc_default, "'default multicast' rules");
      break;
    case ast::RuleKind::kSniffer:
      hw.type = emit::AttrType::kSniffer;
      ok &= KindAllowed(r, profile_.sniffer, "'sniff' rules");
      if (CapMissing(Cap::kSniffer)) {
        CapError(r.range, Cap::kSniffer, "a 'sniff' rule");
        ok = false;
      }
      break;
    }
    if (egress) {
      hw.flags |= emit::kFlagEgress;
      if (!profile_.egress) {
        Report(Kind::kTargetRuleKind, r.range.Start,
               llvm::formatv("{0} cannot steer egress traffic; {1}", Name(), profile_.egress_why))
            .Range(r.range);
        ok = false;
      }
    }
    if (r.pass) {
      hw.flags |= emit::kFlagDontTrap;
      ok &= PassAllowed(r);
    }
    ok &= BuildMatch(t, r, hw);
    ok &= BuildActions(r, info);
    if (ok && hw.specs.size() > profile_.max_specs) {
      Report(Kind::kTooManySpecs, r.range.Start,
             llvm::formatv("this rule needs {0} specs; the kernel takes at most {1} per rule "
                           "(verbs-facts §2)",
                           hw.specs.size(), profile_.max_specs))
          .Range(r.range);
      ok = false;
    }
    if (ok && r.pass && profile_.dont_trap.sniffer_style) {
      ok &= SnifferStylePass(r, hw);
    }
    if (ok && profile_.multicast_first_spec && r.kind == ast::RuleKind::kNormal && !r.pass &&
        !hw.specs.empty() && MulticastOnly(hw.specs.front())) {
      AvoidMulticastFirst(hw);
    }
    if (ok && profile_.multicast_eth_to_nic_domain && r.kind == ast::RuleKind::kNormal && !r.pass &&
        hw.specs.size() == 1 && hw.specs.front().kind == SpecKind::kEth &&
        MulticastOnly(hw.specs.front())) {
      Report(Kind::kMulticastPriority, r.range.Start,
             "on an SR-IOV physical function mlx4 moves a rule whose only spec is a multicast "
             "destination MAC to the NIC domain, after every verbs rule (verbs-facts §4.4)")
          .Range(r.range);
    }
    if (ok && profile_.multicast_first_spec && r.kind == ast::RuleKind::kNormal && !r.pass &&
        !hw.specs.empty() && MulticastOnly(hw.specs.front())) {
      Report(Kind::kMulticastPriority, r.range.Start,
             "mlx5 puts a rule whose first spec matches only multicast into its multicast "
             "priority, after every other rule, whatever its priority (verbs-facts §3.3)")
          .Range(r.range);
    }
    if (!ok) {
      return std::nullopt;
    }
    return info;
  }

  bool KindAllowed(const ir::Rule &r, bool allowed, llvm::StringRef what) {
    if (allowed) {
      return true;
    }
    Report(Kind::kTargetRuleKind, r.range.Start,
           llvm::formatv("{0} does not support {1}", Name(), what))
        .Range(r.range);
    return false;
  }

  bool PassAllowed(const ir::Rule &r) {
    const DontTrapRule &d = profile_.dont_trap;
    if (!d.allowed) {
      Report(Kind::kTargetRuleKind, r.range.Start,
             llvm::formatv("{0} does not support 'pass' (DONT_TRAP); {1}", Name(), d.why))
          .Range(r.range);
      return false;
    }
    if (d.needs && CapMissing(*d.needs)) {
      CapError(r.range, *d.needs, "'pass'");
      return false;
    }
    return true;
  }

  /// mlx4's DONT_TRAP: at most one spec, an ETH one that matches nothing but
  /// the destination MAC's multicast bit.
  bool SnifferStylePass(const ir::Rule &r, const emit::HwRule &hw) {
    bool fits = hw.specs.size() <= 1;
    if (fits && hw.specs.size() == 1) {
      const HwSpec &s = hw.specs.front();
      fits = s.kind == SpecKind::kEth && !s.inner;
      if (fits) {
        auto [dst, dst_mask] = emit::GetField(s, Field::kEthDst);
        fits = (dst_mask.isZero() || dst_mask == 0x010000000000ull);
        for (Field f : {Field::kEthSrc, Field::kEthType, Field::kEthTci}) {
          fits = fits && emit::GetField(s, f).second.isZero();
        }
      }
    }
    if (!fits) {
      Report(Kind::kTargetRuleKind, r.range.Start,
             llvm::formatv("{0} cannot 'pass' this rule; {1}", Name(), profile_.dont_trap.why))
          .Range(r.range);
    }
    return fits;
  }

  /// mlx5 looks only at the first spec to send a rule to its multicast
  /// priority (verbs-facts §3.3), and spec order is free but for MPLS
  /// (§1.4). So put the action specs first, as DPDK does (§5.5), or, for an
  /// IPv4 multicast destination with no ETH spec, an empty ETH spec (it adds
  /// no match).
  void AvoidMulticastFirst(emit::HwRule &hw) const {
    auto first_action = std::stable_partition(
        hw.specs.begin(), hw.specs.end(), [](const HwSpec &s) { return emit::IsAction(s.kind); });
    if (first_action != hw.specs.begin()) {
      return;
    }
    bool has_eth = llvm::any_of(
        hw.specs, [](const HwSpec &s) { return s.kind == SpecKind::kEth && !s.inner; });
    SpecKind first = hw.specs.front().kind;
    if (!has_eth && (first == SpecKind::kIpv4 || first == SpecKind::kIpv4Ext) &&
        hw.specs.size() < profile_.max_specs) {
      hw.specs.insert(hw.specs.begin(), emit::MakeSpec(SpecKind::kEth));
    }
  }

  static bool MatchesUdpDst(const HwRuleInfo &hw) {
    return llvm::any_of(hw.rule.specs, [](const HwSpec &s) {
      return s.kind == SpecKind::kUdp && !s.inner &&
             !emit::GetField(s, Field::kUdpDst).second.isZero();
    });
  }

  /// The match specs, in protocol-stack order per layer: outer, tunnel (MPLS
  /// right after the UDP, GRE or ETH it is carried in), inner.
  bool BuildMatch(const expand::TernaryRule &t, const ir::Rule &r, emit::HwRule &hw) {
    bool ok = true;
    // Fields first: each must be matchable on this target.
    for (const expand::TernaryMatch &m : t.matches) {
      const FieldRule *rule = profile_.FindField(m.field);
      if (!profile_.HeaderSupported(GetFieldInfo(m.field).header, m.layer == ir::Layer::kInner)) {
        continue; // the header's own diagnostic says it
      }
      MaskRule mr = m.layer == ir::Layer::kInner ? rule->inner : rule->outer;
      llvm::SMRange at = FieldRange(r, m.layer, m.field);
      if (mr == MaskRule::kUnsupported) {
        Report(Kind::kTargetField, at.Start,
               llvm::formatv("{0} cannot match {1}: {2}", Name(), ir::FieldTitle(m.field, m.layer),
                             rule->why))
            .Range(at);
        ok = false;
        continue;
      }
      if (rule->needs && CapMissing(*rule->needs)) {
        CapError(at, *rule->needs, "matching " + ir::FieldTitle(m.field, m.layer));
        ok = false;
      }
    }
    if (!ok) {
      return false; // the spec a rejected field would pick is beside the point
    }
    for (ir::Layer layer : {ir::Layer::kOuter, ir::Layer::kTunnel, ir::Layer::kInner}) {
      ir::HeaderSet headers = t.headers[static_cast<unsigned>(layer)];
      bool inner = layer == ir::Layer::kInner;
      if (inner && headers != 0 && CapMissing(Cap::kInner)) {
        llvm::SMRange at = r.range;
        for (const ir::HeaderUse &u : r.header_uses) {
          if (u.layer == ir::Layer::kInner) {
            at = u.range;
            break;
          }
        }
        CapError(at, Cap::kInner, "matching 'inner' headers");
        return false;
      }
      bool ipv4_ext = llvm::any_of(t.matches, [&](const expand::TernaryMatch &m) {
        return m.layer == layer && GetFieldInfo(m.field).header == Header::kIpv4 &&
               m.field != Field::kIpv4Src && m.field != Field::kIpv4Dst;
      });
      llvm::ArrayRef<Header> order =
          inner ? llvm::ArrayRef<Header>(kInnerOrder) : llvm::ArrayRef<Header>(kStackOrder);
      for (Header h : order) {
        if ((headers & ir::Bit(h)) == 0) {
          continue;
        }
        SpecKind kind = SpecFor(h, ipv4_ext);
        const SpecRule *sr = profile_.FindSpec(kind);
        bool allowed = sr != nullptr && (inner ? sr->inner : sr->outer);
        if (!allowed) {
          llvm::SMRange at = HeaderRange(r, layer, h);
          std::string what = (inner ? "inner '" : "'") + HeaderName(h).str() + "'";
          Report(inner ? Kind::kTargetInner : Kind::kTargetHeader, at.Start,
                 llvm::formatv("{0} cannot match {1} headers; {2}", Name(), what,
                               sr != nullptr ? sr->why : llvm::StringRef("no such spec")))
              .Range(at);
          ok = false;
          continue;
        }
        // mlx5 places MPLS by the spec before it: an outer UDP, or a GRE
        // whatever the MPLS spec's INNER flag (verbs-facts §3.3).
        if (h == Header::kMpls && !hw.specs.empty()) {
          SpecKind prev = hw.specs.back().kind;
          bool prev_inner = hw.specs.back().inner;
          if (prev == SpecKind::kUdp && !prev_inner && !inner && CapMissing(Cap::kMplsOverUdp)) {
            CapError(HeaderRange(r, layer, h), Cap::kMplsOverUdp, "MPLS over UDP");
            ok = false;
          } else if (prev == SpecKind::kGre && CapMissing(Cap::kMplsOverGre)) {
            CapError(HeaderRange(r, layer, h), Cap::kMplsOverGre, "MPLS over GRE");
            ok = false;
          }
        }
        HwSpec spec = emit::MakeSpec(kind, inner);
        for (const expand::TernaryMatch &m : t.matches) {
          if (m.layer == layer && GetFieldInfo(m.field).header == h &&
              emit::PlacementOf(m.field, kind)) {
            emit::SetField(spec, m.field, m.value, m.mask);
          }
        }
        hw.specs.push_back(spec);
      }
    }
    return ok;
  }

  bool BuildActions(const ir::Rule &r, HwRuleInfo &info) {
    bool ok = true;
    for (const ir::Action &a : r.actions) {
      if (a.kind == ast::ActionKind::kSteer) {
        info.queue = a.operand;
        continue;
      }
      if (a.kind == ast::ActionKind::kAllow) {
        continue; // an egress rule that does not drop is allowed (verbs-facts §3.6)
      }
      SpecKind kind = ActionSpec(a.kind);
      if (!llvm::is_contained(profile_.actions, kind)) {
        Report(Kind::kTargetAction, a.range.Start,
               llvm::formatv("{0} cannot '{1}': {2}", Name(), ast::ActionKeyword(a.kind),
                             profile_.actions_why))
            .Range(a.range);
        ok = false;
        continue;
      }
      if (r.kind != ast::RuleKind::kNormal && profile_.special_kinds_ignore_specs) {
        // The driver builds default and sniffer rules from its own specs, so
        // the action would silently not happen.
        Report(Kind::kTargetAction, a.range.Start,
               llvm::formatv("{0} ignores '{1}' on a '{2}' rule, which the driver builds from "
                             "its own specs (verbs-facts §3.5, §3.7)",
                             Name(), ast::ActionKeyword(a.kind), ast::RuleKindName(r.kind)))
            .Range(a.range);
        ok = false;
        continue;
      }
      HwSpec spec = emit::MakeSpec(kind);
      if (kind == SpecKind::kActionTag) {
        spec.tag = a.operand;
      } else {
        spec.binding = a.operand;
      }
      info.rule.specs.push_back(spec);
    }
    return ok;
  }

  // --- Priorities ------------------------------------------------------------

  /// Gives each normal rule the lowest level above every earlier rule of its
  /// port and direction that overlaps it with a different outcome, so that
  /// hardware order equals policy order wherever it matters; the result is
  /// the length of the longest such chain. Default and sniffer rules live in
  /// their own tables and take priority 0. A group whose chains are longer
  /// than the target's levels is placed a second time, with budget fitting
  /// to the goals of GoalsFor().
  void AssignPriorities() {
    std::map<std::pair<int, unsigned>, std::vector<size_t>> groups;
    for (size_t i = 0; i < out_.rules.size(); ++i) {
      const ir::Rule &r = policy_.rules[out_.rules[i].source];
      if (r.kind == ast::RuleKind::kNormal) {
        groups[{static_cast<int>(r.direction), r.port}].push_back(i);
      }
    }
    cons_.assign(out_.rules.size(), {});
    level_.assign(out_.rules.size(), 0);
    gone_.assign(out_.rules.size(), false);
    chain_.assign(out_.rules.size(), 0);
    for (auto &[key, members] : groups) {
      for (size_t i : members) {
        cons_[i] = ConstraintsOf(expanded_.rules[out_.rules[i].expanded]);
      }
      unsigned used = out_.levels_used;
      std::vector<Placed> placed;
      Overflow overflow;
      Place(members, nullptr, placed, overflow);
      if (overflow.rule != nullptr && refiner_ != nullptr && expanded_mut_ != nullptr) {
        // Too many levels: place the group again, fitting each rule below
        // the level its chain maps to.
        std::vector<unsigned> goals = GoalsFor(members);
        out_.levels_used = used;
        placed.clear();
        overflow = Overflow();
        Place(members, &goals, placed, overflow);
      }
      ReportPlacement(placed, overflow);
      // Copies went in before the block that needed them (Copy()).
      std::stable_sort(members.begin(), members.end(), [&](size_t a, size_t b) {
        return out_.rules[a].source < out_.rules[b].source;
      });
      CheckMulticastOrder(members);
    }
    if (!dead_.empty() || out_.copies > 0) {
      // Drop the rules that were split, and put the pieces in policy order
      // (the rules of one source rule are not ordered among themselves).
      llvm::sort(dead_);
      std::vector<HwRuleInfo> kept;
      kept.reserve(out_.rules.size() - dead_.size());
      for (size_t i = 0, d = 0; i < out_.rules.size(); ++i) {
        if (d < dead_.size() && dead_[d] == i) {
          ++d;
          continue;
        }
        kept.push_back(std::move(out_.rules[i]));
      }
      SortBySource(kept);
      out_.rules = std::move(kept);
      dead_.clear();
    }
  }

  /// Where budget fitting puts a rule, by its side (below) and the length of
  /// its chain (the level it would need without fitting). Rules placed on one
  /// level that compete need copies or cuts, but two rules with chains of the
  /// same length never compete (one would be above the other). The first
  /// kExactLevels chain lengths keep their level, to leave room below for the
  /// copies, which are small and low; the longer ones are cut into runs.
  ///
  /// - *Runs*: one level per run of chain lengths, for both sides; every
  ///   competing pair inside a run costs a copy.
  /// - *Staggered*: each rule has one of two sides, chosen so that rules of
  ///   one side rarely compete (on ClassBench policies, rules without a
  ///   source address compete with those without a destination address, not
  ///   among themselves). The runs become windows, and in each window one
  ///   side (the *leading* side, alternating) takes level exact + w and the
  ///   other exact + w + 1, so a side keeps one level over two windows.
  ///   Inside a window only the pairs whose earlier rule is on the other side
  ///   cost a copy, since the leading side's rules already come first: about
  ///   half of what a run costs, with one window fewer than runs.
  ///
  /// GoalsFor() tries both and keeps what Copies() finds cheapest.
  class FitGoal {
  public:
    static constexpr unsigned kExactLevels = 2;

    /// `cost(run, a, b)`: what sharing run (or window) `run` costs the
    /// rules with chain lengths in [a, b) (a block sum of pair counts).
    using Cost = llvm::function_ref<double(unsigned, unsigned, unsigned)>;

    /// `lengths` chain lengths, more than `levels`.
    static FitGoal Runs(unsigned lengths, unsigned levels, Cost cost) {
      FitGoal goal(lengths, levels);
      unsigned exact = goal.exact_;
      std::vector<unsigned> runs = Split(lengths - exact, levels - exact, cost, exact);
      for (unsigned c = exact; c < lengths; ++c) {
        goal.level_[0][c] = goal.level_[1][c] = exact + runs[c - exact];
      }
      return goal;
    }

    /// `lead`: the side that leads the first window. Needs two levels past
    /// the exact ones.
    static FitGoal Staggered(unsigned lengths, unsigned levels, unsigned lead, Cost cost) {
      FitGoal goal(lengths, levels);
      unsigned exact = goal.exact_;
      assert(levels >= exact + 2);
      std::vector<unsigned> windows = Split(lengths - exact, levels - exact - 1, cost, exact);
      for (unsigned c = exact; c < lengths; ++c) {
        unsigned w = windows[c - exact];
        unsigned leading = lead ^ (w & 1);
        goal.level_[leading][c] = exact + w;
        goal.level_[leading ^ 1][c] = exact + w + 1;
      }
      return goal;
    }

    unsigned LevelFor(unsigned side, unsigned chain) const {
      return level_[side][std::min<size_t>(chain, level_[side].size() - 1)];
    }

  private:
    FitGoal(unsigned lengths, unsigned levels) : exact_(std::min(kExactLevels, levels - 1)) {
      for (std::vector<unsigned> &level : level_) {
        level.resize(lengths);
        std::iota(level.begin(), level.begin() + exact_, 0u);
      }
    }

    /// Cuts 0..m-1 into at most `parts` runs of consecutive indexes,
    /// minimizing the sum of cost(run, offset + start, offset + end):
    /// dynamic programming, with divide and conquer over the split points
    /// (the costs are sums over square blocks of matrices that are not
    /// negative, so the best split moves right with the run's end). Returns
    /// each index's run.
    static std::vector<unsigned> Split(unsigned m, unsigned parts, Cost cost, unsigned offset) {
      const double inf = std::numeric_limits<double>::infinity();
      std::vector<double> prev(m + 1, inf), cur(m + 1, inf);
      // from[p][i]: where the last of p+1 runs covering [0, i) starts.
      std::vector<std::vector<uint32_t>> from(parts, std::vector<uint32_t>(m + 1, 0));
      prev[0] = 0;
      for (unsigned p = 0; p < parts; ++p) {
        std::vector<uint32_t> &at = from[p];
        // Fills cur[i] for i in [lo, hi], the split among [jlo, jhi].
        auto solve = [&](auto &&self, unsigned lo, unsigned hi, unsigned jlo,
                         unsigned jhi) -> void {
          unsigned mid = lo + (hi - lo) / 2, best_j = jlo;
          double best = inf;
          for (unsigned j = jlo; j <= std::min(mid, jhi); ++j) {
            double v = prev[j] + cost(p, offset + j, offset + mid);
            if (v < best) {
              best = v;
              best_j = j;
            }
          }
          cur[mid] = best;
          at[mid] = best_j;
          if (mid > lo) {
            self(self, lo, mid - 1, jlo, best_j);
          }
          if (mid < hi) {
            self(self, mid + 1, hi, best_j, jhi);
          }
        };
        solve(solve, 0, m, 0, m);
        std::swap(prev, cur);
      }
      std::vector<unsigned> run(m, 0);
      unsigned end = m;
      for (unsigned p = parts; p-- > 0;) {
        unsigned start = from[p][end];
        for (unsigned i = start; i < end; ++i) {
          run[i] = p;
        }
        end = start;
      }
      return run;
    }

    unsigned exact_;
    /// Per side and chain length, the level.
    std::array<std::vector<unsigned>, 2> level_;
  };

  /// The goal level of each rule of a group (by out_.rules index) whose
  /// chains (chain_, from a placement without fitting) are longer than the
  /// target's levels. One pass over the overlap index finds the pairs of
  /// rules that overlap with different outcomes (without asking the exact
  /// model, which would cost as much as fitting). It gives each rule, in
  /// policy order, the side that fewer of the earlier rules it competes with
  /// (of chains within about a window of its own) have, counts the pairs per
  /// side of each rule and per chain length (in at most kBuckets buckets of
  /// lengths past the exact ones) for FitGoal's runs and staggered windows,
  /// and keeps the pairs for Refine(), Wait() and Copies(). Each of the
  /// three goals is taken as it is and after Refine(), then with Wait();
  /// the one of the six with the fewest Copies() wins. Past kMaxCounted
  /// lengths every pair of rules with different chain lengths counts
  /// instead (runs only), and no rule waits.
  std::vector<unsigned> GoalsFor(const std::vector<size_t> &members) {
    static constexpr unsigned kMaxCounted = 4096, kBuckets = 1024;
    unsigned lengths = 0;
    for (size_t i : members) {
      lengths = std::max(lengths, chain_[i] + 1);
    }
    unsigned levels = target_.MaxPriority() + 1;
    std::vector<unsigned> goals(out_.rules.size(), levels - 1);
    if (lengths > kMaxCounted) {
      std::vector<double> sum(lengths + 1, 0), squares(lengths + 1, 0);
      std::vector<double> rules(lengths, 0);
      for (size_t i : members) {
        rules[chain_[i]] += 1;
      }
      for (unsigned c = 0; c < lengths; ++c) {
        sum[c + 1] = sum[c] + rules[c];
        squares[c + 1] = squares[c] + rules[c] * rules[c];
      }
      FitGoal goal = FitGoal::Runs(lengths, levels, [&](unsigned, unsigned a, unsigned b) {
        double n = sum[b] - sum[a];
        return (n * n - (squares[b] - squares[a])) / 2;
      });
      for (size_t i : members) {
        goals[i] = goal.LevelFor(0, chain_[i]);
      }
      out_.fit_goals.push_back({"runs of chain lengths, every pair of rules counted", 0});
      return goals;
    }
    unsigned exact = std::min(FitGoal::kExactLevels, levels - 1);
    // Chain lengths past the exact ones, `scale` to a bucket.
    unsigned scale = std::max(1u, (lengths - exact + kBuckets - 1) / kBuckets);
    auto bucket = [&](unsigned chain) {
      return chain < exact ? chain : exact + (chain - exact) / scale;
    };
    unsigned buckets = bucket(lengths - 1) + 1;
    // About one window's chain lengths: competing rules further apart than
    // that rarely share a level, so they do not decide a side.
    unsigned near = std::max(1u, (lengths - exact) / std::max(1u, levels - exact - 1));
    // pairs[se * 2 + sl][x * side + y]: competing pairs whose earlier rule
    // is on side se with its chain's bucket below x, and whose later rule is
    // on side sl with its bucket below y.
    size_t side = buckets + 1;
    std::array<std::vector<double>, 4> pairs;
    for (std::vector<double> &p : pairs) {
      p.assign(side * side, 0);
    }
    std::vector<uint8_t> side_of(out_.rules.size(), 0);
    expand::OverlapIndex index;
    for (size_t i : members) {
      index.Plan(expanded_.rules[out_.rules[i].expanded]);
    }
    std::vector<uint32_t> competing;
    // The pairs again, for Refine(): per rule (by place in `members`), the
    // places of the earlier rules it competes with.
    std::vector<uint32_t> place(out_.rules.size(), 0);
    for (size_t p = 0; p < members.size(); ++p) {
      place[members[p]] = static_cast<uint32_t>(p);
    }
    std::vector<uint32_t> earlier;
    std::vector<size_t> earlier_at(members.size() + 1, 0);
    for (size_t k = 0; k < members.size();) {
      size_t end = k + 1;
      while (end < members.size() &&
             out_.rules[members[end]].source == out_.rules[members[k]].source) {
        ++end;
      }
      for (size_t b = k; b < end; ++b) {
        size_t self = members[b];
        competing.clear();
        index.Query(expanded_.rules[out_.rules[self].expanded], [&](uint32_t j) {
          if (!SameOutcome(policy_, out_.rules[j], out_.rules[self]) &&
              Overlap(cons_[j], cons_[self])) {
            competing.push_back(j);
          }
        });
        std::array<unsigned, 2> close = {0, 0};
        for (uint32_t j : competing) {
          // Overlap is not reach: an earlier rule may have the longer chain.
          if (chain_[self] <= chain_[j] + near && chain_[j] <= chain_[self] + near) {
            ++close[side_of[j]];
          }
        }
        unsigned s = close[1] < close[0] ? 1 : 0;
        side_of[self] = static_cast<uint8_t>(s);
        for (uint32_t j : competing) {
          pairs[side_of[j] * 2 + s][(bucket(chain_[j]) + 1) * side + bucket(chain_[self]) + 1] += 1;
          earlier.push_back(place[j]);
        }
        earlier_at[b + 1] = earlier.size();
      }
      for (size_t b = k; b < end; ++b) {
        index.Insert(static_cast<uint32_t>(members[b]),
                     expanded_.rules[out_.rules[members[b]].expanded]);
      }
      k = end;
    }
    for (std::vector<double> &p : pairs) {
      for (size_t x = 1; x < side; ++x) {
        for (size_t y = 1; y < side; ++y) {
          p[x * side + y] +=
              p[(x - 1) * side + y] + p[x * side + y - 1] - p[(x - 1) * side + y - 1];
        }
      }
    }
    // The pairs of `p` with both buckets in [a, b).
    auto block = [&](const std::vector<double> &p, unsigned a, unsigned b) {
      return p[b * side + b] - p[a * side + b] - p[b * side + a] + p[a * side + a];
    };
    std::vector<FitGoal> tried;
    tried.push_back(FitGoal::Runs(buckets, levels, [&](unsigned, unsigned a, unsigned b) {
      return block(pairs[0], a, b) + block(pairs[1], a, b) + block(pairs[2], a, b) +
             block(pairs[3], a, b);
    }));
    for (unsigned lead = 0; lead < 2 && levels >= exact + 2; ++lead) {
      tried.push_back(
          FitGoal::Staggered(buckets, levels, lead, [&](unsigned w, unsigned a, unsigned b) {
            unsigned leading = lead ^ (w & 1);
            return block(pairs[(leading ^ 1) * 2 + leading], a, b) + block(pairs[0], a, b) +
                   block(pairs[3], a, b);
          }));
    }
    Competing competing_pairs(std::move(earlier), std::move(earlier_at));
    std::vector<unsigned> best;
    size_t best_cost = SIZE_MAX;
    std::string best_name;
    auto consider = [&](std::vector<unsigned> level, std::string name) {
      Wait(competing_pairs, levels, level);
      size_t cost = Copies(competing_pairs, level);
      if (cost < best_cost) {
        best_cost = cost;
        best = std::move(level);
        best_name = std::move(name);
      }
    };
    for (size_t k = 0; k < tried.size(); ++k) {
      std::vector<unsigned> level(members.size());
      for (size_t p = 0; p < members.size(); ++p) {
        level[p] = tried[k].LevelFor(side_of[members[p]], bucket(chain_[members[p]]));
      }
      std::string name =
          k == 0 ? "runs of chain lengths"
                 : llvm::formatv("staggered windows of two sides, side {0} leading", k).str();
      consider(level, name);
      Refine(competing_pairs, levels, exact, level);
      consider(std::move(level), name + ", after local search");
    }
    for (size_t p = 0; p < members.size(); ++p) {
      goals[members[p]] = best[p];
    }
    out_.fit_goals.push_back({std::move(best_name), best_cost});
    return goals;
  }

  /// The pairs of rules of a group that compete, both ways: per rule (by
  /// place in the group), the places of the earlier rules it competes with,
  /// `earlier[earlier_at[p]..earlier_at[p + 1])`, and of the later ones.
  struct Competing {
    Competing(std::vector<uint32_t> earlier_in, std::vector<size_t> earlier_at_in)
        : earlier(std::move(earlier_in)), earlier_at(std::move(earlier_at_in)),
          later_at(earlier_at.size(), 0), later(earlier.size()) {
      size_t n = earlier_at.size() - 1;
      for (uint32_t x : earlier) {
        ++later_at[x + 1];
      }
      for (size_t p = 0; p < n; ++p) {
        later_at[p + 1] += later_at[p];
      }
      std::vector<size_t> fill(later_at.begin(), later_at.end() - 1);
      for (size_t y = 0; y < n; ++y) {
        for (size_t e = earlier_at[y]; e < earlier_at[y + 1]; ++e) {
          later[fill[earlier[e]]++] = static_cast<uint32_t>(y);
        }
      }
    }

    std::vector<uint32_t> earlier;
    std::vector<size_t> earlier_at, later_at;
    std::vector<uint32_t> later;
  };

  /// Improves the goal `level` of each rule of a group (by place in the
  /// group) by local search over the competing `pairs`: a pair whose
  /// earlier rule is not above the later one costs a copy or a cut. Each
  /// sweep moves every rule, in policy order, to the level where its own
  /// pairs cost least, given every other rule's (the deepest of the best,
  /// which leaves the most room to the rules after it), until a sweep moves
  /// few rules. The rules with the shortest chains keep their exact levels,
  /// to leave room for copies. Targets with more than kMaxLevels levels
  /// (mlx4's 4,096) are left as they are: a sweep costs a pass over the
  /// levels per rule.
  static void Refine(const Competing &pairs, unsigned levels, unsigned exact,
                     std::vector<unsigned> &level) {
    static constexpr unsigned kMaxLevels = 64, kSweeps = 8;
    if (levels > kMaxLevels) {
      return;
    }
    const std::vector<uint32_t> &earlier = pairs.earlier, &later = pairs.later;
    const std::vector<size_t> &earlier_at = pairs.earlier_at, &later_at = pairs.later_at;
    size_t n = level.size();
    std::vector<int64_t> cost(levels), at(levels);
    for (unsigned sweep = 0; sweep < kSweeps; ++sweep) {
      size_t moved = 0;
      for (size_t p = 0; p < n; ++p) {
        if (level[p] < exact) {
          continue;
        }
        // cost[l]: were this rule at l, its earlier rules at l or below
        // (in number), and its later rules at l or above.
        std::fill(cost.begin(), cost.end(), 0);
        std::fill(at.begin(), at.end(), 0);
        for (size_t e = earlier_at[p]; e < earlier_at[p + 1]; ++e) {
          ++cost[level[earlier[e]]];
        }
        for (size_t e = later_at[p]; e < later_at[p + 1]; ++e) {
          ++at[level[later[e]]];
        }
        for (unsigned l = levels - 1; l-- > 0;) {
          cost[l] += cost[l + 1];
        }
        int64_t above = 0;
        for (unsigned l = 0; l < levels; ++l) {
          above += at[l];
          cost[l] += above;
        }
        unsigned best = level[p];
        for (unsigned l = levels; l-- > exact;) {
          if (cost[l] < cost[best]) {
            best = l;
          }
        }
        if (best != level[p]) {
          level[p] = best;
          ++moved;
        }
      }
      if (moved * 1000 < n) {
        break;
      }
    }
  }

  /// Lets each rule of a group wait up to the level below the first `level`
  /// of the later rules it competes with (the last level if there are none):
  /// it then rarely needs fitting, and none of them has to move for it.
  static void Wait(const Competing &pairs, unsigned levels, std::vector<unsigned> &level) {
    for (size_t p = 0; p < level.size(); ++p) {
      unsigned wait = levels - 1;
      for (size_t e = pairs.later_at[p]; e < pairs.later_at[p + 1]; ++e) {
        unsigned first = level[pairs.later[e]];
        wait = std::min(wait, first > 0 ? first - 1 : 0);
      }
      level[p] = std::max(level[p], wait);
    }
  }

  /// About how many copies Place() makes to fit a group's rules to `goal`:
  /// in policy order, each rule takes a copy for every earlier rule it
  /// competes with on its goal level or below, and otherwise the level below
  /// the lowest of them (its place, which may be above its goal).
  static size_t Copies(const Competing &pairs, const std::vector<unsigned> &goal) {
    std::vector<unsigned> level(goal.size(), 0);
    size_t copies = 0;
    for (size_t y = 0; y < goal.size(); ++y) {
      unsigned at = 0;
      for (size_t e = pairs.earlier_at[y]; e < pairs.earlier_at[y + 1]; ++e) {
        unsigned x = level[pairs.earlier[e]];
        if (x >= goal[y]) {
          ++copies;
        } else {
          at = std::max(at, x + 1);
        }
      }
      level[y] = at;
    }
    return copies;
  }

  /// One source rule's block of hardware rules as placed, for the reports
  /// that follow: its first rule, and the earlier rule that decided its level.
  struct Placed {
    const ir::Rule *rule;
    size_t first, blocker;
  };

  /// The first rule of a group that needs a level the target lacks.
  struct Overflow {
    const ir::Rule *rule = nullptr;
    unsigned level = 0;
    std::string why;
  };

  /// Assigns the levels of one group's rules, in policy order (see
  /// AssignPriorities); with `goal` (per rule, from GoalsFor()), fits each
  /// trapping rule to its goal by Split(). Pieces replace their rules in
  /// `members`.
  void Place(std::vector<size_t> &members, const std::vector<unsigned> *goal,
             std::vector<Placed> &placed, Overflow &overflow) {
    unsigned max_priority = target_.MaxPriority();
    expand::OverlapIndex index;
    for (size_t i : members) {
      index.Plan(expanded_.rules[out_.rules[i].expanded]);
    }
    std::vector<uint32_t> candidates;
    // Fitting's progress, in the group's rules before fitting.
    const uint64_t total = members.size();
    uint64_t done = 0;
    // The hardware rules of one source rule are consecutive; they share an
    // outcome and are not ordered among themselves, so they go into the
    // index together, after the last of them.
    for (size_t k = 0; k < members.size();) {
      uint32_t source = out_.rules[members[k]].source;
      size_t end = k + 1;
      while (end < members.size() && out_.rules[members[end]].source == source) {
        ++end;
      }
      const ir::Rule &r = policy_.rules[source];
      current_ = &r;
      auto above = [&](size_t j) { return LevelAbove(j, r); };
      size_t blocker = members[k];
      // ReportPlacement() names the blocker only for these.
      bool named_blocker =
          profile_.udp_dst_ignores_priority || (r.pass && profile_.dont_trap.sniffer_style);
      for (size_t b = k; b < end; ++b) {
        size_t self = members[b];
        level_[self] = 0;
        auto blocks = [&](uint32_t j) {
          const HwRuleInfo &other = out_.rules[j];
          return !gone_[j] && !SameOutcome(policy_, other, out_.rules[self]) &&
                 Overlap(cons_[j], cons_[self]) &&
                 (refiner_ == nullptr || refiner_->Reaches(j, self));
        };
        if (goal == nullptr) {
          // No level changes in this pass once a rule is in the index, so
          // its key, level + 1, bounds what it can ask of a later rule: the
          // search skips groups that cannot raise the level found so far.
          // Where a diagnostic may name the blocker, it is the first of the
          // rules that decide the level, so groups that tie are searched too.
          size_t found = SIZE_MAX;
          unsigned ties = named_blocker ? 0 : 1;
          index.Search(expanded_.rules[out_.rules[self].expanded], [&](uint32_t j) {
            unsigned a = above(j);
            if ((a > level_[self] || (a == level_[self] && a > 0 && j < found)) && blocks(j)) {
              level_[self] = a;
              found = j;
            }
            return level_[self] + ties;
          });
          if (found != SIZE_MAX) {
            blocker = found;
          }
          chain_[self] = level_[self];
          continue;
        }
        candidates.clear();
        index.Query(expanded_.rules[out_.rules[self].expanded],
                    [&](uint32_t j) { candidates.push_back(j); });
        // Highest first: the first rule that must stay before this one
        // decides its level. Most answers come from the first few, so the
        // candidates go into a heap rather than being sorted.
        auto lower = [&](uint32_t x, uint32_t y) {
          unsigned ax = above(x), ay = above(y);
          return ax != ay ? ax < ay : x > y;
        };
        std::make_heap(candidates.begin(), candidates.end(), lower);
        for (auto end = candidates.end(); end != candidates.begin(); --end) {
          std::pop_heap(candidates.begin(), end, lower);
          uint32_t j = end[-1];
          if (above(j) <= level_[self]) {
            break;
          }
          if (gone_[j]) {
            continue; // lowered: its pieces are in the index
          }
          if (!blocks(j)) {
            continue;
          }
          level_[self] = above(j);
          blocker = j;
          break;
        }
      }
      for (size_t b = k; b < end && !r.pass && goal == nullptr; ++b) {
        out_.levels_bound = std::max(out_.levels_bound, chain_[members[b]] + 1);
      }
      std::string why;
      if (goal != nullptr && fit_progress_) {
        done += end - k;
        fit_progress_(done, total);
      }
      for (size_t b = k; b < end && goal != nullptr && !r.pass; ++b) {
        // Fit to the goal, or failing that to the last level.
        for (unsigned limit : {(*goal)[members[b]], max_priority}) {
          if (level_[members[b]] <= limit) {
            break;
          }
          size_t self = members[b], before = members.size();
          std::vector<size_t> pieces;
          fit_failure_.clear();
          copies_at_ = k;
          bool split = Split(members, index, self, limit, 0, pieces);
          why = fit_failure_;
          // Rules lowered on the way, even if this one then failed, were
          // replaced by their pieces, all before this rule's block.
          size_t shift = members.size() - before;
          k += shift;
          b += shift;
          end += shift;
          if (!split) {
            continue; // try the last level, or the budget error follows
          }
          auto at = static_cast<std::ptrdiff_t>(b);
          members.erase(members.begin() + at);
          members.insert(members.begin() + at, pieces.begin(), pieces.end());
          // b steps to this rule's last piece (back one if it has none).
          end += pieces.size() - 1;
          b += pieces.size() - 1;
          break;
        }
      }
      if (r.pass) {
        // A packet must get one copy: expansions of a `pass` rule that
        // overlap each other have to share a priority.
        unsigned top = 0, chain = 0;
        for (size_t b = k; b < end; ++b) {
          top = std::max(top, level_[members[b]]);
          chain = std::max(chain, chain_[members[b]]);
        }
        for (size_t b = k; b < end; ++b) {
          level_[members[b]] = top;
          chain_[members[b]] = chain;
        }
        if (goal == nullptr) {
          out_.levels_bound = std::max(out_.levels_bound, chain + 1);
        }
      }
      for (size_t b = k; b < end; ++b) {
        HwRuleInfo &hw = out_.rules[members[b]];
        unsigned level = level_[members[b]];
        out_.levels_used = std::max(out_.levels_used, level + 1);
        if (level > max_priority && overflow.rule == nullptr) {
          overflow = {&r, level, why};
        }
        hw.rule.priority = static_cast<uint16_t>(std::min<unsigned>(level, 0xffff));
        index.Insert(static_cast<uint32_t>(members[b]),
                     expanded_.rules[out_.rules[members[b]].expanded], level + 1);
      }
      placed.push_back({&r, members[k], blocker});
      k = end;
    }
  }

  /// The diagnostics of one group's placement: the priority budget, and
  /// levels the target would not keep.
  void ReportPlacement(const std::vector<Placed> &placed, const Overflow &overflow) {
    unsigned max_priority = target_.MaxPriority();
    if (overflow.rule != nullptr) {
      const ir::Rule &r = *overflow.rule;
      current_ = &r;
      Report(Kind::kPriorityBudget, r.range.Start,
             llvm::formatv("this rule needs hardware priority {0} to stay after the rules "
                           "it overlaps with different outcomes; {1}{2} has priorities "
                           "0..{3} ({4})",
                           overflow.level, Name(),
                           max_priority < profile_.max_priority ? " without 'prio16'" : "",
                           max_priority, profile_.priority_why))
          .Range(r.range)
          .AddNote(llvm::SMLoc(),
                   r.pass ? std::string("it was not made to fit below the rules before "
                                        "it: flowc does not split or copy around 'pass' "
                                        "rules")
                   : overflow.why.empty()
                       ? std::string("it was not made to fit below the rules before it "
                                     "(that needs the exact model: --optimize-limit)")
                       : "it cannot be made to fit below the rules before it: " + overflow.why);
    }
    for (const Placed &p : placed) {
      const ir::Rule &r = *p.rule;
      current_ = &r;
      if (profile_.udp_dst_ignores_priority && level_[p.first] > 0 &&
          MatchesUdpDst(out_.rules[p.first])) {
        const ir::Rule &before = policy_.rules[out_.rules[p.blocker].source];
        Report(Kind::kIgnoredPriority, r.range.Start,
               llvm::formatv("{0} does not apply the priority of a rule that matches a UDP "
                             "destination port (verbs-facts §4.4), so this rule may not stay "
                             "after the rule it overlaps",
                             Name()))
            .Range(r.range)
            .AddNote(before.range.Start, "which is this one", before.range);
      }
      if (level_[p.first] > 0 && r.pass && profile_.dont_trap.sniffer_style) {
        const ir::Rule &before = policy_.rules[out_.rules[p.blocker].source];
        Report(Kind::kTargetRuleKind, r.range.Start,
               llvm::formatv("{0} takes 'pass' (DONT_TRAP) only at priority 0, but this rule "
                             "must come after an overlapping rule",
                             Name()))
            .Range(r.range)
            .AddNote(before.range.Start, "which is this one", before.range);
      }
    }
  }

  /// The rules of each table (`table`, kNone for none), most frequent
  /// match mask first, then by the mask's first rule and in policy order.
  /// Installed so, the masks with the most rules take a table's big groups
  /// (verbs-facts §3.8): a mask that appears first in policy order with one
  /// rule no longer takes a group of 9,362 entries from the mask of the
  /// next thousands.
  static std::vector<uint32_t> ByMaskFrequency(const std::vector<uint32_t> &table,
                                               const std::vector<uint32_t> &mask) {
    llvm::DenseMap<uint64_t, std::pair<uint32_t, uint32_t>> seen; // count, first rule
    auto key = [&](uint32_t i) { return (uint64_t{table[i]} << 32) | mask[i]; };
    for (uint32_t i = 0; i < table.size(); ++i) {
      ++seen.try_emplace(key(i), 0, i).first->second.first;
    }
    std::vector<std::pair<uint32_t, uint32_t>> of(table.size());
    for (uint32_t i = 0; i < table.size(); ++i) {
      of[i] = seen.find(key(i))->second;
    }
    std::vector<uint32_t> order(table.size());
    std::iota(order.begin(), order.end(), 0);
    llvm::sort(order, [&](uint32_t a, uint32_t b) {
      return std::make_tuple(table[a], of[b].first, of[a].second, a) <
             std::make_tuple(table[b], of[a].first, of[b].second, b);
    });
    return order;
  }

  /// Keeps every flow table within its entries (mlx5, verbs-facts §3.8).
  /// Each table is filled in the order flowrt creates the rules: policy
  /// order, or, once that overflows, each table's rules most frequent mask
  /// first (ByMaskFrequency()), the order they are then emitted in. Where
  /// one still overflows, trapping rules leave it for a later level
  /// (a higher number) below which no rule they overlap with a different
  /// outcome sits, a level already used if one has room: such a rule still
  /// comes after every rule it came after, and before every rule with a
  /// different outcome that it came before, so every packet keeps its
  /// outcome. A table that still overflows is an error (FL8017), at the
  /// first rule the device would refuse.
  void FitTables() {
    const unsigned entries = target_.TableEntries(), groups = profile_.table_groups;
    const size_t n = out_.rules.size();
    if (entries == 0 || n == 0) {
      return;
    }
    // Tables by (direction, port, TableOf()).
    using TableKey = std::tuple<int, unsigned, uint64_t>;
    std::map<TableKey, uint32_t> ids;
    std::vector<TableKey> keys;
    auto table_id = [&](const HwRuleInfo &hw) {
      const ir::Rule &r = policy_.rules[hw.source];
      TableKey key{static_cast<int>(r.direction), r.port,
                   TableOf(hw.rule, profile_.multicast_first_spec)};
      auto [it, added] = ids.emplace(key, static_cast<uint32_t>(keys.size()));
      if (added) {
        keys.push_back(key);
      }
      return it->second;
    };
    constexpr uint32_t kNone = UINT32_MAX;
    std::vector<uint32_t> table(n, kNone), mask(n);
    std::vector<bool> multicast(n, false);
    llvm::StringMap<uint32_t> masks;
    for (size_t i = 0; i < n; ++i) {
      const emit::HwRule &hw = out_.rules[i].rule;
      if (hw.type != emit::AttrType::kNormal) {
        continue; // the leftovers and sniffer tables hold one rule per port
      }
      table[i] = table_id(out_.rules[i]);
      multicast[i] = std::get<2>(keys[table[i]]) == kMulticastTable;
      mask[i] = masks.try_emplace(MaskKey(hw), static_cast<uint32_t>(masks.size())).first->second;
    }
    std::vector<TableFill::Slot> slot(n, TableFill::Slot::kGroup);
    // The order flowrt creates each table's rules in: policy order, or, once
    // that overflows, ByMaskFrequency().
    std::vector<uint32_t> order;
    std::vector<TableFill> fills;
    auto fill = [&] {
      fills.assign(keys.size(), TableFill(entries, groups));
      uint64_t full = 0;
      for (size_t k = 0; k < n; ++k) {
        size_t i = order.empty() ? k : order[k];
        if (table[i] != kNone) {
          slot[i] = fills[table[i]].Add(mask[i]);
          full += slot[i] == TableFill::Slot::kFull;
        }
      }
      return full;
    };
    uint64_t full = fill();
    if (full == 0) {
      return;
    }
    order = ByMaskFrequency(table, mask);
    full = fill();
    // Emits each table's rules in `order`, in the places its rules had:
    // rules of different tables never compete for a packet.
    auto reorder = [&] {
      std::vector<uint32_t> perm(n);
      std::iota(perm.begin(), perm.end(), 0);
      std::vector<std::vector<uint32_t>> places(keys.size());
      for (uint32_t i = 0; i < n; ++i) {
        if (table[i] != kNone) {
          places[table[i]].push_back(i);
        }
      }
      std::vector<size_t> next(keys.size(), 0);
      std::vector<bool> changed(keys.size(), false);
      for (uint32_t i : order) {
        if (table[i] != kNone) {
          uint32_t place = places[table[i]][next[table[i]]++];
          perm[place] = i;
          changed[table[i]] = changed[table[i]] || place != i;
        }
      }
      out_.tables_reordered = static_cast<uint32_t>(llvm::count(changed, true));
      std::vector<HwRuleInfo> rules(n);
      for (size_t p = 0; p < n; ++p) {
        rules[p] = std::move(out_.rules[perm[p]]);
      }
      out_.rules = std::move(rules);
      auto apply = [&](auto &v) {
        auto old = v;
        for (size_t p = 0; p < n; ++p) {
          v[p] = old[perm[p]];
        }
      };
      apply(table);
      apply(mask);
      apply(slot);
      apply(multicast);
      order.clear();
    };
    if (full == 0) {
      reorder();
      return;
    }
    const uint64_t safe = TableFill::SafeRules(entries, groups);
    const unsigned max_priority = target_.MaxPriority();
    // Ports whose trapping rules no move can fit: reported, and left alone.
    const std::set<std::pair<int, unsigned>> beyond = PortsBeyondTables(table, mask, multicast);
    auto hopeless = [&](size_t i) {
      const HwRuleInfo &hw = out_.rules[i];
      const ir::Rule &r = policy_.rules[hw.source];
      return !multicast[i] && (hw.rule.flags & emit::kFlagDontTrap) == 0 &&
             beyond.count({static_cast<int>(r.direction), r.port}) != 0;
    };
    std::vector<std::vector<Constraint>> cons(n);
    std::map<std::pair<int, unsigned>, expand::OverlapIndex> index;
    for (size_t i = 0; i < n; ++i) {
      if (table[i] != kNone && !multicast[i]) {
        const ir::Rule &r = policy_.rules[out_.rules[i].source];
        index[{static_cast<int>(r.direction), r.port}].Plan(
            expanded_.rules[out_.rules[i].expanded]);
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (table[i] != kNone && !multicast[i]) {
        const ir::Rule &r = policy_.rules[out_.rules[i].source];
        cons[i] = ConstraintsOf(expanded_.rules[out_.rules[i].expanded]);
        index[{static_cast<int>(r.direction), r.port}].Insert(
            static_cast<uint32_t>(i), expanded_.rules[out_.rules[i].expanded]);
      }
    }
    // Rounds while rules move: a rule moved late in a round widens the room
    // of the earlier rules it overlaps only in the next one.
    for (uint32_t moved = 1; moved > 0 && full > 0;) {
      moved = 0;
      std::vector<uint64_t> need(keys.size(), 0), count(keys.size(), 0);
      for (size_t i = 0; i < n; ++i) {
        if (table[i] != kNone) {
          ++count[table[i]];
          need[table[i]] += slot[i] == TableFill::Slot::kFull;
        }
      }
      // Last rules first: a rule's room depends on the levels of the rules
      // after it, which are final by then.
      for (size_t i = n; i-- > 0;) {
        HwRuleInfo &hw = out_.rules[i];
        if (table[i] == kNone || multicast[i] || need[table[i]] == 0 || hopeless(i) ||
            slot[i] == TableFill::Slot::kGroup || (hw.rule.flags & emit::kFlagDontTrap) != 0) {
          continue; // moving a rule that shares a group frees no entry
        }
        unsigned level = hw.rule.priority, hi = max_priority;
        const ir::Rule &r = policy_.rules[hw.source];
        index[{static_cast<int>(r.direction), r.port}].Query(
            expanded_.rules[hw.expanded], [&](uint32_t c) {
              unsigned lc = out_.rules[c].rule.priority;
              if (c == i || lc <= level || lc - 1 >= hi ||
                  SameOutcome(policy_, out_.rules[c], hw) || !Overlap(cons[c], cons[i])) {
                return;
              }
              hi = lc - 1;
            });
        // Room for one more rule: any mix of masks fits up to `safe` rules;
        // beyond, its mask's groups or a free entry (as the table fills
        // now, which the next fill() checks again).
        auto room = [&](unsigned l) {
          auto it = ids.find({static_cast<int>(r.direction), r.port, 2ull * l + 1});
          return it == ids.end() || count[it->second] < safe || fills[it->second].Fits(mask[i]);
        };
        // The highest level already used leaves the most room to the rules
        // before it; failing that, as few new levels as possible.
        unsigned to = level;
        unsigned used = std::max(out_.levels_used, level + 1);
        for (unsigned l = std::min(hi, used - 1); l > level && to == level; --l) {
          to = room(l) ? l : level;
        }
        for (unsigned l = std::max(level + 1, used); l <= hi && to == level; ++l) {
          to = room(l) ? l : level;
        }
        if (to == level) {
          continue;
        }
        --count[table[i]];
        --need[table[i]];
        hw.rule.priority = static_cast<uint16_t>(to);
        table[i] = table_id(hw);
        if (table[i] >= count.size()) {
          count.resize(keys.size(), 0);
          need.resize(keys.size(), 0);
          fills.resize(keys.size(), TableFill(entries, groups));
        }
        ++count[table[i]];
        fills[table[i]].Add(mask[i]);
        out_.levels_used = std::max(out_.levels_used, to + 1);
        ++moved;
      }
      out_.table_moves += moved;
      if (moved > 0) {
        order = ByMaskFrequency(table, mask);
        full = fill();
      }
    }
    reorder();
    // What still does not fit: the first rule each full table refuses.
    std::vector<bool> reported(keys.size(), false);
    for (size_t i = 0; i < n && full > 0; ++i) {
      if (table[i] == kNone || slot[i] != TableFill::Slot::kFull || reported[table[i]] ||
          hopeless(i)) {
        continue;
      }
      reported[table[i]] = true;
      uint64_t rules = 0;
      llvm::DenseSet<uint32_t> distinct;
      for (size_t j = 0; j < n; ++j) {
        if (table[j] == table[i]) {
          ++rules;
          distinct.insert(mask[j]);
        }
      }
      const ir::Rule &r = policy_.rules[out_.rules[i].source];
      current_ = &r;
      const HwRuleInfo &hw = out_.rules[i];
      std::string which =
          multicast[i]
              ? std::string("multicast table")
              : llvm::formatv("{0}table of priority {1}",
                              (hw.rule.flags & emit::kFlagDontTrap) != 0 ? "DONT_TRAP " : "",
                              hw.rule.priority)
                    .str();
      Report(Kind::kTableFull, r.range.Start,
             llvm::formatv("{0}'s {1} would be full before this rule (ENOSPC): it would hold "
                           "{2} rules with {3} different match masks, and a table has {4} "
                           "entries in groups of one mask each, the first {5} of {6} entries "
                           "and the later ones of 1 (verbs-facts §3.8)",
                           Name(), which, rules, distinct.size(), entries, groups,
                           entries / (groups + 1)))
          .Range(r.range)
          .AddNote(llvm::SMLoc(),
                   out_.table_moves > 0
                       ? llvm::formatv("{0} rule(s) were moved to later priorities to fit; the "
                                       "others must stay before later rules they overlap with "
                                       "a different outcome, or those priorities are full too",
                                       out_.table_moves)
                             .str()
                       : std::string("none of its rules can move to a later priority: each "
                                     "must stay before a later rule it overlaps with a "
                                     "different outcome"));
    }
  }

  /// The ports and directions whose trapping rules (those FitTables() may
  /// move: not DONT_TRAP, not multicast-only) cannot fit their levels'
  /// tables, whatever their levels (TableFill::MostRules()). For each, it
  /// reports FL8017 at the first rule (in the order of `table`, which is
  /// policy order) by which the rules so far cannot fit: moving them would
  /// only take time.
  std::set<std::pair<int, unsigned>> PortsBeyondTables(const std::vector<uint32_t> &table,
                                                       const std::vector<uint32_t> &mask,
                                                       const std::vector<bool> &multicast) {
    const unsigned entries = target_.TableEntries(), groups = profile_.table_groups;
    const uint64_t tables = uint64_t{target_.MaxPriority()} + 1;
    // The movable rules of each (direction, port), in order.
    std::map<std::pair<int, unsigned>, std::vector<uint32_t>> movable;
    for (size_t i = 0; i < out_.rules.size(); ++i) {
      const HwRuleInfo &hw = out_.rules[i];
      if (table[i] == UINT32_MAX || multicast[i] || (hw.rule.flags & emit::kFlagDontTrap) != 0) {
        continue;
      }
      const ir::Rule &r = policy_.rules[hw.source];
      movable[{static_cast<int>(r.direction), r.port}].push_back(static_cast<uint32_t>(i));
    }
    auto most = [&](llvm::ArrayRef<uint32_t> rules, size_t masks) {
      std::vector<uint64_t> per_mask(masks, 0);
      for (uint32_t i : rules) {
        ++per_mask[mask[i]];
      }
      return TableFill::MostRules(entries, groups, tables, std::move(per_mask));
    };
    const size_t masks = mask.empty() ? 0 : *std::max_element(mask.begin(), mask.end()) + 1;
    std::set<std::pair<int, unsigned>> beyond;
    for (const auto &[key, rules] : movable) {
      const uint64_t bound = most(rules, masks);
      if (rules.size() <= bound) {
        continue;
      }
      beyond.insert(key);
      // Adding a rule raises the bound by at most one, so once the rules so
      // far do not fit, no longer prefix does: search for the first.
      size_t lo = 0, hi = rules.size(); // rules[0..lo) fit, rules[0..hi) do not
      while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        (mid <= most(llvm::ArrayRef(rules).take_front(mid), masks) ? lo : hi) = mid;
      }
      const llvm::ArrayRef<uint32_t> prefix = llvm::ArrayRef(rules).take_front(hi);
      llvm::DenseSet<uint32_t> distinct;
      uint64_t added = 0; // copies and pieces, made after expansion
      for (uint32_t i : prefix) {
        distinct.insert(mask[i]);
        added += out_.rules[i].expanded >= out_.expanded;
      }
      const HwRuleInfo &last = out_.rules[prefix.back()];
      const ir::Rule &r = policy_.rules[last.source];
      current_ = &r;
      const uint64_t group_size = entries / (groups + 1);
      Report(Kind::kTableFull, r.range.Start,
             llvm::formatv("{0}'s {1} flow tables (priorities 0..{2}) cannot hold the rules up "
                           "to this one, whatever their priorities (ENOSPC): {3} rules with {4} "
                           "different match masks",
                           Name(), tables, tables - 1, hi, distinct.size()))
          .Range(r.range)
          .AddNote(llvm::SMLoc(),
                   (group_size > 1
                        ? llvm::formatv("a table has {0} entries in groups of one mask each, "
                                        "the first {1} of {2} entries and the later ones of 1 "
                                        "(verbs-facts §3.8): {3} tables have {4} big groups, "
                                        "which hold the most with the most frequent masks, and "
                                        "{3} x {5} one-entry groups",
                                        entries, groups, group_size, tables, tables * groups,
                                        entries - groups * group_size)
                              .str()
                        : llvm::formatv("a table has {0} entries, too few for groups of more "
                                        "than one (verbs-facts §3.8): {1} tables have {1} x {0} "
                                        "entries",
                                        entries, tables)
                              .str()) +
                       llvm::formatv("; they take at most {0} of these {1} rules, and {2} of "
                                     "all {3} trapping rules of this port and direction",
                                     most(prefix, masks), hi, bound, rules.size())
                           .str())
          .AddNote(llvm::SMLoc(),
                   added > 0 ? llvm::formatv("{0} of these {1} rules were added to fit {2} "
                                             "priority levels (--stats counts them)",
                                             added, hi, tables)
                                   .str()
                             : std::string("none of them was added to fit the priority levels: "
                                           "they are the policy's rules after expansion"));
    }
    return beyond;
  }

  /// The lowest level a rule of `later` may take after hardware rule `j`
  /// that it must stay behind. mlx5 looks up a priority's DONT_TRAP table
  /// before its trapping one (verbs-facts §3.4): a `pass` rule may share a
  /// level with a trapping rule after it.
  unsigned LevelAbove(size_t j, const ir::Rule &later) const { return level_[j] + Step(j, later); }

  /// How many levels a rule of `later` must stay above hardware rule `j`.
  unsigned Step(size_t j, const ir::Rule &later) const {
    bool pass_first = policy_.rules[out_.rules[j].source].pass && !later.pass &&
                      !profile_.dont_trap.sniffer_style;
    return pass_first ? 0 : 1;
  }

  /// Makes trapping hardware rule `self` fit at level `limit` or below by
  /// making it disjoint from the earlier rules (in policy order) that force
  /// it higher: it is replaced by cubes of its packets that none of them
  /// matches (those packets never reach it anyway, so nothing changes). The
  /// pieces go to the end of out_.rules, cons_ and level_ and are returned
  /// in `made`; `self` is marked dead, and the caller puts the pieces in its
  /// place. A rule that cannot be cut out of `self` (it matches a header
  /// `self` does not, like TCP below a rule without L4) is itself lowered
  /// below `limit` first, the same way, to at most kMaxLowering rules deep.
  /// Returns false when it cannot be done (fit_failure_ says why).
  bool Split(std::vector<size_t> &members, expand::OverlapIndex &index, size_t self, unsigned limit,
             unsigned depth, std::vector<size_t> &made) {
    const HwRuleInfo original = out_.rules[self];
    const ir::Rule &r = policy_.rules[original.source];
    std::vector<Cube> pieces;
    std::vector<size_t> kept_blockers;
    bool cut_any = false;
    // Each round lowers the rules it cannot cut out; their pieces fit below
    // `limit`, so the next round cuts or keeps them.
    for (unsigned round = 0;; ++round) {
      if (round > kMaxLowering + 1) {
        fit_failure_ = "lowering the rules before it did not end";
        return false;
      }
      pieces = {ToCube(expanded_mut_->rules[original.expanded])};
      cut_any = false;
      kept_blockers.clear();
      std::vector<uint32_t> blockers, to_lower;
      index.Query(expanded_mut_->rules[original.expanded],
                  [&](uint32_t j) { blockers.push_back(j); });
      llvm::sort(blockers);
      // Only the rules on the last level force it past the limit: those are
      // cut out; the others keep it above them as before.
      for (uint32_t j : blockers) {
        const HwRuleInfo &other = out_.rules[j];
        if (gone_[j] || other.source >= original.source || SameOutcome(policy_, other, original) ||
            !Overlap(cons_[j], cons_[self])) {
          continue;
        }
        // Keeping a rule that leaves room below `limit` costs nothing, so
        // the exact question (the most expensive part of fitting) is asked
        // only of the others; the pieces' levels stay at `limit` or below.
        if (LevelAbove(j, r) <= limit) {
          kept_blockers.push_back(j);
          continue;
        }
        if (!refiner_->Reaches(j, self)) {
          continue;
        }
        bool pass = policy_.rules[other.source].pass;
        if (pass) {
          fit_failure_ = "a 'pass' rule before it that it overlaps is at the last level, and "
                         "flowc does not split or copy around 'pass' rules";
          return false; // its copies must stay: it cannot be cut out
        }
        Cube blocker = ToCube(expanded_mut_->rules[other.expanded]);
        std::vector<Cube> next;
        bool cut = true;
        for (const Cube &piece : pieces) {
          cut = cut && Subtract(piece, blocker, next);
        }
        // A cut that adds no rule is free; otherwise one copy of the packets
        // both match, above the limit, usually costs less.
        if (!cut || next.size() > pieces.size()) {
          if (Copy(members, index, j, self, limit, depth, kept_blockers)) {
            continue;
          }
        }
        if (!cut) {
          if (depth >= kMaxLowering || limit == 0) {
            fit_failure_ = llvm::formatv(
                "it does not match every header the rules before it match, so they cannot be "
                "cut out of it, and neither copying the packets it shares with them nor "
                "splitting them makes room ({0})",
                limit == 0
                    ? "they are at the first level"
                    : llvm::formatv("that goes more than {0} rules deep", kMaxLowering).str());
            return false;
          }
          to_lower.push_back(j);
          continue;
        }
        pieces = std::move(next);
        cut_any = true;
        if (out_.rules.size() + pieces.size() > refiner_->MaxRules()) {
          fit_failure_ = llvm::formatv("that would make more than --max-rules={0} rules",
                                       refiner_->MaxRules());
          return false;
        }
      }
      if (to_lower.empty()) {
        break;
      }
      for (uint32_t j : to_lower) {
        if (!gone_[j] && !Lower(members, index, j, limit - 1, depth + 1)) {
          return false;
        }
      }
    }
    if (!cut_any) {
      // Nothing was cut: lowering the rules before it made room.
      unsigned lv = 0;
      for (size_t j : kept_blockers) {
        lv = std::max(lv, LevelAbove(j, r));
      }
      level_[self] = lv;
      made.push_back(self);
      return true;
    }
    // Each piece must be a legal rule (masks the target takes) and fit.
    std::vector<HwRuleInfo> built;
    std::vector<expand::TernaryRule> piece_rules;
    std::vector<std::vector<Constraint>> piece_cons;
    std::vector<unsigned> piece_level;
    for (const Cube &piece : pieces) {
      expand::TernaryRule t = FromCube(piece);
      std::vector<Constraint> c = ConstraintsOf(t);
      unsigned lv = 0;
      for (size_t j : kept_blockers) {
        if (Overlap(cons_[j], c)) {
          lv = std::max(lv, LevelAbove(j, r));
        }
      }
      std::optional<HwRuleInfo> hw = BuildPiece(t, r);
      if (!hw) {
        return false;
      }
      built.push_back(std::move(*hw));
      piece_rules.push_back(std::move(t));
      piece_cons.push_back(std::move(c));
      piece_level.push_back(lv);
    }
    out_.split_from += 1;
    out_.split_into += static_cast<uint32_t>(built.size());
    dead_.push_back(self);
    gone_[self] = true;
    for (size_t p = 0; p < built.size(); ++p) {
      made.push_back(AddPiece(std::move(built[p]), std::move(piece_rules[p]),
                              std::move(piece_cons[p]), piece_level[p], self));
    }
    return true;
  }

  /// Adds hardware rule `hw` for cube `t` (with constraints `cons`), made
  /// from hardware rule `from` while fitting, at level `level`: to the
  /// expansion, the per-rule state and the refiner. Returns its index.
  size_t AddPiece(HwRuleInfo hw, expand::TernaryRule t, std::vector<Constraint> cons,
                  unsigned level, size_t from) {
    expanded_mut_->rules.push_back(std::move(t));
    hw.expanded = static_cast<uint32_t>(expanded_mut_->rules.size() - 1);
    hw.rule.priority = static_cast<uint16_t>(level);
    unsigned chain = chain_[from];
    out_.rules.push_back(std::move(hw));
    cons_.push_back(std::move(cons));
    level_.push_back(level);
    gone_.push_back(false);
    chain_.push_back(chain);
    size_t id = out_.rules.size() - 1;
    refiner_->AddPiece(id, from);
    return id;
  }

  /// Lets trapping hardware rule `self` stay at level `limit` although
  /// earlier rule `j` is there or below: the packets both match get a rule
  /// of their own with j's outcome at j's place in policy order, at the
  /// level its own earlier rules need, which must be above `limit`. Such a
  /// packet reaching that level is taken there, so none reaches j or `self`
  /// (or any later rule that shares j's level), and the order of j and
  /// `self` no longer matters. When `self` has all of j's packets, j itself
  /// moves up instead. A copy whose earlier rules keep it at `limit` or
  /// below is fitted above `limit` the same way (Lower()). Adds the rules
  /// that now stand before `self` (the copy or its pieces, or j) to `before`;
  /// false when the copy cannot be made to fit above `limit`.
  bool Copy(std::vector<size_t> &members, expand::OverlapIndex &index, size_t j, size_t self,
            unsigned limit, unsigned depth, std::vector<size_t> &before) {
    if (limit == 0) {
      return false;
    }
    const uint32_t jsource = out_.rules[j].source;
    const expand::TernaryRule &jrule = expanded_mut_->rules[out_.rules[j].expanded];
    const ir::Rule &jr = policy_.rules[jsource];
    // ToCube() merges the two rules' matches of each field into one.
    Cube both = ToCube(expand::Meet(jrule, expanded_mut_->rules[out_.rules[self].expanded]));
    Coarsen(index, j, both, limit);
    std::string key = CubeKey(both);
    bool whole = key == CubeKey(ToCube(jrule));
    // A copy made before serves if it is above `limit`; otherwise a new one
    // takes its place.
    if (const std::vector<size_t> *known = KnownCopy(j, key, limit)) {
      before.insert(before.end(), known->begin(), known->end());
      return true;
    }
    // The copy, as a piece of j, so that the refiner knows its packets.
    expand::TernaryRule t = FromCube(both);
    size_t c = j;
    if (!whole && out_.rules.size() + 1 > refiner_->MaxRules()) {
      return false; // the cut that follows reports it
    }
    if (!whole) {
      std::optional<HwRuleInfo> hw = BuildPiece(t, jr);
      if (!hw) {
        return false;
      }
      std::vector<Constraint> cons = ConstraintsOf(t);
      c = AddPiece(std::move(*hw), std::move(t), std::move(cons), 0, j);
    }
    // Its level: above the earlier rules that compete with it.
    unsigned lv = 0;
    index.Query(expanded_mut_->rules[out_.rules[c].expanded], [&](uint32_t y) {
      const HwRuleInfo &before = out_.rules[y];
      if (gone_[y] || before.source >= jsource || SameOutcome(policy_, before, out_.rules[c]) ||
          LevelAbove(y, jr) <= lv || !Overlap(cons_[y], cons_[c]) || !refiner_->Reaches(y, c)) {
        return;
      }
      lv = LevelAbove(y, jr);
    });
    if (c == j && lv >= limit) {
      return false;
    }
    level_[c] = lv;
    out_.rules[c].rule.priority = static_cast<uint16_t>(lv);
    if (c == j) {
      ++out_.lowered;
      copies_[{j, std::move(key)}] = std::vector<size_t>{j};
      before.push_back(j);
      return true; // already in `members` and the index
    }
    ++out_.copies;
    // Before the block being placed: no later step of Place() looks there,
    // and the group is put back in policy order once placed.
    members.insert(members.begin() + static_cast<std::ptrdiff_t>(copies_at_), c);
    index.Insert(static_cast<uint32_t>(c), expanded_mut_->rules[out_.rules[c].expanded], lv + 1);
    std::vector<size_t> made{c};
    if (lv >= limit) {
      made.clear();
      std::string failure = fit_failure_;
      if (!Lower(members, index, c, limit - 1, depth + 1, &made)) {
        // Nothing takes its packets: it goes, and the rules it made for
        // itself only repeat what earlier rules do.
        fit_failure_ = std::move(failure);
        --out_.copies;
        gone_[c] = true;
        dead_.push_back(c);
        members.erase(llvm::find(members, c));
        return false;
      }
    }
    before.insert(before.end(), made.begin(), made.end());
    copies_[{j, std::move(key)}] = std::move(made);
    return true;
  }

  /// The rules of the copy of hardware rule `j` with CubeKey `key` made
  /// before, if they are all above `limit` (one made for a rule placed
  /// further down may not be); else null.
  const std::vector<size_t> *KnownCopy(size_t j, const std::string &key, unsigned limit) const {
    auto known = copies_.find({j, key});
    if (known == copies_.end() ||
        !llvm::all_of(known->second, [&](size_t k) { return level_[k] < limit; })) {
      return nullptr;
    }
    return &known->second;
  }

  /// Widens `both`, the packets hardware rule `j` shares with a later rule,
  /// to a copy of `j` that keeps only one of the fields in which the later
  /// rule narrows `j`, where such a copy still fits above `limit`: any
  /// cube between the two rules' meet and `j` takes the packets of the
  /// meet, and wider copies have fewer masks and serve more later rules.
  /// The level asked here counts every earlier rule that competes with the
  /// copy, whether or not its packets reach it, so it is never too high.
  void Coarsen(const expand::OverlapIndex &index, size_t j, Cube &both, unsigned limit) {
    const HwRuleInfo &jhw = out_.rules[j];
    const uint32_t jsource = jhw.source;
    const ir::Rule &jr = policy_.rules[jsource];
    Cube jc = ToCube(expanded_mut_->rules[jhw.expanded]);
    std::vector<std::pair<ir::Layer, Field>> narrowed;
    for (const auto &[key, vm] : both.fields) {
      auto it = jc.fields.find(key);
      if (it == jc.fields.end() || it->second.second != vm.second) {
        narrowed.push_back(key);
      }
    }
    if (narrowed.size() < 2) {
      return; // `both` keeps one field of the later rule already
    }
    // Of those that fit, the one with the fewest mask bits: the widest.
    std::optional<Cube> best;
    unsigned best_bits = UINT_MAX;
    for (const auto &key : narrowed) {
      // Only a field of a header `j` has (and an 802.1Q tag if `j` has
      // one): the copy then has `j`'s headers and specs. With a header of
      // the later rule it could need more than its specs say: an ESP,
      // VXLAN or MPLS spec with a zero mask matches any packet on mlx5
      // (verbs-facts §3.2), and only the fields it would leave out (IP
      // protocol 50, UDP port 4789, ...) make it match what it names.
      auto [layer, field] = key;
      auto l = static_cast<unsigned>(layer);
      if ((jc.rule.headers[l] & ir::Bit(GetFieldInfo(field).header)) == 0 ||
          (IsVlanTagField(field) && !jc.vlan[l])) {
        continue;
      }
      Cube c = jc;
      c.fields[key] = both.fields[key];
      unsigned bits = 0;
      for (const auto &[k, vm] : c.fields) {
        bits += vm.second.countPopulation();
      }
      if (bits >= best_bits) {
        continue;
      }
      // A copy made before for another rule serves if it is above `limit`.
      std::string ckey = CubeKey(c);
      if (copies_.count({j, ckey}) != 0) {
        if (KnownCopy(j, ckey, limit) != nullptr) {
          best = std::move(c);
          best_bits = bits;
        }
        continue;
      }
      expand::TernaryRule t = FromCube(c);
      std::vector<Constraint> cons = ConstraintsOf(t);
      // Only the rules whose level keeps the copy at `limit` or past it
      // matter: their keys (level + 1) are at least `limit`.
      bool blocked = false;
      index.Query(
          t,
          [&](uint32_t y) {
            const HwRuleInfo &before = out_.rules[y];
            blocked =
                blocked || (!gone_[y] && before.source < jsource && LevelAbove(y, jr) >= limit &&
                            !SameOutcome(policy_, before, jhw) && Overlap(cons_[y], cons));
          },
          UINT32_MAX, limit);
      if (!blocked) {
        best = std::move(c);
        best_bits = bits;
      }
    }
    if (best) {
      both = std::move(*best);
    }
  }

  /// A rule of `r` for cube `t`, made while fitting: its masks must be ones
  /// the target takes, and its diagnostics are not the user's.
  std::optional<HwRuleInfo> BuildPiece(const expand::TernaryRule &t, const ir::Rule &r) {
    for (const expand::TernaryMatch &m : t.matches) {
      const FieldRule *rule = profile_.FindField(m.field);
      MaskRule mr = m.layer == ir::Layer::kInner ? rule->inner : rule->outer;
      if (mr != MaskRule::kArbitrary && !m.mask.isAllOnes()) {
        fit_failure_ = llvm::formatv("{0} takes only full masks on {1}", profile_.name,
                                     ir::FieldTitle(m.field, m.layer));
        return std::nullopt;
      }
    }
    diag::DiscardConsumer discard;
    diag::Engine quiet(diags_.sources(), {}, discard);
    diag::Engine *saved = quiet_;
    const ir::Rule *saved_rule = current_;
    quiet_ = &quiet;
    std::optional<HwRuleInfo> hw = Build(t, r);
    quiet_ = saved;
    current_ = saved_rule;
    if (!hw) {
      fit_failure_ = "a piece of it is not a legal rule for the target";
    }
    return hw;
  }

  /// Splits hardware rule `j`, already placed and in `index`, so that it
  /// fits at level `limit` or below (Split()); its pieces take its place in
  /// `members` and the index, with their priorities.
  bool Lower(std::vector<size_t> &members, expand::OverlapIndex &index, size_t j, unsigned limit,
             unsigned depth, std::vector<size_t> *made = nullptr) {
    std::vector<size_t> pieces;
    if (!Split(members, index, j, limit, depth, pieces)) {
      return false;
    }
    if (made != nullptr) {
      *made = pieces;
    }
    if (pieces.size() == 1 && pieces.front() == j) {
      out_.rules[j].rule.priority = static_cast<uint16_t>(level_[j]);
      ++out_.lowered;
      return true; // lowered in place, still in the index
    }
    auto at = llvm::find(members, j);
    assert(at != members.end() && "a placed rule is a member of its group");
    at = members.erase(at);
    members.insert(at, pieces.begin(), pieces.end());
    for (size_t p : pieces) {
      HwRuleInfo &hw = out_.rules[p];
      hw.rule.priority = static_cast<uint16_t>(level_[p]);
      index.Insert(static_cast<uint32_t>(p), expanded_mut_->rules[hw.expanded], level_[p] + 1);
    }
    ++out_.lowered;
    return true;
  }

  /// verbs-facts §3.3: mlx5 looks up a trapping rule whose first spec
  /// matches only multicast after every other rule, so no later rule may
  /// take any of its packets with a different outcome.
  void CheckMulticastOrder(const std::vector<size_t> &members) {
    if (!profile_.multicast_first_spec) {
      return;
    }
    for (size_t b = 0; b < members.size(); ++b) {
      const HwRuleInfo &moved = out_.rules[members[b]];
      const ir::Rule &r = policy_.rules[moved.source];
      if (r.pass || moved.rule.specs.empty() || !MulticastOnly(moved.rule.specs.front())) {
        continue;
      }
      for (size_t c = b + 1; c < members.size(); ++c) {
        const HwRuleInfo &later = out_.rules[members[c]];
        const ir::Rule &lr = policy_.rules[later.source];
        if (SameOutcome(policy_, moved, later) || !Overlap(cons_[members[b]], cons_[members[c]]) ||
            (refiner_ != nullptr && !refiner_->Reaches(members[b], members[c]))) {
          continue;
        }
        current_ = &r;
        Report(Kind::kMulticastOrder, r.range.Start,
               llvm::formatv("mlx5 looks this rule up after every other rule, because its first "
                             "spec matches only multicast (verbs-facts §3.3), so {0} would take "
                             "packets that this rule takes",
                             ir::RuleTitle(lr)))
            .Range(r.range)
            .AddNote(lr.range.Start, ir::RuleTitle(lr) + " is here", lr.range);
        break;
      }
    }
  }

  const ir::Policy &policy_;
  const expand::Expanded &expanded_;
  const Target &target_;
  const Profile &profile_;
  diag::Engine &diags_;
  HwPolicy out_;
  Refiner *refiner_ = nullptr;
  /// Where budget fitting reports how far it is.
  FitProgress fit_progress_;
  /// The expansion, when pieces may be added to it (ExpandAndLegalize).
  expand::Expanded *expanded_mut_ = nullptr;
  /// Where Report() sends diagnostics while pieces are built, if not diags_.
  diag::Engine *quiet_ = nullptr;
  /// Rules replaced by their pieces, removed at the end.
  std::vector<size_t> dead_;
  /// Why the last Split() failed.
  std::string fit_failure_;
  /// Where Copy() puts copies in the group's members: the start of the
  /// block Place() is fitting.
  size_t copies_at_ = 0;
  /// Per out_.rules index: the level it would need without budget fitting
  /// (Place() without a goal); pieces have their rule's.
  std::vector<unsigned> chain_;
  /// Copy()'s rules: (earlier rule, CubeKey of the copy's packets: those it
  /// shares with a later one, or more, see Coarsen()) -> the rules that
  /// take them, the latest made for that cube.
  std::map<std::pair<size_t, std::string>, std::vector<size_t>> copies_;
  /// Per out_.rules index: replaced by its pieces (also in dead_).
  std::vector<bool> gone_;
  /// How many rules deep Split() lowers the rules that block a rule.
  static constexpr unsigned kMaxLowering = 3;
  /// Per hardware rule (out_.rules index), while priorities are assigned:
  /// its constraints for overlap tests, and its level.
  std::vector<std::vector<Constraint>> cons_;
  std::vector<unsigned> level_;
};

} // namespace

Refiner::~Refiner() = default;

HwPolicy Legalize(const ir::Policy &policy, const expand::Expanded &expanded, const Target &target,
                  diag::Engine &diags) {
  return Legalizer(policy, expanded, target, diags).Run();
}

HwPolicy ExpandAndLegalize(const ir::Policy &policy, const Target &target,
                           const expand::Options &options, diag::Engine &diags,
                           expand::Expanded &expanded, Refiner *refiner, FitProgress progress) {
  Legalizer legalizer(policy, expanded, target, diags);
  legalizer.SetRefiner(refiner, &expanded, std::move(progress));
  expanded.rules.reserve(policy.rules.size()); // one rule each at least, mostly
  expand::ExpandInto(policy, target, options, diags, [&](expand::TernaryRule &&t) {
    expanded.rules.push_back(std::move(t));
    legalizer.Add(static_cast<uint32_t>(expanded.rules.size() - 1));
  });
  return legalizer.Finish();
}

void CheckForTarget(const ir::Policy &policy, const Target &target, const expand::Options &options,
                    diag::Engine &diags) {
  expand::Expanded none;
  Legalizer legalizer(policy, none, target, diags);
  expand::Options representative = options;
  representative.representative_only = true;
  expand::ExpandInto(policy, target, representative, diags,
                     [&](expand::TernaryRule &&t) { legalizer.CheckOne(t); });
  legalizer.CheckKinds();
}

} // namespace flowc::target
