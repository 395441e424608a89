// The generic, mlx5 and mlx4 profiles. Each rule names the verbs-facts
// section it comes from; its `why` text is what a diagnostic quotes.
#include "compiler/target/profile.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallVector.h"

namespace flowc::target {
namespace {

using emit::SpecKind;

const CapInfo kCaps[kNumCaps] = {
    {Cap::kInner, "inner", "inner-header matching after a tunnel", "verbs-facts §3.3"},
    {Cap::kMplsOverUdp, "mpls-over-udp", "MPLS right after UDP, outer_first_mpls_over_udp",
     "verbs-facts §3.3"},
    {Cap::kMplsOverGre, "mpls-over-gre", "MPLS right after GRE, outer_first_mpls_over_gre",
     "verbs-facts §3.3"},
    {Cap::kMplsLabel, "mpls-label", "matching the MPLS label", "verbs-facts §3.2"},
    {Cap::kMplsTc, "mpls-tc", "matching the MPLS traffic class", "verbs-facts §3.2"},
    {Cap::kMplsBos, "mpls-bos", "matching the MPLS bottom-of-stack bit", "verbs-facts §3.2"},
    {Cap::kMplsTtl, "mpls-ttl", "matching the MPLS TTL", "verbs-facts §3.2"},
    {Cap::kSniffer, "sniffer", "sniffer rules", "verbs-facts §3.5"},
    {Cap::kPriorities16, "prio16", "16 user priorities (0..15); without it 8 (0..7)",
     "verbs-facts §3.1"},
    {Cap::kDontTrap, "dont-trap", "DONT_TRAP ('pass') rules, DMFS_UC_MC_SNIFFER",
     "verbs-facts §4.2"},
};

FieldRule Rule(Field f, MaskRule outer, MaskRule inner, llvm::StringRef why,
               std::optional<Cap> needs = std::nullopt) {
  return FieldRule{f, outer, inner, {}, needs, why};
}

constexpr MaskRule kAny = MaskRule::kArbitrary;
constexpr MaskRule kNo = MaskRule::kUnsupported;
constexpr MaskRule kFull = MaskRule::kFullOrZero;

Profile Generic() {
  Profile p;
  p.name = "generic";
  p.description = "the kernel core's checks only (ib_uverbs_ex_create_flow)";
  p.caps = 0;
  p.max_priority = p.max_priority_reduced = 65535;
  p.priority_why = "the kernel core does not check the priority, verbs-facts §2";
  p.max_specs = emit::kMaxSpecs;
  p.egress = true;
  p.all_default = p.mc_default = p.sniffer = true;
  p.dont_trap = {true, false, std::nullopt, ""};
  for (unsigned k = 0; k < emit::kNumSpecKinds; ++k) {
    auto kind = static_cast<SpecKind>(k);
    if (emit::IsAction(kind)) {
      p.actions.push_back(kind);
      continue;
    }
    p.specs.push_back({kind, true, emit::GetLayout(kind).inner_ok,
                       "libibverbs rejects INNER on GRE and VXLAN (verbs-facts §1.5)"});
  }
  for (const FieldInfo &f : AllFields()) {
    p.fields.push_back(Rule(f.field, kAny, kAny, ""));
  }
  p.multicast_first_spec = false;
  p.special_kinds_ignore_specs = false;
  p.all_default_covers_multicast = false;
  p.udp_dst_ignores_priority = p.multicast_eth_to_nic_domain = false;
  p.table_entries = p.table_groups = 0;
  return p;
}

Profile Mlx5() {
  Profile p;
  p.name = "mlx5";
  p.description = "ConnectX-4 and later (mlx5_ib, kernel 5.17)";
  p.caps = CapBit(Cap::kInner) | CapBit(Cap::kMplsOverUdp) | CapBit(Cap::kMplsOverGre) |
           CapBit(Cap::kMplsLabel) | CapBit(Cap::kMplsTc) | CapBit(Cap::kMplsBos) |
           CapBit(Cap::kMplsTtl) | CapBit(Cap::kSniffer) | CapBit(Cap::kPriorities16);
  p.max_priority = 15;
  p.max_priority_reduced = 7;
  p.priority_why = "verbs-facts §3.1";
  p.max_specs = emit::kMaxSpecs;
  p.egress = true;
  p.all_default = p.mc_default = p.sniffer = true;
  p.dont_trap = {true, false, std::nullopt, ""};
  const char *inner_why = "mlx5 matches inner ETH, IPv4, IPv6, TCP, UDP and MPLS (verbs-facts §3.3)";
  p.specs = {
      {SpecKind::kEth, true, true, inner_why},
      {SpecKind::kIpv4, true, true, inner_why},
      {SpecKind::kIpv4Ext, true, true, inner_why},
      {SpecKind::kIpv6, true, true, inner_why},
      {SpecKind::kEsp, true, false, "mlx5 matches ESP on the outer SPI only (verbs-facts §3.2)"},
      {SpecKind::kTcp, true, true, inner_why},
      {SpecKind::kUdp, true, true, inner_why},
      {SpecKind::kVxlanTunnel, true, false, inner_why},
      {SpecKind::kGre, true, false, inner_why},
      {SpecKind::kMpls, true, true, inner_why},
  };
  p.actions = {SpecKind::kActionTag, SpecKind::kActionDrop, SpecKind::kActionHandle,
               SpecKind::kActionCount};
  for (const FieldInfo &f : AllFields()) {
    p.fields.push_back(Rule(f.field, kAny, kAny, "mlx5 accepts arbitrary bit masks (verbs-facts §3.2)"));
  }
  auto set = [&](Field f, MaskRule rule, llvm::StringRef why, std::optional<Cap> needs = {}) {
    FieldRule *r = const_cast<FieldRule *>(p.FindField(f));
    r->outer = r->inner = rule;
    r->why = why;
    r->needs = needs;
  };
  set(Field::kIpv4Ttl, kNo, "mlx5 rejects a mask on the IPv4 TTL (verbs-facts §3.2)");
  set(Field::kIpv4Flags, kNo, "mlx5 rejects a mask on the IPv4 flags (verbs-facts §3.2)");
  set(Field::kIpv6HopLimit, kNo, "mlx5 rejects a mask on the IPv6 hop limit (verbs-facts §3.2)");
  set(Field::kEspSeq, kNo, "mlx5 rejects a mask on the ESP sequence number (verbs-facts §3.2)");
  set(Field::kGreFlags, kNo,
      "mlx5 rejects a mask on the GRE flags and version (c_ks_res0_ver, verbs-facts §3.2)");
  set(Field::kMplsLabel, kAny, "the MPLS label needs a device capability (verbs-facts §3.2)",
      Cap::kMplsLabel);
  set(Field::kMplsTc, kAny, "the MPLS TC needs a device capability (verbs-facts §3.2)",
      Cap::kMplsTc);
  set(Field::kMplsBos, kAny, "the MPLS BoS bit needs a device capability (verbs-facts §3.2)",
      Cap::kMplsBos);
  set(Field::kMplsTtl, kAny, "the MPLS TTL needs a device capability (verbs-facts §3.2)",
      Cap::kMplsTtl);
  p.multicast_first_spec = true;
  p.special_kinds_ignore_specs = true;
  p.all_default_covers_multicast = true;
  p.udp_dst_ignores_priority = p.multicast_eth_to_nic_domain = false;
  // max_fte = min(65536, 2^log_max_ft_size), auto-grouped with 6 groups
  // (verbs-facts §3.8); each of them gets max_fte / 7 entries
  // (mlx5_create_auto_grouped_flow_table).
  p.table_entries = 65536;
  p.table_groups = 6;
  return p;
}

Profile Mlx4() {
  Profile p;
  p.name = "mlx4";
  p.description = "ConnectX-3 (mlx4_ib in device-managed flow steering mode)";
  p.caps = CapBit(Cap::kDontTrap);
  p.max_priority = p.max_priority_reduced = 4095;
  p.priority_why = "verbs-facts §4.1";
  p.max_specs = emit::kMaxSpecs;
  p.egress = false;
  p.egress_why = "mlx4 has no egress steering (verbs-facts §4.1)";
  p.all_default = p.mc_default = p.sniffer = true;
  p.dont_trap = {true, true, Cap::kDontTrap,
                 "mlx4 takes DONT_TRAP only at priority 0 with at most one ETH spec whose "
                 "destination MAC is unmatched or the multicast bit (verbs-facts §4.2)"};
  const char *spec_why = "mlx4 steers on ETH, IPv4, TCP and UDP only (verbs-facts §4.3)";
  p.specs = {
      {SpecKind::kEth, true, false, spec_why},  {SpecKind::kIpv4, true, false, spec_why},
      {SpecKind::kIpv4Ext, false, false, spec_why}, {SpecKind::kIpv6, false, false, spec_why},
      {SpecKind::kEsp, false, false, spec_why}, {SpecKind::kTcp, true, false, spec_why},
      {SpecKind::kUdp, true, false, spec_why},  {SpecKind::kVxlanTunnel, false, false, spec_why},
      {SpecKind::kGre, false, false, spec_why}, {SpecKind::kMpls, false, false, spec_why},
  };
  p.actions_why = "mlx4 has no action specs: it cannot tag, drop, count or apply a handle "
                  "(verbs-facts §4.3)";
  const char *full_why = "mlx4 matches only with a full or empty mask (verbs-facts §4.3)";
  for (const FieldInfo &f : AllFields()) {
    p.fields.push_back(Rule(f.field, kFull, kNo, full_why));
  }
  auto set = [&](Field f, MaskRule rule, llvm::StringRef why) {
    FieldRule *r = const_cast<FieldRule *>(p.FindField(f));
    r->outer = rule;
    r->why = why;
  };
  set(Field::kEthSrc, kNo,
      "mlx4 silently ignores the source MAC, so the rule would match any source (verbs-facts §4.3)");
  set(Field::kEthType, kNo,
      "mlx4 silently ignores the ethertype, so the rule would match any ethertype (verbs-facts §4.3)");
  set(Field::kEthTci, kNo, "mlx4 matches the VLAN ID only, with the mask 0x0fff (verbs-facts §4.3)");
  set(Field::kEthPcp, kNo, "mlx4 matches the VLAN ID only, with the mask 0x0fff (verbs-facts §4.3)");
  set(Field::kEthDei, kNo, "mlx4 matches the VLAN ID only, with the mask 0x0fff (verbs-facts §4.3)");
  for (Field f : {Field::kIpv4Proto, Field::kIpv4Tos, Field::kIpv4Dscp, Field::kIpv4Ecn,
                  Field::kIpv4Ttl, Field::kIpv4Flags}) {
    set(f, kNo, "mlx4 matches only the IPv4 source and destination (verbs-facts §4.3)");
  }
  FieldRule *dst = const_cast<FieldRule *>(p.FindField(Field::kEthDst));
  dst->extra_masks = {0x010000000000ull};
  dst->why = "mlx4 matches the destination MAC with a full mask, or 01:00:00:00:00:00 for the "
             "multicast bit (verbs-facts §4.3)";
  p.multicast_first_spec = false;
  p.special_kinds_ignore_specs = false;
  p.all_default_covers_multicast = false;
  p.udp_dst_ignores_priority = p.multicast_eth_to_nic_domain = false;
  p.udp_dst_ignores_priority = true;
  p.multicast_eth_to_nic_domain = true;
  // The firmware decides when the MCG table is full (ENOMEM, verbs-facts
  // §4.4): not modelled.
  p.table_entries = p.table_groups = 0;
  return p;
}

const std::vector<Profile> &Profiles() {
  static const std::vector<Profile> profiles = {Generic(), Mlx5(), Mlx4()};
  return profiles;
}

} // namespace

const CapInfo &GetCapInfo(Cap cap) { return kCaps[static_cast<unsigned>(cap)]; }

std::optional<Cap> FindCap(llvm::StringRef name) {
  for (const CapInfo &c : kCaps) {
    if (c.name == name) {
      return c.cap;
    }
  }
  return std::nullopt;
}

const SpecRule *Profile::FindSpec(emit::SpecKind kind) const {
  for (const SpecRule &s : specs) {
    if (s.kind == kind) {
      return &s;
    }
  }
  return nullptr;
}

bool Profile::HeaderSupported(Header h, bool inner) const {
  static const std::pair<Header, SpecKind> kSpecs[] = {
      {Header::kEth, SpecKind::kEth},     {Header::kIpv4, SpecKind::kIpv4},
      {Header::kIpv4, SpecKind::kIpv4Ext}, {Header::kIpv6, SpecKind::kIpv6},
      {Header::kEsp, SpecKind::kEsp},     {Header::kTcp, SpecKind::kTcp},
      {Header::kUdp, SpecKind::kUdp},     {Header::kVxlan, SpecKind::kVxlanTunnel},
      {Header::kGre, SpecKind::kGre},     {Header::kMpls, SpecKind::kMpls}};
  for (auto [header, kind] : kSpecs) {
    const SpecRule *s = header == h ? FindSpec(kind) : nullptr;
    if (s != nullptr && (inner ? s->inner : s->outer)) {
      return true;
    }
  }
  return false;
}

const FieldRule *Profile::FindField(Field field) const {
  for (const FieldRule &f : fields) {
    if (f.field == field) {
      return &f;
    }
  }
  return nullptr;
}

llvm::ArrayRef<Profile> AllProfiles() { return Profiles(); }

const Profile *FindProfile(llvm::StringRef name) {
  for (const Profile &p : Profiles()) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

unsigned Target::TableEntries() const {
  if (profile->table_entries == 0) {
    return 0;
  }
  return table_entries != 0 ? table_entries : profile->table_entries;
}

unsigned Target::MaxPriority() const {
  if ((profile->caps & CapBit(Cap::kPriorities16)) != 0 && !Has(Cap::kPriorities16)) {
    return profile->max_priority_reduced;
  }
  return profile->max_priority;
}

std::string Target::CapChanges() const {
  std::string out;
  for (const CapInfo &c : kCaps) {
    bool possible = (profile->caps & CapBit(c.cap)) != 0;
    if (possible && !Has(c.cap)) {
      out += (out.empty() ? "-" : ",-") + c.name.str();
    }
  }
  return out;
}

llvm::Expected<Target> MakeTarget(llvm::StringRef name, llvm::ArrayRef<std::string> cap_switches) {
  Target t;
  t.profile = FindProfile(name);
  if (t.profile == nullptr) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "unknown target '" + name.str() +
                                       "'; known targets are generic, mlx5 and mlx4");
  }
  t.caps = t.profile->caps;
  for (const std::string &list : cap_switches) {
    llvm::SmallVector<llvm::StringRef, 8> items;
    llvm::StringRef(list).split(items, ',', -1, /*KeepEmpty=*/false);
    for (llvm::StringRef item : items) {
      item = item.trim();
      bool on = !item.consume_front("-");
      if (on) {
        item.consume_front("+");
      }
      std::optional<Cap> cap = FindCap(item);
      if (!cap) {
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "unknown capability '" + item.str() +
                                           "'; 'flowc targets' lists them");
      }
      if ((t.profile->caps & CapBit(*cap)) == 0) {
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            "target '" + name.str() + "' has no capability '" + item.str() + "'");
      }
      t.caps = on ? (t.caps | CapBit(*cap)) : (t.caps & ~CapBit(*cap));
    }
  }
  return t;
}

} // namespace flowc::target
