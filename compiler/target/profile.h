// Target profiles: what a NIC family's ibv_create_flow() accepts, as data
// (verbs-facts §2-§6). Passes read a Profile; none tests a target's name.
#ifndef FLOWC_TARGET_PROFILE_H
#define FLOWC_TARGET_PROFILE_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "compiler/base/schema.h"
#include "compiler/emit/layout.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

namespace flowc::target {

/// A device capability a family may or may not have. Every capability is
/// assumed present unless `--cap -NAME` removes it.
enum class Cap : uint8_t {
  kInner,        ///< inner-header matching (mlx5 ft_field_support)
  kMplsOverUdp,  ///< outer_first_mpls_over_udp
  kMplsOverGre,  ///< outer_first_mpls_over_gre
  kMplsLabel,    ///< MPLS label sub-field
  kMplsTc,       ///< MPLS TC (exp) sub-field
  kMplsBos,      ///< MPLS bottom-of-stack bit
  kMplsTtl,      ///< MPLS TTL sub-field
  kSniffer,      ///< sniffer rules (allow_sniffer_and_nic_rx_shared_tir)
  kPriorities16, ///< 16 user priorities; without it 8 (older kernels)
  kDontTrap,     ///< mlx4 DMFS_UC_MC_SNIFFER: DONT_TRAP rules
};
inline constexpr unsigned kNumCaps = 10;
using CapSet = uint32_t;
inline CapSet CapBit(Cap c) { return 1u << static_cast<unsigned>(c); }

/// A capability's command-line name and meaning.
struct CapInfo {
  Cap cap;
  llvm::StringRef name;
  llvm::StringRef description;
  llvm::StringRef fact;
};
const CapInfo &GetCapInfo(Cap cap);
std::optional<Cap> FindCap(llvm::StringRef name);

/// How a field's mask may look on a target.
enum class MaskRule : uint8_t {
  kUnsupported, ///< no mask bit may be set
  kArbitrary,   ///< any bit mask
  kFullOrZero,  ///< all ones (or the field unmatched)
};

/// One field's rule: per layer, the mask rule; masks allowed beyond it; the
/// capability it needs; the fact behind it.
struct FieldRule {
  Field field;
  MaskRule outer;
  MaskRule inner;
  /// Further masks a kFullOrZero field accepts (mlx4's 01:00:00:00:00:00
  /// multicast form of the destination MAC), as the field's value bits.
  std::vector<uint64_t> extra_masks;
  std::optional<Cap> needs;
  llvm::StringRef why;
};

/// Whether a spec kind is accepted, outer and inner.
struct SpecRule {
  emit::SpecKind kind;
  bool outer;
  bool inner;
  llvm::StringRef why;
};

/// Limits on DONT_TRAP (`pass`) rules.
struct DontTrapRule {
  bool allowed;
  /// Only at hardware priority 0, with at most one spec, an ETH one whose
  /// destination MAC mask is empty or the multicast form (mlx4, §4.2).
  bool sniffer_style;
  std::optional<Cap> needs;
  llvm::StringRef why;
};

/// A NIC family's flow-steering rules.
struct Profile {
  llvm::StringRef name;
  llvm::StringRef description;
  /// The capabilities this family can have (the others never apply).
  CapSet caps;
  /// User priorities 0..max_priority; with kPriorities16 removed,
  /// 0..max_priority_reduced.
  unsigned max_priority;
  unsigned max_priority_reduced;
  llvm::StringRef priority_why;
  unsigned max_specs;
  bool egress;
  llvm::StringRef egress_why;
  bool all_default, mc_default, sniffer;
  DontTrapRule dont_trap;
  std::vector<SpecRule> specs;
  std::vector<FieldRule> fields;
  /// Action specs accepted; a missing kind is not supported.
  std::vector<emit::SpecKind> actions;
  llvm::StringRef actions_why;
  // mlx5's two other cross-spec rules need no flag: an ETH ether_type mask
  // beside an IP spec must be full, and an IP protocol must agree with the
  // TCP/UDP/GRE spec (§3.2, §3.3); expansion narrows both matches to the
  // value the header implies, so no rule can break them.
  /// mlx5: a rule whose first spec matches multicast goes to a fixed
  /// priority (§3.3).
  bool multicast_first_spec;
  /// mlx5: ALL_DEFAULT installs a multicast and a unicast rule, so beside
  /// MC_DEFAULT on one port the multicast packets reach both (§3.5, §3.8).
  bool all_default_covers_multicast;
  /// mlx4: the hardware does not apply the priority of a rule that matches
  /// a UDP destination port (a quirk DPDK documents, §4.4).
  bool udp_dst_ignores_priority;
  /// mlx4: on an SR-IOV PF a rule whose one spec is a multicast ETH
  /// destination is moved to the NIC domain, after every verbs rule (§4.4).
  bool multicast_eth_to_nic_domain;
  /// mlx5: default and sniffer rules are built from the driver's own specs;
  /// the user's specs, action specs included, are ignored (§3.5, §3.7).
  bool special_kinds_ignore_specs;
  /// mlx5: each priority's table (per direction, DONT_TRAP or not; one more
  /// for multicast-only rules) holds at most `table_entries` entries, in
  /// flow groups the driver creates per match mask: the first
  /// `table_groups` get table_entries / (table_groups + 1) entries, the
  /// later ones one; a rule that finds no room fails with ENOSPC
  /// (verbs-facts §3.8). 0: not modelled.
  unsigned table_entries;
  unsigned table_groups;

  const SpecRule *FindSpec(emit::SpecKind kind) const;
  /// Whether some spec for header `h` is accepted at that level.
  bool HeaderSupported(Header h, bool inner) const;
  const FieldRule *FindField(Field field) const;
};

/// generic, mlx5 and mlx4, in that order.
llvm::ArrayRef<Profile> AllProfiles();
const Profile *FindProfile(llvm::StringRef name);

/// A profile with its capabilities switched on or off.
struct Target {
  const Profile *profile = nullptr;
  CapSet caps = 0;
  /// --table-entries: the entries of one flow table on the device, if not
  /// the profile's (0: the profile's).
  unsigned table_entries = 0;

  bool Has(Cap c) const { return (caps & CapBit(c)) != 0; }
  /// The entries of one flow table (0: not modelled).
  unsigned TableEntries() const;
  /// The highest user priority this target accepts.
  unsigned MaxPriority() const;
  /// "+inner,-sniffer" relative to the profile's defaults, or "".
  std::string CapChanges() const;
};

/// The target `name` with the switches of `--cap` ("-sniffer,+inner",
/// "sniffer" meaning "+sniffer"), or an error naming what is wrong.
llvm::Expected<Target> MakeTarget(llvm::StringRef name, llvm::ArrayRef<std::string> cap_switches);

} // namespace flowc::target

#endif // FLOWC_TARGET_PROFILE_H
