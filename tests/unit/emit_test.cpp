// Byte-exact tests of the ibv_create_flow() encoder against buffers built
// with the real rdma-core structs of <infiniband/verbs.h>.
#include "compiler/emit/buffer.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <infiniband/verbs.h>

#include <cstddef>
#include <cstring>

#include "llvm/Support/Endian.h"

namespace flowc::emit {
namespace {

using llvm::APInt;

// Zeroed in place: a struct returned by value need not keep zero padding.
#define ZEROED(Type, name)                                                                         \
  Type name;                                                                                       \
  std::memset(&name, 0, sizeof name)

/// A reference buffer: an attr followed by specs, each copied from a real
/// struct whose padding was zeroed before its fields were set.
class Ref {
public:
  explicit Ref(ibv_flow_attr_type type = IBV_FLOW_ATTR_NORMAL, uint16_t priority = 0,
               uint8_t port = 1, uint32_t flags = 0) {
    ZEROED(ibv_flow_attr, a);
    a.type = type;
    a.priority = priority;
    a.port = port;
    a.flags = flags;
    Append(a);
  }
  template <typename Spec> Ref &Add(const Spec &spec) {
    Append(spec);
    bytes_[12]++; // num_of_specs
    return *this;
  }
  /// The buffer with attr.size set to its length, as flowc writes it.
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out = bytes_;
    out[8] = static_cast<uint8_t>(out.size());
    out[9] = static_cast<uint8_t>(out.size() >> 8);
    return out;
  }

private:
  template <typename T> void Append(const T &t) {
    const auto *p = reinterpret_cast<const uint8_t *>(&t);
    bytes_.insert(bytes_.end(), p, p + sizeof(T));
  }
  std::vector<uint8_t> bytes_;
};



APInt Int(Field f, uint64_t v) { return APInt(GetFieldInfo(f).bits, v); }
APInt Full(Field f) { return APInt::getAllOnes(GetFieldInfo(f).bits); }
APInt Bytes(Field f, std::initializer_list<uint8_t> bytes) {
  APInt v(GetFieldInfo(f).bits, 0);
  for (uint8_t b : bytes) {
    v <<= 8;
    v |= b;
  }
  return v;
}

void Set(HwSpec &s, Field f, uint64_t v) { SetField(s, f, Int(f, v), Full(f)); }

std::string Hex(const std::vector<uint8_t> &b) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    out += (i % 16 == 0 ? (i ? "\n" : "") : " ") + std::string(buf);
  }
  return out;
}

#define EXPECT_BYTES(rule, ref) EXPECT_EQ(Hex(Encode(rule)), Hex((ref).Bytes()))

