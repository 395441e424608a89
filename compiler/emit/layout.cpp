// The rdma-core 44 user layout of flow specs. Every size and offset below is
// from verbs-facts §1.3 (gcc 12.2, x86_64, against the installed verbs.h);
// tests/unit/emit_test.cpp checks each against the real structs.
#include "compiler/emit/layout.h"

namespace flowc::emit {
namespace {

// Indexed by SpecKind.
const SpecLayout kLayouts[kNumSpecKinds] = {
    {SpecKind::kEth, 0x20, 40, 6, 16, true, "ETH"},
    {SpecKind::kIpv4, 0x30, 24, 8, 8, true, "IPV4"},
    {SpecKind::kIpv4Ext, 0x32, 32, 8, 12, true, "IPV4_EXT"},
    {SpecKind::kIpv6, 0x31, 88, 8, 40, true, "IPV6"},
    {SpecKind::kEsp, 0x34, 24, 8, 8, true, "ESP"},
    {SpecKind::kTcp, 0x40, 16, 6, 4, true, "TCP"},
    {SpecKind::kUdp, 0x41, 16, 6, 4, true, "UDP"},
    {SpecKind::kVxlanTunnel, 0x50, 16, 8, 4, false, "VXLAN_TUNNEL"},
    {SpecKind::kGre, 0x51, 24, 8, 8, false, "GRE"},
    {SpecKind::kMpls, 0x60, 16, 8, 4, true, "MPLS"},
    {SpecKind::kActionTag, 0x1000, 12, 8, 0, false, "ACTION_TAG"},
    {SpecKind::kActionDrop, 0x1001, 8, 8, 0, false, "ACTION_DROP"},
    {SpecKind::kActionHandle, 0x1002, 16, 8, 0, false, "ACTION_HANDLE"},
    {SpecKind::kActionCount, 0x1003, 16, 8, 0, false, "ACTION_COUNT"},
};

} // namespace

const SpecLayout &GetLayout(SpecKind kind) { return kLayouts[static_cast<unsigned>(kind)]; }

std::optional<SpecKind> SpecKindOfType(uint32_t type) {
  for (const SpecLayout &l : kLayouts) {
    if (l.type == type) {
      return l.kind;
    }
  }
  return std::nullopt;
}

bool IsAction(SpecKind kind) { return GetLayout(kind).type >= 0x1000; }

llvm::StringRef AttrTypeName(AttrType type) {
  switch (type) {
  case AttrType::kNormal:
    return "NORMAL";
  case AttrType::kAllDefault:
    return "ALL_DEFAULT";
  case AttrType::kMcDefault:
    return "MC_DEFAULT";
  case AttrType::kSniffer:
    return "SNIFFER";
  }
  return "?";
}

std::optional<Placement> PlacementOf(Field field, SpecKind kind) {
  // The filter structs of verbs-facts §1.2; sub-fields from the wire
  // formats: the 802.1Q TCI is PCP(3) DEI(1) VID(12), the ToS and traffic
  // class are DSCP(6) ECN(2), an MPLS entry is label(20) TC(3) S(1) TTL(8).
  switch (kind) {
  case SpecKind::kEth:
    switch (field) {
    case Field::kEthDst:
      return Placement{0, 6, 0};
    case Field::kEthSrc:
      return Placement{6, 6, 0};
    case Field::kEthType:
      return Placement{12, 2, 0};
    case Field::kEthTci:
    case Field::kEthVlan:
      return Placement{14, 2, 0};
    case Field::kEthDei:
      return Placement{14, 2, 12};
    case Field::kEthPcp:
      return Placement{14, 2, 13};
    default:
      return std::nullopt;
    }
  case SpecKind::kIpv4:
  case SpecKind::kIpv4Ext:
    switch (field) {
    case Field::kIpv4Src:
      return Placement{0, 4, 0};
    case Field::kIpv4Dst:
      return Placement{4, 4, 0};
    default:
      break;
    }
    if (kind == SpecKind::kIpv4) {
      return std::nullopt;
    }
    switch (field) {
    case Field::kIpv4Proto:
      return Placement{8, 1, 0};
    case Field::kIpv4Tos:
    case Field::kIpv4Ecn:
      return Placement{9, 1, 0};
    case Field::kIpv4Dscp:
      return Placement{9, 1, 2};
    case Field::kIpv4Ttl:
      return Placement{10, 1, 0};
    case Field::kIpv4Flags:
      return Placement{11, 1, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kIpv6:
    switch (field) {
    case Field::kIpv6Src:
      return Placement{0, 16, 0};
    case Field::kIpv6Dst:
      return Placement{16, 16, 0};
    case Field::kIpv6FlowLabel:
      return Placement{32, 4, 0};
    case Field::kIpv6NextHdr:
      return Placement{36, 1, 0};
    case Field::kIpv6Tclass:
    case Field::kIpv6Ecn:
      return Placement{37, 1, 0};
    case Field::kIpv6Dscp:
      return Placement{37, 1, 2};
    case Field::kIpv6HopLimit:
      return Placement{38, 1, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kEsp:
    switch (field) {
    case Field::kEspSpi:
      return Placement{0, 4, 0};
    case Field::kEspSeq:
      return Placement{4, 4, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kTcp:
    // `struct ibv_flow_tcp_udp_filter` puts the destination port first.
    switch (field) {
    case Field::kTcpDst:
      return Placement{0, 2, 0};
    case Field::kTcpSrc:
      return Placement{2, 2, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kUdp:
    switch (field) {
    case Field::kUdpDst:
      return Placement{0, 2, 0};
    case Field::kUdpSrc:
      return Placement{2, 2, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kVxlanTunnel:
    // tunnel_id is htonl(vni): the VNI in the low 24 bits, the top byte 0.
    return field == Field::kVxlanVni ? std::optional<Placement>(Placement{0, 4, 0}) : std::nullopt;
  case SpecKind::kGre:
    switch (field) {
    case Field::kGreFlags:
      return Placement{0, 2, 0};
    case Field::kGreProtocol:
      return Placement{2, 2, 0};
    case Field::kGreKey:
      return Placement{4, 4, 0};
    default:
      return std::nullopt;
    }
  case SpecKind::kMpls:
    switch (field) {
    case Field::kMplsLabel:
      return Placement{0, 4, 12};
    case Field::kMplsTc:
      return Placement{0, 4, 9};
    case Field::kMplsBos:
      return Placement{0, 4, 8};
    case Field::kMplsTtl:
      return Placement{0, 4, 0};
    default:
      return std::nullopt;
    }
  default:
    return std::nullopt;
  }
}

} // namespace flowc::emit
