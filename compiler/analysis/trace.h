// flowc trace: one packet through a policy, on the source rules and on the
// hardware rules flowc builds for the target.
#ifndef FLOWC_ANALYSIS_TRACE_H
#define FLOWC_ANALYSIS_TRACE_H

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/expand/expand.h"
#include "compiler/ir/ir.h"
#include "compiler/target/legalize.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

namespace flowc::analysis {

/// A packet as `--packet` describes it: the headers present per layer, the
/// value of every field it gives (the others are 0), and whether each
/// layer's Ethernet header has an 802.1Q tag.
struct TracePacket {
  ir::HeaderSet headers[ir::kNumLayers] = {0, 0, 0};
  bool vlan_tag[ir::kNumLayers] = {false, false, false};
  std::map<std::pair<ir::Layer, Field>, llvm::APInt> fields;
};

/// Parses "eth dst=02:00:00:00:00:01 / ipv4 src=10.0.0.1 dst=192.0.2.20 /
/// udp dst=4791 / vxlan vni=5 / inner eth ... / inner ipv4 ...": headers
/// separated by '/', each with `field=value` pairs named as in the language.
/// What the headers imply and the text leaves out is filled in (ethertype,
/// IP protocol, UDP port 4789 under VXLAN, the MPLS ethertype or port, an
/// outer Ethernet header), and sub-fields agree with their containers (`eth
/// vlan` with `eth tci`, `ipv4 dscp` with `ipv4 tos`).
llvm::Expected<TracePacket> ParsePacket(llvm::StringRef text);

/// Parses one Ethernet frame as the NIC does (verbs-facts §3.2): Ethernet
/// with one 802.1Q tag; IPv4 (L4 only in a first fragment) or IPv6 (no
/// extension headers); TCP, UDP, ESP; GRE with its key; VXLAN on UDP 4789
/// and the inner Ethernet frame; one MPLS entry after Ethernet
/// (0x8847/0x8848), UDP 6635 or GRE, and after it (bottom of stack) or after
/// GRE 0x0800/0x86dd the inner IP packet. Truncated headers are absent.
TracePacket ParseFrame(llvm::ArrayRef<uint8_t> frame);

/// A field value as packet text writes it: addresses in their usual form,
/// type-like fields (ethertype, 802.1Q tci, GRE protocol and flags) in hex,
/// numbers (ports, labels, VNIs) in decimal. FormatPacket and the analysis'
/// example packets both use it.
std::string FormatPacketValue(Field field, const llvm::APInt &value);

/// The packet as text, every header and field it has.
std::string FormatPacket(const TracePacket &packet);

/// Whether the expanded rule `rule` matches `packet`.
bool Matches(const expand::TernaryRule &rule, const TracePacket &packet);

/// Where a packet goes, in rule indices: `copies` (pass and sniff rules, in
/// order), then the rule that takes it, if any (a trapping rule, else a
/// default rule). Indices are into ir::Policy::rules (source) or
/// target::HwPolicy::rules (compiled).
struct Fate {
  std::vector<uint32_t> copies;
  std::optional<uint32_t> taker;
};

/// The packet on the source rules of `port` and `direction` (first match;
/// `pass` rules copy and go on; default rules when nothing takes it).
Fate TraceSource(const ir::Policy &policy, const expand::Expanded &expanded,
                 ast::Direction direction, uint8_t port, const TracePacket &packet);

/// The packet on the hardware rules `rules` (as decoded from their bytes),
/// whose matches are `matches` (one per rule), as mlx5 orders them
/// (verbs-facts §3.4): tables 2 x priority (DONT_TRAP) and 2 x priority + 1,
/// the first matching rule of the first table that has one; DONT_TRAP rules
/// copy and go on. With `multicast_first_spec` (the profile's flag, §3.3), a
/// trapping rule whose first spec matches only multicast is looked up after
/// all of them.
Fate TraceCompiled(llvm::ArrayRef<emit::HwRule> rules, llvm::ArrayRef<expand::TernaryRule> matches,
                   bool multicast_first_spec, ast::Direction direction, uint8_t port,
                   const TracePacket &packet);

} // namespace flowc::analysis

#endif // FLOWC_ANALYSIS_TRACE_H