TEST(Layout, MatchesVerbsH) {
  struct Expect {
    SpecKind kind;
    size_t size, val_offset, filter_size;
    uint32_t type;
  } cases[] = {
      {SpecKind::kEth, sizeof(ibv_flow_spec_eth), offsetof(ibv_flow_spec_eth, val),
       sizeof(ibv_flow_eth_filter), IBV_FLOW_SPEC_ETH},
      {SpecKind::kIpv4, sizeof(ibv_flow_spec_ipv4), offsetof(ibv_flow_spec_ipv4, val),
       sizeof(ibv_flow_ipv4_filter), IBV_FLOW_SPEC_IPV4},
      {SpecKind::kIpv4Ext, sizeof(ibv_flow_spec_ipv4_ext), offsetof(ibv_flow_spec_ipv4_ext, val),
       sizeof(ibv_flow_ipv4_ext_filter), IBV_FLOW_SPEC_IPV4_EXT},
      {SpecKind::kIpv6, sizeof(ibv_flow_spec_ipv6), offsetof(ibv_flow_spec_ipv6, val),
       sizeof(ibv_flow_ipv6_filter), IBV_FLOW_SPEC_IPV6},
      {SpecKind::kEsp, sizeof(ibv_flow_spec_esp), offsetof(ibv_flow_spec_esp, val),
       sizeof(ibv_flow_esp_filter), IBV_FLOW_SPEC_ESP},
      {SpecKind::kTcp, sizeof(ibv_flow_spec_tcp_udp), offsetof(ibv_flow_spec_tcp_udp, val),
       sizeof(ibv_flow_tcp_udp_filter), IBV_FLOW_SPEC_TCP},
      {SpecKind::kUdp, sizeof(ibv_flow_spec_tcp_udp), offsetof(ibv_flow_spec_tcp_udp, val),
       sizeof(ibv_flow_tcp_udp_filter), IBV_FLOW_SPEC_UDP},
      {SpecKind::kVxlanTunnel, sizeof(ibv_flow_spec_tunnel), offsetof(ibv_flow_spec_tunnel, val),
       sizeof(ibv_flow_tunnel_filter), IBV_FLOW_SPEC_VXLAN_TUNNEL},
      {SpecKind::kGre, sizeof(ibv_flow_spec_gre), offsetof(ibv_flow_spec_gre, val),
       sizeof(ibv_flow_gre_filter), IBV_FLOW_SPEC_GRE},
      {SpecKind::kMpls, sizeof(ibv_flow_spec_mpls), offsetof(ibv_flow_spec_mpls, val),
       sizeof(ibv_flow_mpls_filter), IBV_FLOW_SPEC_MPLS},
      {SpecKind::kActionTag, sizeof(ibv_flow_spec_action_tag),
       offsetof(ibv_flow_spec_action_tag, tag_id), 0, IBV_FLOW_SPEC_ACTION_TAG},
      {SpecKind::kActionDrop, sizeof(ibv_flow_spec_action_drop), 8, 0, IBV_FLOW_SPEC_ACTION_DROP},
      {SpecKind::kActionHandle, sizeof(ibv_flow_spec_action_handle),
       offsetof(ibv_flow_spec_action_handle, action), 0, IBV_FLOW_SPEC_ACTION_HANDLE},
      {SpecKind::kActionCount, sizeof(ibv_flow_spec_counter_action),
       offsetof(ibv_flow_spec_counter_action, counters), 0, IBV_FLOW_SPEC_ACTION_COUNT},
  };
  for (const Expect &e : cases) {
    const SpecLayout &l = GetLayout(e.kind);
    EXPECT_EQ(l.size, e.size) << l.name.str();
    EXPECT_EQ(l.val_offset, e.val_offset) << l.name.str();
    EXPECT_EQ(l.filter_size, e.filter_size) << l.name.str();
    EXPECT_EQ(l.type, e.type) << l.name.str();
  }
  EXPECT_EQ(kAttrSize, sizeof(ibv_flow_attr));
  EXPECT_EQ(kSpecInner, static_cast<uint32_t>(IBV_FLOW_SPEC_INNER));
  EXPECT_EQ(kFlagDontTrap, static_cast<uint32_t>(IBV_FLOW_ATTR_FLAGS_DONT_TRAP));
  EXPECT_EQ(kFlagEgress, static_cast<uint32_t>(IBV_FLOW_ATTR_FLAGS_EGRESS));
}

TEST(Encode, Eth) {
  HwRule r;
  HwSpec s = MakeSpec(SpecKind::kEth);
  SetField(s, Field::kEthDst, Bytes(Field::kEthDst, {0x66, 0x11, 0x22, 0x33, 0x44, 0x55}),
           Full(Field::kEthDst));
  SetField(s, Field::kEthSrc, Bytes(Field::kEthSrc, {0x02, 0, 0, 0, 0, 0x10}),
           Bytes(Field::kEthSrc, {0xff, 0xff, 0xff, 0, 0, 0}));
  Set(s, Field::kEthType, 0x8100);
  Set(s, Field::kEthVlan, 100);
  Set(s, Field::kEthPcp, 5);
  Set(s, Field::kEthDei, 1);
  r.specs.push_back(s);

  ZEROED(ibv_flow_spec_eth, eth);
  eth.type = IBV_FLOW_SPEC_ETH;
  eth.size = sizeof eth;
  const uint8_t dst[6] = {0x66, 0x11, 0x22, 0x33, 0x44, 0x55};
  const uint8_t src[6] = {0x02, 0, 0, 0, 0, 0x10}, src_mask[6] = {0xff, 0xff, 0xff, 0, 0, 0};
  std::memcpy(eth.val.dst_mac, dst, 6);
  std::memset(eth.mask.dst_mac, 0xff, 6);
  std::memcpy(eth.val.src_mac, src, 6);
  std::memcpy(eth.mask.src_mac, src_mask, 6);
  eth.val.ether_type = htons(0x8100);
  eth.mask.ether_type = htons(0xffff);
  eth.val.vlan_tag = htons(5 << 13 | 1 << 12 | 100);
  eth.mask.vlan_tag = htons(0xffff);
  EXPECT_BYTES(r, Ref().Add(eth));
}

TEST(Encode, Ipv4AndIpv4Ext) {
  HwRule r;
  HwSpec v4 = MakeSpec(SpecKind::kIpv4);
  Set(v4, Field::kIpv4Src, 0x0B86C806); // 11.134.200.6
  SetField(v4, Field::kIpv4Dst, Int(Field::kIpv4Dst, 0x0a010000),
           Int(Field::kIpv4Dst, 0xffff0000));
  r.specs.push_back(v4);
  HwSpec ext = MakeSpec(SpecKind::kIpv4Ext, /*inner=*/true);
  Set(ext, Field::kIpv4Src, 0xc0000201);
  Set(ext, Field::kIpv4Proto, 17);
  Set(ext, Field::kIpv4Dscp, 46);
  Set(ext, Field::kIpv4Ecn, 2);
  Set(ext, Field::kIpv4Ttl, 64);
  Set(ext, Field::kIpv4Flags, 2);
  r.specs.push_back(ext);

  ZEROED(ibv_flow_spec_ipv4, a);
  a.type = IBV_FLOW_SPEC_IPV4;
  a.size = sizeof a;
  a.val.src_ip = htonl(0x0B86C806);
  a.mask.src_ip = 0xffffffff;
  a.val.dst_ip = htonl(0x0a010000);
  a.mask.dst_ip = htonl(0xffff0000);
  ZEROED(ibv_flow_spec_ipv4_ext, b);
  b.type = static_cast<ibv_flow_spec_type>(IBV_FLOW_SPEC_IPV4_EXT | IBV_FLOW_SPEC_INNER);
  b.size = sizeof b;
  b.val.src_ip = htonl(0xc0000201);
  b.mask.src_ip = 0xffffffff;
  b.val.proto = 17;
  b.mask.proto = 0xff;
  b.val.tos = 46 << 2 | 2;
  b.mask.tos = 0xff;
  b.val.ttl = 64;
  b.mask.ttl = 0xff;
  b.val.flags = 2;
  b.mask.flags = 7;
  EXPECT_BYTES(r, Ref().Add(a).Add(b));
}

TEST(Encode, Ipv6) {
  HwRule r;
  HwSpec s = MakeSpec(SpecKind::kIpv6);
  const uint8_t src[16] = {0xa0, 0xa1, 0, 0, 0, 0, 0, 0, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8,
                           0xa9};
  APInt v(128, 0);
  for (uint8_t b : src) {
    v <<= 8;
    v |= b;
  }
  SetField(s, Field::kIpv6Src, v, APInt::getAllOnes(128));
  SetField(s, Field::kIpv6Dst, APInt(128, 0x20010db8).shl(96), APInt::getHighBitsSet(128, 32));
  Set(s, Field::kIpv6FlowLabel, 0xabcde);
  Set(s, Field::kIpv6NextHdr, 6);
  Set(s, Field::kIpv6Dscp, 10);
  Set(s, Field::kIpv6Ecn, 1);
  Set(s, Field::kIpv6HopLimit, 255);
  r.specs.push_back(s);

  ZEROED(ibv_flow_spec_ipv6, a);
  a.type = IBV_FLOW_SPEC_IPV6;
  a.size = sizeof a;
  std::memcpy(a.val.src_ip, src, 16);
  std::memset(a.mask.src_ip, 0xff, 16);
  const uint8_t dst[4] = {0x20, 0x01, 0x0d, 0xb8};
  std::memcpy(a.val.dst_ip, dst, 4);
  std::memset(a.mask.dst_ip, 0xff, 4);
  a.val.flow_label = htonl(0xabcde);
  a.mask.flow_label = htonl(0xfffff);
  a.val.next_hdr = 6;
  a.mask.next_hdr = 0xff;
  a.val.traffic_class = 10 << 2 | 1;
  a.mask.traffic_class = 0xff;
  a.val.hop_limit = 255;
  a.mask.hop_limit = 0xff;
  EXPECT_BYTES(r, Ref().Add(a));
}

TEST(Encode, TransportEspTunnelsAndMpls) {
  HwRule r;
  HwSpec tcp = MakeSpec(SpecKind::kTcp);
  Set(tcp, Field::kTcpDst, 80);
  SetField(tcp, Field::kTcpSrc, Int(Field::kTcpSrc, 0x0400), Int(Field::kTcpSrc, 0xfc00));
  HwSpec udp = MakeSpec(SpecKind::kUdp);
  Set(udp, Field::kUdpDst, 4791);
  Set(udp, Field::kUdpSrc, 1234);
  HwSpec esp = MakeSpec(SpecKind::kEsp, /*inner=*/true);
  Set(esp, Field::kEspSpi, 0x1000);
  Set(esp, Field::kEspSeq, 7);
  HwSpec vx = MakeSpec(SpecKind::kVxlanTunnel);
  Set(vx, Field::kVxlanVni, 0xabcdef);
  HwSpec gre = MakeSpec(SpecKind::kGre);
  Set(gre, Field::kGreFlags, 0x2000);
  Set(gre, Field::kGreProtocol, 0x8847);
  Set(gre, Field::kGreKey, 0xdeadbeef);
  HwSpec mpls = MakeSpec(SpecKind::kMpls, /*inner=*/true);
  Set(mpls, Field::kMplsLabel, 1000);
  Set(mpls, Field::kMplsTc, 5);
  Set(mpls, Field::kMplsBos, 1);
  Set(mpls, Field::kMplsTtl, 64);
  r.specs = {tcp, udp, esp, vx, gre, mpls};

  ZEROED(ibv_flow_spec_tcp_udp, t);
  t.type = IBV_FLOW_SPEC_TCP;
  t.size = sizeof t;
  t.val.dst_port = htons(80);
  t.mask.dst_port = 0xffff;
  t.val.src_port = htons(0x0400);
  t.mask.src_port = htons(0xfc00);
  ZEROED(ibv_flow_spec_tcp_udp, u);
  u.type = IBV_FLOW_SPEC_UDP;
  u.size = sizeof u;
  u.val.dst_port = htons(4791);
  u.mask.dst_port = 0xffff;
  u.val.src_port = htons(1234);
  u.mask.src_port = 0xffff;
  ZEROED(ibv_flow_spec_esp, e);
  e.type = static_cast<ibv_flow_spec_type>(IBV_FLOW_SPEC_ESP | IBV_FLOW_SPEC_INNER);
  e.size = sizeof e;
  e.val.spi = htonl(0x1000);
  e.mask.spi = 0xffffffff;
  e.val.seq = htonl(7);
  e.mask.seq = 0xffffffff;
  ZEROED(ibv_flow_spec_tunnel, x);
  x.type = IBV_FLOW_SPEC_VXLAN_TUNNEL;
  x.size = sizeof x;
  x.val.tunnel_id = htonl(0xabcdef);
  x.mask.tunnel_id = htonl(0xffffff);
  ZEROED(ibv_flow_spec_gre, g);
  g.type = IBV_FLOW_SPEC_GRE;
  g.size = sizeof g;
  g.val.c_ks_res0_ver = htons(0x2000);
  g.mask.c_ks_res0_ver = 0xffff;
  g.val.protocol = htons(0x8847);
  g.mask.protocol = 0xffff;
  g.val.key = htonl(0xdeadbeef);
  g.mask.key = 0xffffffff;
  ZEROED(ibv_flow_spec_mpls, m);
  m.type = static_cast<ibv_flow_spec_type>(IBV_FLOW_SPEC_MPLS | IBV_FLOW_SPEC_INNER);
  m.size = sizeof m;
  m.val.label = htonl(1000u << 12 | 5u << 9 | 1u << 8 | 64u);
  m.mask.label = 0xffffffff;
  EXPECT_BYTES(r, Ref().Add(t).Add(u).Add(e).Add(x).Add(g).Add(m));
}

TEST(Encode, InnerVariantsOfEveryInnerSpec) {
  for (SpecKind kind : {SpecKind::kEth, SpecKind::kIpv4, SpecKind::kIpv4Ext, SpecKind::kIpv6,
                        SpecKind::kEsp, SpecKind::kTcp, SpecKind::kUdp, SpecKind::kMpls}) {
    HwRule r;
    r.specs.push_back(MakeSpec(kind, /*inner=*/true));
    std::vector<uint8_t> b = Encode(r);
    EXPECT_EQ(llvm::support::endian::read32le(b.data() + kAttrSize),
              GetLayout(kind).type | IBV_FLOW_SPEC_INNER)
        << GetLayout(kind).name.str();
    auto back = Decode(b);
    ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
    EXPECT_TRUE(back->specs[0].inner);
  }
}

TEST(Encode, ActionsRuleKindsAndFlags) {
  HwRule r;
  r.priority = 3;
  r.port = 2;
  r.flags = kFlagDontTrap;
  HwSpec tag = MakeSpec(SpecKind::kActionTag);
  tag.tag = 0x42;
  HwSpec handle = MakeSpec(SpecKind::kActionHandle);
  handle.binding = 5; // not in the buffer: the pointer is written as zero
  r.specs = {MakeSpec(SpecKind::kActionDrop), tag, handle, MakeSpec(SpecKind::kActionCount)};

  ZEROED(ibv_flow_spec_action_tag, t);
  t.type = IBV_FLOW_SPEC_ACTION_TAG;
  t.size = sizeof t;
  t.tag_id = 0x42;
  ZEROED(ibv_flow_spec_action_drop, d);
  d.type = IBV_FLOW_SPEC_ACTION_DROP;
  d.size = sizeof d;
  ZEROED(ibv_flow_spec_action_handle, h);
  h.type = IBV_FLOW_SPEC_ACTION_HANDLE;
  h.size = sizeof h;
  ZEROED(ibv_flow_spec_counter_action, c);
  c.type = IBV_FLOW_SPEC_ACTION_COUNT;
  c.size = sizeof c;
  EXPECT_BYTES(r, Ref(IBV_FLOW_ATTR_NORMAL, 3, 2, IBV_FLOW_ATTR_FLAGS_DONT_TRAP)
                      .Add(d)
                      .Add(t)
                      .Add(h)
                      .Add(c));

  for (auto [type, verbs] : {std::pair{AttrType::kAllDefault, IBV_FLOW_ATTR_ALL_DEFAULT},
                             std::pair{AttrType::kMcDefault, IBV_FLOW_ATTR_MC_DEFAULT},
                             std::pair{AttrType::kSniffer, IBV_FLOW_ATTR_SNIFFER}}) {
    HwRule k;
    k.type = type;
    EXPECT_BYTES(k, Ref(verbs));
  }
  HwRule egress;
  egress.flags = kFlagEgress;
  egress.specs = {MakeSpec(SpecKind::kActionDrop)};
  EXPECT_BYTES(egress, Ref(IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_EGRESS).Add(d));
}

std::vector<uint8_t> FromHex(const char *hex) {
  std::vector<uint8_t> out;
  for (const char *p = hex; *p;) {
    if (std::isxdigit(static_cast<unsigned char>(p[0])) &&
        std::isxdigit(static_cast<unsigned char>(p[1]))) {
      out.push_back(static_cast<uint8_t>(std::stoi(std::string(p, 2), nullptr, 16)));
      p += 2;
    } else {
      ++p;
    }
  }
  return out;
}

/// verbs-facts §5.6 EX1, the man page example, with the IPv4 source in
/// network order (the man page wrote 0x0B86C806 in host order).
TEST(ReferenceBuffers, ManPageEx1) {
  HwRule r;
  HwSpec eth = MakeSpec(SpecKind::kEth);
  SetField(eth, Field::kEthDst, Bytes(Field::kEthDst, {0x66, 0x11, 0x22, 0x33, 0x44, 0x55}),
           Full(Field::kEthDst));
  SetField(eth, Field::kEthSrc, Int(Field::kEthSrc, 0), Full(Field::kEthSrc));
  HwSpec ip = MakeSpec(SpecKind::kIpv4);
  Set(ip, Field::kIpv4Src, 0x0B86C806);
  r.specs = {eth, ip};
  EXPECT_EQ(Hex(Encode(r)), Hex(FromHex("00 00 00 00 00 00 00 00 54 00 00 00 02 01 00 00"
                                        "00 00 00 00 20 00 00 00 28 00 66 11 22 33 44 55"
                                        "00 00 00 00 00 00 00 00 00 00 ff ff ff ff ff ff"
                                        "ff ff ff ff ff ff 00 00 00 00 00 00 30 00 00 00"
                                        "18 00 00 00 0b 86 c8 06 00 00 00 00 ff ff ff ff"
                                        "00 00 00 00")));
}

/// EX3 (DPDK mlx4's MAC + VLAN rule), EX4 (DPDK mlx5's priority probe) and
/// EX5 (perftest): those clients leave attr.size at 20 or 0, which
/// libibverbs never reads (verbs-facts §1.4); flowc writes the total.
TEST(ReferenceBuffers, DpdkAndPerftest) {
  HwRule ex3;
  ex3.priority = 4095;
  HwSpec eth = MakeSpec(SpecKind::kEth);
  SetField(eth, Field::kEthDst, Bytes(Field::kEthDst, {0x00, 0x02, 0xc9, 0x11, 0x22, 0x33}),
           Full(Field::kEthDst));
  Set(eth, Field::kEthVlan, 100);
  ex3.specs = {eth};
  EXPECT_EQ(Hex(Encode(ex3)), Hex(FromHex("00 00 00 00 00 00 00 00 3c 00 ff 0f 01 01 00 00"
                                          "00 00 00 00 20 00 00 00 28 00 00 02 c9 11 22 33"
                                          "00 00 00 00 00 00 00 00 00 64 ff ff ff ff ff ff"
                                          "00 00 00 00 00 00 00 00 0f ff 00 00")));
  HwRule ex4;
  ex4.priority = 15;
  ex4.specs = {MakeSpec(SpecKind::kEth), MakeSpec(SpecKind::kActionDrop)};
  EXPECT_EQ(Hex(Encode(ex4)), Hex(FromHex("00 00 00 00 00 00 00 00 44 00 0f 00 02 01 00 00"
                                          "00 00 00 00 20 00 00 00 28 00 00 00 00 00 00 00"
                                          "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
                                          "00 00 00 00 00 00 00 00 00 00 00 00 01 10 00 00"
                                          "08 00 00 00")));
  HwRule all;
  all.type = AttrType::kAllDefault;
  EXPECT_EQ(Hex(Encode(all)), Hex(FromHex("00 00 00 00 01 00 00 00 14 00 00 00 00 01 00 00 "
                                          "00 00 00 00")));
  HwRule sniffer;
  sniffer.type = AttrType::kSniffer;
  EXPECT_EQ(Hex(Encode(sniffer)), Hex(FromHex("00 00 00 00 03 00 00 00 14 00 00 00 00 01 00 00 "
                                              "00 00 00 00")));
}

TEST(Fields, RoundTripThroughSharedWords) {
  HwSpec s = MakeSpec(SpecKind::kMpls);
  Set(s, Field::kMplsLabel, 0xfffff);
  SetField(s, Field::kMplsTc, Int(Field::kMplsTc, 2), Int(Field::kMplsTc, 6));
  auto [label, label_mask] = GetField(s, Field::kMplsLabel);
  auto [tc, tc_mask] = GetField(s, Field::kMplsTc);
  EXPECT_EQ(label.getZExtValue(), 0xfffffu);
  EXPECT_EQ(label_mask.getZExtValue(), 0xfffffu);
  EXPECT_EQ(tc.getZExtValue(), 2u);
  EXPECT_EQ(tc_mask.getZExtValue(), 6u);
  EXPECT_EQ(GetField(s, Field::kMplsTtl).second.getZExtValue(), 0u);
}

TEST(Decode, RoundTripsAndRejectsBadBuffers) {
  HwRule r;
  r.priority = 7;
  HwSpec ip6 = MakeSpec(SpecKind::kIpv6);
  Set(ip6, Field::kIpv6NextHdr, 17);
  HwSpec udp = MakeSpec(SpecKind::kUdp);
  Set(udp, Field::kUdpDst, 4791);
  HwSpec tag = MakeSpec(SpecKind::kActionTag);
  tag.tag = 9;
  r.specs = {ip6, udp, tag};
  std::vector<uint8_t> good = Encode(r);
  auto back = Decode(good);
  ASSERT_TRUE(bool(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(Encode(*back), good);
  EXPECT_EQ(back->specs[2].tag, 9u);

  auto rejects = [&](std::vector<uint8_t> bad, const char *why) {
    auto d = Decode(bad);
    EXPECT_FALSE(bool(d)) << why;
    if (!d) {
      EXPECT_NE(llvm::toString(d.takeError()).find(why), std::string::npos) << why;
    }
  };
  auto with = [&](size_t at, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[at] = v;
    return b;
  };
  rejects(with(14, 1), "padding or pointer byte");              // attr padding
  rejects(with(20 + 6, 1), "padding or pointer byte");          // IPV6 spec padding
  rejects(with(20 + 48 + 39, 1), "IPv6 filter padding");        // the mask's pad byte
  rejects(with(8, 0), "attr size");                             // size field
  rejects(with(0, 1), "comp_mask");
  rejects(with(4, 9), "unknown attr type");
  rejects(with(16, 1), "flags");
  rejects(with(12, 2), "bytes left");
  rejects(with(12, 4), "missing");
  rejects(with(20, 0x22), "unknown spec type");
  rejects(with(20 + 4, 80), "size is 80");
  std::vector<uint8_t> inner_vxlan = Encode([] {
    HwRule v;
    v.specs = {MakeSpec(SpecKind::kVxlanTunnel)};
    return v;
  }());
  inner_vxlan[21] = 0x01; // type 0x150
  rejects(inner_vxlan, "cannot carry IBV_FLOW_SPEC_INNER");
  rejects(std::vector<uint8_t>(good.begin(), good.begin() + 10), "shorter");
}

} // namespace
} // namespace flowc::emit
