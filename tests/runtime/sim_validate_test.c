// Tests of the sim's validator: bad buffers and their errno, the §5.6 reference buffers,
// truncations, decode.
//
// Plain C, no framework: prints each failed check and exits non-zero. Every
// buffer is built from the real verbs.h structs (zeroed, fields set, then
// memcpy'd into bytes) and handed to the validator in a heap block of its
// exact size at an odd address, so that the sanitizers catch any read past
// the end and any cast of the buffer to a struct pointer.
#include "flowrt/sim_validate.h"

#include <errno.h>
#include <infiniband/verbs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *errno_name(int err) {
  switch (err) {
  case 0:
    return "0";
  case EINVAL:
    return "EINVAL";
  case EOPNOTSUPP:
    return "EOPNOTSUPP";
  case ENOMEM:
    return "ENOMEM";
  default:
    return "other";
  }
}

// --- Bytes ------------------------------------------------------------------

/// `v` in network order, as a value to store in a verbs.h field.
static uint16_t be16(uint16_t v) {
  unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
  uint16_t r;
  memcpy(&r, b, sizeof r);
  return r;
}

/// `v` in network order, as a value to store in a verbs.h field.
static uint32_t be32(uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                        (unsigned char)v};
  uint32_t r;
  memcpy(&r, b, sizeof r);
  return r;
}

static int host_is_little_endian(void) {
  uint16_t one = 1;
  unsigned char first;
  memcpy(&first, &one, 1);
  return first == 1;
}

// --- Building rules -----------------------------------------------------------

/// A rule under construction: the attr is kept apart and copied to the front by finish().
struct rule {
  unsigned char bytes[4096];
  size_t len;
  struct ibv_flow_attr attr;
};

/// Zeroes a spec struct and sets its type and size (`sizeof` the struct).
#define INIT(s, spec_type)                                                                         \
  do {                                                                                             \
    memset(&(s), 0, sizeof(s));                                                                    \
    (s).type = (spec_type);                                                                        \
    (s).size = sizeof(s);                                                                          \
  } while (0)

static void begin(struct rule *r) {
  memset(r, 0, sizeof *r);
  r->attr.type = IBV_FLOW_ATTR_NORMAL;
  r->attr.port = 1;
  r->len = sizeof r->attr;
}

/// Appends raw bytes without counting a spec.
static void add_bytes(struct rule *r, const void *p, size_t n) {
  memcpy(r->bytes + r->len, p, n);
  r->len += n;
}

/// Appends one spec and counts it in num_of_specs.
static void add(struct rule *r, const void *spec, size_t n) {
  add_bytes(r, spec, n);
  r->attr.num_of_specs++;
}

static void finish(struct rule *r) {
  memcpy(r->bytes, &r->attr, sizeof r->attr);
}

static const uint8_t kMac[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

static void add_eth_t(struct rule *r, uint32_t type, uint16_t ethertype) {
  struct ibv_flow_spec_eth s;
  INIT(s, type);
  memcpy(s.val.dst_mac, kMac, 6);
  memset(s.mask.dst_mac, 0xFF, 6);
  if (ethertype != 0) {
    s.val.ether_type = be16(ethertype);
    s.mask.ether_type = 0xFFFF;
  }
  add(r, &s, sizeof s);
}

static void add_eth(struct rule *r, uint16_t ethertype) {
  add_eth_t(r, IBV_FLOW_SPEC_ETH, ethertype);
}

static void add_ipv4(struct rule *r) {
  struct ibv_flow_spec_ipv4 s;
  INIT(s, IBV_FLOW_SPEC_IPV4);
  s.val.src_ip = be32(0x0A000001);
  s.mask.src_ip = 0xFFFFFFFF;
  s.val.dst_ip = be32(0x0A000002);
  s.mask.dst_ip = 0xFFFFFFFF;
  add(r, &s, sizeof s);
}

static void ipv4_ext(struct ibv_flow_spec_ipv4_ext *s, uint32_t type, uint8_t proto) {
  INIT(*s, type);
  s->val.src_ip = be32(0x0A000001);
  s->mask.src_ip = 0xFFFFFFFF;
  s->val.dst_ip = be32(0x0A000002);
  s->mask.dst_ip = 0xFFFFFFFF;
  if (proto != 0) {
    s->val.proto = proto;
    s->mask.proto = 0xFF;
  }
}

static void add_ipv4_ext_t(struct rule *r, uint32_t type, uint8_t proto) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, type, proto);
  add(r, &s, sizeof s);
}

static void add_ipv4_ext(struct rule *r, uint8_t proto) {
  add_ipv4_ext_t(r, IBV_FLOW_SPEC_IPV4_EXT, proto);
}

static void ipv6(struct ibv_flow_spec_ipv6 *s, uint32_t type, uint8_t next_hdr) {
  INIT(*s, type);
  memset(s->val.dst_ip, 0xB0, 16);
  memset(s->mask.dst_ip, 0xFF, 16);
  if (next_hdr != 0) {
    s->val.next_hdr = next_hdr;
    s->mask.next_hdr = 0xFF;
  }
}

static void add_ipv6(struct rule *r, uint8_t next_hdr) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, next_hdr);
  add(r, &s, sizeof s);
}

/// An IPV6 spec whose mask pad byte (offset 87 of the spec) is set.
static void add_ipv6_bad_pad(struct rule *r) {
  add_ipv6(r, 17);
  r->bytes[r->len - 1] = 0x01;
}

static void add_l4_t(struct rule *r, uint32_t type, uint16_t dst_port) {
  struct ibv_flow_spec_tcp_udp s;
  INIT(s, type);
  if (dst_port != 0) {
    s.val.dst_port = be16(dst_port);
    s.mask.dst_port = 0xFFFF;
  }
  add(r, &s, sizeof s);
}

static void add_udp(struct rule *r, uint16_t dst_port) {
  add_l4_t(r, IBV_FLOW_SPEC_UDP, dst_port);
}

static void add_tcp(struct rule *r, uint16_t dst_port) {
  add_l4_t(r, IBV_FLOW_SPEC_TCP, dst_port);
}

static void add_vxlan(struct rule *r, uint32_t vni_val, uint32_t vni_mask) {
  struct ibv_flow_spec_tunnel s;
  INIT(s, IBV_FLOW_SPEC_VXLAN_TUNNEL);
  s.val.tunnel_id = be32(vni_val);
  s.mask.tunnel_id = be32(vni_mask);
  add(r, &s, sizeof s);
}

static void add_gre(struct rule *r, uint16_t protocol) {
  struct ibv_flow_spec_gre s;
  INIT(s, IBV_FLOW_SPEC_GRE);
  s.val.protocol = be16(protocol);
  s.mask.protocol = 0xFFFF;
  add(r, &s, sizeof s);
}

/// An MPLS spec matching `mask` of the label stack entry 0x00065140 (label 101, BoS, TTL 64).
static void add_mpls_t(struct rule *r, uint32_t type, uint32_t mask) {
  struct ibv_flow_spec_mpls s;
  INIT(s, type);
  s.val.label = be32(0x00065140 & mask);
  s.mask.label = be32(mask);
  add(r, &s, sizeof s);
}

static void add_esp(struct rule *r, uint32_t seq_mask) {
  struct ibv_flow_spec_esp s;
  INIT(s, IBV_FLOW_SPEC_ESP);
  s.val.spi = be32(0x1234);
  s.mask.spi = 0xFFFFFFFF;
  s.mask.seq = be32(seq_mask);
  add(r, &s, sizeof s);
}

static void add_tag(struct rule *r, uint32_t tag_id) {
  struct ibv_flow_spec_action_tag s;
  INIT(s, IBV_FLOW_SPEC_ACTION_TAG);
  s.tag_id = tag_id;
  add(r, &s, sizeof s);
}

static void add_drop(struct rule *r) {
  struct ibv_flow_spec_action_drop s;
  INIT(s, IBV_FLOW_SPEC_ACTION_DROP);
  add(r, &s, sizeof s);
}

static void add_count(struct rule *r) {
  struct ibv_flow_spec_counter_action s;
  INIT(s, IBV_FLOW_SPEC_ACTION_COUNT);
  add(r, &s, sizeof s);
}

/// A VXLAN_TUNNEL spec of size 24 (an 8-byte user filter) with `extra` in the mask's extra bytes.
static void add_vxlan_wide(struct rule *r, uint32_t extra) {
  struct ibv_flow_spec_tunnel head;
  INIT(head, IBV_FLOW_SPEC_VXLAN_TUNNEL);
  head.size = 24;
  struct ibv_flow_tunnel_filter val, mask;
  memset(&val, 0, sizeof val);
  memset(&mask, 0, sizeof mask);
  val.tunnel_id = be32(7);
  mask.tunnel_id = be32(0xFFFFFF);
  add(r, &head, offsetof(struct ibv_flow_spec_tunnel, val));
  add_bytes(r, &val, sizeof val);
  add_bytes(r, "\0\0\0\0", 4);
  add_bytes(r, &mask, sizeof mask);
  add_bytes(r, &extra, sizeof extra);
}

/// An IPV4_EXT spec of size 40 (a 16-byte user filter) with `extra` in the mask's extra bytes.
static void add_ipv4_ext_wide(struct rule *r, uint8_t proto, uint32_t extra) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, proto);
  s.size = 40;
  add(r, &s, offsetof(struct ibv_flow_spec_ipv4_ext, val));
  add_bytes(r, &s.val, sizeof s.val);
  add_bytes(r, "\0\0\0\0", 4);
  add_bytes(r, &s.mask, sizeof s.mask);
  add_bytes(r, &extra, sizeof extra);
}

// --- Running ----------------------------------------------------------------

enum { kPorts = 2 };

/// Validates `len` bytes in a heap block of exactly that size, at an odd address.
static int run(const unsigned char *bytes, size_t len, enum flowrt_sim_profile profile,
               const struct flowrt_sim_caps *caps, int raw_qp, char *why, size_t whylen) {
  unsigned char *block = malloc(len + 1);
  if (block == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(2);
  }
  memcpy(block + 1, bytes, len);
  int err = flowrt_sim_validate(block + 1, len, profile, caps, raw_qp, kPorts, why, whylen);
  free(block);
  return err;
}

// Capability variants.
static void caps_8_prios(struct flowrt_sim_caps *c) {
  c->mlx5_num_prios = 8;
}
static void caps_no_sniffer(struct flowrt_sim_caps *c) {
  c->mlx5_sniffer = false;
}
static void caps_no_inner(struct flowrt_sim_caps *c) {
  c->mlx5_inner_headers = false;
}
static void caps_no_ip_version(struct flowrt_sim_caps *c) {
  c->mlx5_outer_ip_version = false;
}
static void caps_no_mpls_udp(struct flowrt_sim_caps *c) {
  c->mlx5_mpls_over_udp = false;
}
static void caps_no_mpls_gre(struct flowrt_sim_caps *c) {
  c->mlx5_mpls_over_gre = false;
}
static void caps_mpls_no_ttl(struct flowrt_sim_caps *c) {
  c->mlx5_mpls_fields = FLOWRT_SIM_MPLS_ALL & ~FLOWRT_SIM_MPLS_TTL;
}
static void caps_mpls_no_exp(struct flowrt_sim_caps *c) {
  c->mlx5_mpls_fields = FLOWRT_SIM_MPLS_ALL & ~FLOWRT_SIM_MPLS_EXP;
}
static void caps_mpls_label_only(struct flowrt_sim_caps *c) {
  c->mlx5_mpls_fields = FLOWRT_SIM_MPLS_LABEL;
}
static void caps_no_dont_trap(struct flowrt_sim_caps *c) {
  c->mlx4_dont_trap = false;
}

// --- Bad buffers ----------------------------------------------------------------

// libibverbs (§1.4, §1.5).
static void b_type_ib(struct rule *r) {
  struct ibv_flow_spec_action_drop s;
  INIT(s, 0x22); // IB_FLOW_SPEC_IB: kernel-internal, not in verbs.h
  add(r, &s, sizeof s);
}
static void b_inner_gre(struct rule *r) {
  struct ibv_flow_spec_gre s;
  INIT(s, IBV_FLOW_SPEC_GRE | IBV_FLOW_SPEC_INNER);
  add_eth(r, 0);
  add(r, &s, sizeof s);
}
static void b_inner_vxlan(struct rule *r) {
  struct ibv_flow_spec_tunnel s;
  INIT(s, IBV_FLOW_SPEC_VXLAN_TUNNEL | IBV_FLOW_SPEC_INNER);
  add(r, &s, sizeof s);
}
static void b_inner_tag(struct rule *r) {
  struct ibv_flow_spec_action_tag s;
  INIT(s, IBV_FLOW_SPEC_ACTION_TAG | IBV_FLOW_SPEC_INNER);
  add_eth(r, 0);
  add(r, &s, sizeof s);
}
static void b_ipv4_ext_short(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.size = 28; // a 10-byte filter: no room for ttl and flags
  add(r, &s, sizeof s);
}
static void b_ipv6_pad(struct rule *r) {
  add_eth(r, 0x86DD);
  add_ipv6_bad_pad(r);
}
static void b_vxlan_wide(struct rule *r) {
  add_vxlan_wide(r, 0x01000000);
}
static void b_ipv4_ext_wide(struct rule *r) {
  add_ipv4_ext_wide(r, 0, 0x000000FF);
}
static void b_vxlan_short(struct rule *r) {
  struct ibv_flow_spec_tunnel s;
  INIT(s, IBV_FLOW_SPEC_VXLAN_TUNNEL);
  s.size = 12;
  add(r, &s, sizeof s);
}
static void b_ipv6_size_4(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, 0);
  s.size = 4;
  add(r, &s, sizeof s);
}
static void b_missing_spec(struct rule *r) {
  add_eth(r, 0);
  r->attr.num_of_specs = 2;
}
static void b_size_past_end(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.size = 60;
  add(r, &s, sizeof s);
}
static void b_attr_short(struct rule *r) {
  r->len = 16;
}

// mlx5 provider (§1.6).
static void b_two_counts(struct rule *r) {
  add_eth(r, 0);
  add_count(r);
  add_count(r);
}
static void b_two_counts_after_pad(struct rule *r) {
  add_ipv6_bad_pad(r);
  add_count(r);
  add_count(r);
}

// Kernel core (§2).
static void b_eth_only(struct rule *r) {
  add_eth(r, 0);
}
static void b_flags_reserved(struct rule *r) {
  add_eth(r, 0);
  r->attr.flags = 1u << 3;
}
static void b_dont_trap_all_default(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_ALL_DEFAULT;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_mc_default(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_MC_DEFAULT;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_eleven_specs(struct rule *r) {
  for (int i = 0; i < 11; ++i) {
    add_eth(r, 0);
  }
}
static void b_eleventh_bad_pad(struct rule *r) {
  for (int i = 0; i < 10; ++i) {
    add_eth(r, 0);
  }
  add_ipv6_bad_pad(r);
}
static void b_port_0(struct rule *r) {
  add_eth(r, 0);
  r->attr.port = 0;
}
static void b_port_3(struct rule *r) {
  add_eth(r, 0);
  r->attr.port = kPorts + 1;
}
static void b_flow_label_val(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, 0);
  s.val.flow_label = be32(0x100000);
  s.mask.flow_label = be32(0xFFFFF);
  add(r, &s, sizeof s);
}
static void b_flow_label_mask(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, 0);
  s.val.flow_label = be32(0x12345);
  s.mask.flow_label = 0xFFFFFFFF;
  add(r, &s, sizeof s);
}
static void b_vni_val(struct rule *r) {
  add_vxlan(r, 1u << 24, 0xFFFFFF);
}
static void b_vni_mask(struct rule *r) {
  add_vxlan(r, 42, 0xFFFFFFFF);
}
static void b_flags_reserved_and_pad(struct rule *r) {
  add_ipv6_bad_pad(r);
  r->attr.flags = 1u << 3;
}
static void b_all_default_flow_label(struct rule *r) {
  b_flow_label_val(r);
  r->attr.type = IBV_FLOW_ATTR_ALL_DEFAULT;
}
static void b_flags_reserved_port_0(struct rule *r) {
  b_flags_reserved(r);
  r->attr.port = 0;
}
static void b_prio_16_port_3(struct rule *r) {
  b_port_3(r);
  r->attr.priority = 16;
}

// mlx5 (§3).
static void b_prio_16(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 16;
}
static void b_prio_8(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 8;
}
static void b_prio_16_flag_bit0(struct rule *r) {
  b_prio_16(r);
  r->attr.flags = 1u << 0;
}
static void b_flag_bit0(struct rule *r) {
  add_eth(r, 0);
  r->attr.flags = 1u << 0;
}
static void b_egress_all_default(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_ALL_DEFAULT;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_EGRESS;
}
static void b_egress_mc_default(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_MC_DEFAULT;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_EGRESS;
}
static void b_type_4(struct rule *r) {
  add_eth(r, 0);
  r->attr.type = 4;
}
static void b_sniffer(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
}
static void b_ipv4_ttl(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.val.ttl = 64;
  s.mask.ttl = 0xFF;
  add_eth(r, 0x0800);
  add(r, &s, sizeof s);
}
static void b_ipv4_flags(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.val.flags = 0x2;
  s.mask.flags = 0x2;
  add(r, &s, sizeof s);
}
static void b_ipv6_hop_limit(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, 0);
  s.val.hop_limit = 1;
  s.mask.hop_limit = 0xFF;
  add(r, &s, sizeof s);
}
static void b_esp_seq(struct rule *r) {
  add_esp(r, 0xFFFFFFFF);
}
static void b_gre_flags(struct rule *r) {
  struct ibv_flow_spec_gre s;
  INIT(s, IBV_FLOW_SPEC_GRE);
  s.val.c_ks_res0_ver = be16(0x2000);
  s.mask.c_ks_res0_ver = be16(0x2000);
  add_ipv4_ext(r, 47);
  add(r, &s, sizeof s);
}
static void b_proto_udp_then_tcp(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_tcp(r, 80);
}
static void b_proto_partial_mask_tcp(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.val.proto = 6;
  s.mask.proto = 0x0F;
  add(r, &s, sizeof s);
  add_tcp(r, 80);
}
static void b_next_hdr_tcp_then_udp(struct rule *r) {
  add_eth(r, 0x86DD);
  add_ipv6(r, 6);
  add_udp(r, 53);
}
static void b_proto_udp_then_gre(struct rule *r) {
  add_ipv4_ext(r, 17);
  add_gre(r, 0x6558);
}
static void b_tcp_then_proto_udp(struct rule *r) {
  add_tcp(r, 80);
  add_ipv4_ext(r, 17);
}
static void b_tag_too_big(struct rule *r) {
  add_eth(r, 0);
  add_tag(r, 1u << 24);
}
static void b_mpls_over_udp(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 6635);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0xFFFFF000);
}
static void b_mpls_over_gre(struct rule *r) {
  add_ipv4_ext(r, 47);
  add_gre(r, 0x8847);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0xFFFFF000);
}
static void b_mpls_ttl(struct rule *r) {
  add_eth(r, 0x8847);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0xFFFFF0FF);
}
static void b_inner_mpls_exp(struct rule *r) {
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
  add_vxlan(r, 5, 0xFFFFFF);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS | IBV_FLOW_SPEC_INNER, 0x00000E00);
}
static void b_ethertype_ipv6_with_ipv4(struct rule *r) {
  add_eth(r, 0x86DD);
  add_ipv4_ext(r, 0);
}
static void b_ethertype_partial_mask(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.val.ether_type = be16(0x0800);
  s.mask.ether_type = be16(0x0FFF);
  add(r, &s, sizeof s);
  add_ipv4(r);
}
static void b_ethertype_mpls_no_cap(struct rule *r) {
  add_eth(r, 0x8847);
  add_ipv4(r);
}
static void b_inner_ethertype(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6 | IBV_FLOW_SPEC_INNER, 0);
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
  add_vxlan(r, 5, 0xFFFFFF);
  add_eth_t(r, IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER, 0x0800);
  add(r, &s, sizeof s);
}
static void b_ethertype_before_ttl(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.mask.ttl = 0xFF;
  add_eth(r, 0x86DD);
  add(r, &s, sizeof s);
}
static void b_inner_eth(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
  add_vxlan(r, 5, 0xFFFFFF);
  add_eth_t(r, IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER, 0);
}

// mlx4 (§4).
static void b_egress(struct rule *r) {
  add_eth(r, 0);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_EGRESS;
}
static void b_dont_trap_sniffer(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_prio_1(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 1;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_two_specs(struct rule *r) {
  add_eth(r, 0);
  add_ipv4(r);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_ipv4(struct rule *r) {
  add_ipv4(r);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_full_mac(struct rule *r) {
  add_eth(r, 0);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_inner_eth(struct rule *r) {
  add_eth_t(r, IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER, 0);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_prio_5000(struct rule *r) {
  r->attr.priority = 5000;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_dont_trap_plain(struct rule *r) {
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void b_prio_4096(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 4096;
}
static void b_ipv6(struct rule *r) {
  add_eth(r, 0);
  add_ipv6(r, 0);
}
static void b_inner_eth_plain(struct rule *r) {
  add_eth_t(r, IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER, 0);
}
static void b_tag(struct rule *r) {
  add_eth(r, 0);
  add_tag(r, 1);
}
static void b_drop(struct rule *r) {
  add_eth(r, 0);
  add_drop(r);
}
static void b_ipv4_proto(struct rule *r) {
  add_eth(r, 0);
  add_ipv4_ext(r, 17);
  add_udp(r, 53);
}
static void b_ipv4_tos(struct rule *r) {
  struct ibv_flow_spec_ipv4_ext s;
  ipv4_ext(&s, IBV_FLOW_SPEC_IPV4_EXT, 0);
  s.val.tos = 0x10;
  s.mask.tos = 0xFC;
  add(r, &s, sizeof s);
}
static void b_vxlan(struct rule *r) {
  add_eth(r, 0);
  add_vxlan(r, 5, 0xFFFFFF);
}
static void b_esp(struct rule *r) {
  add_esp(r, 0);
}
static void b_mpls(struct rule *r) {
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0xFFFFF000);
}
static void b_sniffer_ipv6(struct rule *r) {
  add_ipv6(r, 0);
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
}

struct bad_case {
  const char *name;
  void (*build)(struct rule *r);
  enum flowrt_sim_profile profile;
  void (*caps)(struct flowrt_sim_caps *caps);
  int not_raw_qp;
  int expected;
  const char *section; // must appear in the reason
};

#define MLX5 FLOWRT_SIM_MLX5
#define MLX4 FLOWRT_SIM_MLX4

static const struct bad_case kBad[] = {
    // libibverbs conversion.
    {"spec type 0x22 (kernel IB)", b_type_ib, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"spec type 0x22 on mlx4", b_type_ib, MLX4, NULL, 0, EINVAL, "§1.5"},
    {"INNER GRE", b_inner_gre, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"INNER VXLAN_TUNNEL", b_inner_vxlan, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"INNER ACTION_TAG", b_inner_tag, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"IPV4_EXT of size 28 (filter below 12)", b_ipv4_ext_short, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"IPV6 of size 4", b_ipv6_size_4, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"VXLAN_TUNNEL of size 12 (filter below 4)", b_vxlan_short, MLX5, NULL, 0, EINVAL, "§1.5"},
    {"IPV6 mask pad byte set", b_ipv6_pad, MLX5, NULL, 0, EOPNOTSUPP, "§1.5"},
    {"IPV6 mask pad byte set on mlx4 (before mlx4's no-IPv6)", b_ipv6_pad, MLX4, NULL, 0,
     EOPNOTSUPP, "§1.5"},
    {"wide VXLAN_TUNNEL with extra mask bytes", b_vxlan_wide, MLX5, NULL, 0, EOPNOTSUPP, "§1.5"},
    {"wide IPV4_EXT with extra mask bytes", b_ipv4_ext_wide, MLX5, NULL, 0, EOPNOTSUPP, "§1.5"},
    {"num_of_specs 2 with one spec", b_missing_spec, MLX5, NULL, 0, EINVAL, "§1.4"},
    {"spec size runs past the buffer", b_size_past_end, MLX4, NULL, 0, EINVAL, "§1.4"},
    {"buffer shorter than ibv_flow_attr", b_attr_short, MLX5, NULL, 0, EINVAL, "§1.4"},
    // mlx5 provider.
    {"two ACTION_COUNT", b_two_counts, MLX5, NULL, 0, EINVAL, "§1.6"},
    {"two ACTION_COUNT after a bad IPV6 pad: the provider scans first", b_two_counts_after_pad,
     MLX5, NULL, 0, EINVAL, "§1.6"},
    {"the same on mlx4: libibverbs' EOPNOTSUPP", b_two_counts_after_pad, MLX4, NULL, 0, EOPNOTSUPP,
     "§1.5"},
    // Kernel core.
    {"flags 1<<3", b_flags_reserved, MLX5, NULL, 0, EINVAL, "§2 check 3"},
    {"flags 1<<3 on mlx4 (core EINVAL, not mlx4 EOPNOTSUPP)", b_flags_reserved, MLX4, NULL, 0,
     EINVAL, "§2 check 3"},
    {"DONT_TRAP on ALL_DEFAULT", b_dont_trap_all_default, MLX5, NULL, 0, EINVAL, "§2 check 4"},
    {"DONT_TRAP on MC_DEFAULT on mlx4", b_dont_trap_mc_default, MLX4, NULL, 0, EINVAL,
     "§2 check 4"},
    {"11 specs", b_eleven_specs, MLX5, NULL, 0, EINVAL, "§2 check 5"},
    {"11 specs, the 11th with a bad IPV6 pad: libibverbs converts all first", b_eleventh_bad_pad,
     MLX5, NULL, 0, EOPNOTSUPP, "§1.5"},
    {"port 0", b_port_0, MLX5, NULL, 0, EINVAL, "§2 check 8"},
    {"port above the device's ports", b_port_3, MLX4, NULL, 0, EINVAL, "§2 check 8"},
    {"QP neither UD nor RAW_PACKET", b_eth_only, MLX5, NULL, 1, EINVAL, "§2 check 9"},
    {"IPv6 flow_label value of 21 bits", b_flow_label_val, MLX5, NULL, 0, EINVAL, "§2"},
    {"IPv6 flow_label mask of 32 bits", b_flow_label_mask, MLX5, NULL, 0, EINVAL, "§2"},
    {"VXLAN VNI value of 25 bits", b_vni_val, MLX5, NULL, 0, EINVAL, "§2"},
    {"VXLAN VNI mask of 32 bits", b_vni_mask, MLX5, NULL, 0, EINVAL, "§2"},
    {"flags 1<<3 with a bad IPV6 pad: libibverbs first", b_flags_reserved_and_pad, MLX5, NULL, 0,
     EOPNOTSUPP, "§1.5"},
    {"ALL_DEFAULT still has its specs checked by the core", b_all_default_flow_label, MLX5, NULL, 0,
     EINVAL, "§2"},
    {"flags 1<<3 and port 0: flags first", b_flags_reserved_port_0, MLX5, NULL, 0, EINVAL,
     "§2 check 3"},
    {"priority 16 and a bad port: the core before mlx5", b_prio_16_port_3, MLX5, NULL, 0, EINVAL,
     "§2 check 8"},
    // mlx5.
    {"priority 16", b_prio_16, MLX5, NULL, 0, ENOMEM, "§3.1"},
    {"priority 8 with 8 priorities", b_prio_8, MLX5, caps_8_prios, 0, ENOMEM, "§3.1"},
    {"priority 16 and flag bit 0: priority first", b_prio_16_flag_bit0, MLX5, NULL, 0, ENOMEM,
     "§3.1"},
    {"flag bit 0", b_flag_bit0, MLX5, NULL, 0, EINVAL, "§3.1"},
    {"EGRESS on ALL_DEFAULT", b_egress_all_default, MLX5, NULL, 0, EINVAL, "§3.1"},
    {"EGRESS on MC_DEFAULT", b_egress_mc_default, MLX5, NULL, 0, EINVAL, "§3.1"},
    {"attr type 4", b_type_4, MLX5, NULL, 0, EOPNOTSUPP, "§3.1"},
    {"SNIFFER without the sniffer cap", b_sniffer, MLX5, caps_no_sniffer, 0, EOPNOTSUPP, "§3.5"},
    {"IPv4 ttl mask", b_ipv4_ttl, MLX5, NULL, 0, EOPNOTSUPP, "§3.2"},
    {"IPv4 flags mask", b_ipv4_flags, MLX5, NULL, 0, EOPNOTSUPP, "§3.2"},
    {"IPv6 hop_limit mask", b_ipv6_hop_limit, MLX5, NULL, 0, EOPNOTSUPP, "§3.2"},
    {"ESP seq mask", b_esp_seq, MLX5, NULL, 0, EOPNOTSUPP, "§3.2"},
    {"GRE c_ks_res0_ver mask", b_gre_flags, MLX5, NULL, 0, EOPNOTSUPP, "§3.2"},
    {"IPV4_EXT proto 17 then TCP", b_proto_udp_then_tcp, MLX5, NULL, 0, EINVAL, "§3.2"},
    {"IPV4_EXT proto 6 with mask 0x0f then TCP", b_proto_partial_mask_tcp, MLX5, NULL, 0, EINVAL,
     "§3.2"},
    {"IPV6 next_hdr 6 then UDP", b_next_hdr_tcp_then_udp, MLX5, NULL, 0, EINVAL, "§3.2"},
    {"IPV4_EXT proto 17 then GRE", b_proto_udp_then_gre, MLX5, NULL, 0, EINVAL, "§3.2"},
    {"TCP then IPV4_EXT proto 17", b_tcp_then_proto_udp, MLX5, NULL, 0, EINVAL, "§3.2"},
    {"ACTION_TAG 1<<24", b_tag_too_big, MLX5, NULL, 0, EINVAL, "§3.2"},
    {"MPLS after UDP without mpls_over_udp", b_mpls_over_udp, MLX5, caps_no_mpls_udp, 0, EOPNOTSUPP,
     "§3.3"},
    {"MPLS after GRE without mpls_over_gre", b_mpls_over_gre, MLX5, caps_no_mpls_gre, 0, EOPNOTSUPP,
     "§3.3"},
    {"MPLS ttl mask without the TTL cap", b_mpls_ttl, MLX5, caps_mpls_no_ttl, 0, EOPNOTSUPP,
     "§3.2"},
    {"INNER MPLS exp mask without the EXP cap", b_inner_mpls_exp, MLX5, caps_mpls_no_exp, 0,
     EOPNOTSUPP, "§3.2"},
    {"ether_type 0x86DD with IPV4_EXT", b_ethertype_ipv6_with_ipv4, MLX5, NULL, 0, EINVAL, "§3.3"},
    {"ether_type mask 0x0fff with IPV4", b_ethertype_partial_mask, MLX5, NULL, 0, EINVAL, "§3.3"},
    {"ether_type 0x8847 with IPV4 without ip_version", b_ethertype_mpls_no_cap, MLX5,
     caps_no_ip_version, 0, EINVAL, "§3.3"},
    {"inner ether_type 0x0800 with INNER IPV6", b_inner_ethertype, MLX5, NULL, 0, EINVAL, "§3.3"},
    {"ether_type mismatch and ttl mask: ethertype first", b_ethertype_before_ttl, MLX5, NULL, 0,
     EINVAL, "§3.3"},
    {"INNER ETH without inner-header matching", b_inner_eth, MLX5, caps_no_inner, 0, EOPNOTSUPP,
     "§3.3"},
    // mlx4.
    {"flag bit 0 on mlx4", b_flag_bit0, MLX4, NULL, 0, EOPNOTSUPP, "§4.1"},
    {"EGRESS on mlx4", b_egress, MLX4, NULL, 0, EOPNOTSUPP, "§4.1"},
    {"DONT_TRAP on SNIFFER on mlx4", b_dont_trap_sniffer, MLX4, NULL, 0, EOPNOTSUPP, "§4.1"},
    {"DONT_TRAP at priority 1 on mlx4", b_dont_trap_prio_1, MLX4, NULL, 0, EOPNOTSUPP, "§4.2"},
    {"DONT_TRAP with two specs on mlx4", b_dont_trap_two_specs, MLX4, NULL, 0, EOPNOTSUPP, "§4.2"},
    {"DONT_TRAP with an IPV4 spec on mlx4", b_dont_trap_ipv4, MLX4, NULL, 0, EINVAL, "§4.2"},
    {"DONT_TRAP with a full dst_mac mask on mlx4", b_dont_trap_full_mac, MLX4, NULL, 0, EINVAL,
     "§4.2"},
    {"DONT_TRAP with an INNER ETH spec on mlx4", b_dont_trap_inner_eth, MLX4, NULL, 0, EINVAL,
     "§4.2"},
    {"DONT_TRAP without DMFS_UC_MC_SNIFFER", b_dont_trap_plain, MLX4, caps_no_dont_trap, 0,
     EOPNOTSUPP, "§4.2"},
    {"DONT_TRAP at priority 5000: DONT_TRAP before priority", b_dont_trap_prio_5000, MLX4, NULL, 0,
     EOPNOTSUPP, "§4.2"},
    {"priority 4096 on mlx4", b_prio_4096, MLX4, NULL, 0, EINVAL, "§4.1"},
    {"attr type 4 on mlx4", b_type_4, MLX4, NULL, 0, EINVAL, "§4.1"},
    {"IPV6 on mlx4", b_ipv6, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"INNER ETH on mlx4", b_inner_eth_plain, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"ACTION_TAG on mlx4", b_tag, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"ACTION_DROP on mlx4", b_drop, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"ACTION_COUNT on mlx4", b_two_counts, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"IPV4_EXT proto mask on mlx4", b_ipv4_proto, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"IPV4_EXT tos mask on mlx4", b_ipv4_tos, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"VXLAN_TUNNEL on mlx4", b_vxlan, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"ESP on mlx4", b_esp, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"MPLS on mlx4", b_mpls, MLX4, NULL, 0, EINVAL, "§4.3"},
    {"SNIFFER specs are still parsed on mlx4", b_sniffer_ipv6, MLX4, NULL, 0, EINVAL, "§4.3"},
};

static void test_bad_buffers(void) {
  size_t count = sizeof kBad / sizeof kBad[0];
  CHECKF(count >= 40, "%zu bad buffers", count);
  for (size_t i = 0; i < count; ++i) {
    const struct bad_case *c = &kBad[i];
    struct flowrt_sim_caps caps = flowrt_sim_default_caps();
    if (c->caps != NULL) {
      c->caps(&caps);
    }
    struct rule r;
    begin(&r);
    c->build(&r);
    finish(&r);
    char why[256];
    int err = run(r.bytes, r.len, c->profile, &caps, !c->not_raw_qp, why, sizeof why);
    CHECKF(err == c->expected, "%s on %s: got %s, expected %s; reason: %s", c->name,
           c->profile == MLX5 ? "mlx5" : "mlx4", errno_name(err), errno_name(c->expected), why);
    CHECKF(strstr(why, c->section) != NULL, "%s: reason '%s' does not name %s", c->name, why,
           c->section);
  }
}

// --- Valid buffers ------------------------------------------------------------

static void g_eth_ipv4_udp(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 4791);
}
static void g_vxlan_inner(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
  add_vxlan(r, 42, 0xFFFFFF);
  add_eth_t(r, IBV_FLOW_SPEC_ETH | IBV_FLOW_SPEC_INNER, 0x0800);
  add_ipv4_ext_t(r, IBV_FLOW_SPEC_IPV4_EXT | IBV_FLOW_SPEC_INNER, 6);
  add_l4_t(r, IBV_FLOW_SPEC_TCP | IBV_FLOW_SPEC_INNER, 443);
}
static void g_mpls_over_udp(struct rule *r) {
  b_mpls_over_udp(r);
}
static void g_mpls_over_gre(struct rule *r) {
  add_eth(r, 0x0800);
  b_mpls_over_gre(r);
}
static void g_dont_trap(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 3;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void g_egress(struct rule *r) {
  add_eth(r, 0);
  add_ipv4(r);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_EGRESS;
}
static void g_tag_count(struct rule *r) {
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 0);
  add_tag(r, 0xABC);
  add_count(r);
}
static void g_drop_count(struct rule *r) {
  add_eth(r, 0);
  add_drop(r);
  add_count(r);
}
static void g_actions_first(struct rule *r) {
  add_tag(r, 0xFFFFFF);
  add_drop(r);
  add_eth(r, 0x0800);
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
}
static void g_mpls_ethertype_ip(struct rule *r) {
  b_ethertype_mpls_no_cap(r);
}
static void g_all_default_ignored_specs(struct rule *r) {
  b_ipv4_ttl(r);
  r->attr.type = IBV_FLOW_ATTR_ALL_DEFAULT;
}
static void g_comp_mask_and_size(struct rule *r) {
  add_eth(r, 0);
  r->attr.comp_mask = 0xFFFFFFFF;
  r->attr.size = 3;
}
static void g_ipv4_ext_wide(struct rule *r) {
  add_ipv4_ext_wide(r, 17, 0);
}
static void g_vxlan_wide(struct rule *r) {
  add_vxlan_wide(r, 0);
}
static void g_same_proto(struct rule *r) {
  add_ipv4_ext(r, 6);
  add_tcp(r, 22);
}
static void g_partial_ethertype(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.val.ether_type = be16(0x0800);
  s.mask.ether_type = be16(0xFF00);
  add(r, &s, sizeof s);
}
static void g_levels(struct rule *r) {
  add_ipv4_ext(r, 17);
  add_udp(r, 4789);
  add_vxlan(r, 1, 0xFFFFFF);
  add_l4_t(r, IBV_FLOW_SPEC_TCP | IBV_FLOW_SPEC_INNER, 80);
}
static void g_mpls_zero_mask(struct rule *r) {
  add_udp(r, 6635);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0);
}
static void g_eth_size_44(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.size = 44; // libibverbs uses it only to find the next spec (§1.5)
  memcpy(s.val.dst_mac, kMac, 6);
  memset(s.mask.dst_mac, 0xFF, 6);
  add(r, &s, sizeof s);
  add_bytes(r, "\0\0\0\0", 4);
  add_udp(r, 53);
}
static void g_sniffer_dont_trap(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void g_prio_7(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 7;
}
static void g_esp(struct rule *r) {
  add_ipv4_ext(r, 50);
  add_esp(r, 0);
}
static void g_mpls_label(struct rule *r) {
  add_eth(r, 0x8847);
  add_mpls_t(r, IBV_FLOW_SPEC_MPLS, 0xFFFFF000);
}
static void g_ipv6_udp(struct rule *r) {
  struct ibv_flow_spec_ipv6 s;
  ipv6(&s, IBV_FLOW_SPEC_IPV6, 17);
  s.val.flow_label = be32(0xFFFFF);
  s.mask.flow_label = be32(0xFFFFF);
  add_eth(r, 0x86DD);
  add(r, &s, sizeof s);
  add_udp(r, 53);
}
static void g_egress_sniffer(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_EGRESS;
}
static void g_eth_ipv4_tcp(struct rule *r) {
  add_eth(r, 0);
  add_ipv4(r);
  add_tcp(r, 80);
}
static void g_eth_ipv4_ext_udp(struct rule *r) {
  add_eth(r, 0);
  add_ipv4_ext(r, 0);
  add_udp(r, 53);
}
static void g_dont_trap_mc(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.val.dst_mac[0] = 0x01;
  s.mask.dst_mac[0] = 0x01;
  add(r, &s, sizeof s);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void g_dont_trap_zero_mask(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  s.val.vlan_tag = be16(5);
  s.mask.vlan_tag = be16(0x0FFF);
  add(r, &s, sizeof s);
  r->attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
}
static void g_sniffer_eth(struct rule *r) {
  add_eth(r, 0);
  r->attr.type = IBV_FLOW_ATTR_SNIFFER;
}
static void g_prio_4095(struct rule *r) {
  add_eth(r, 0);
  r->attr.priority = 4095;
}
static void g_partial_ip_mask(struct rule *r) {
  struct ibv_flow_spec_ipv4 s;
  INIT(s, IBV_FLOW_SPEC_IPV4);
  s.val.dst_ip = be32(0x0A000100);
  s.mask.dst_ip = be32(0xFFFFFF00);
  add_eth(r, 0);
  add(r, &s, sizeof s);
}
static void g_eth_src_mac(struct rule *r) {
  struct ibv_flow_spec_eth s;
  INIT(s, IBV_FLOW_SPEC_ETH);
  memset(s.mask.src_mac, 0xFF, 6);
  s.val.ether_type = be16(0x0800);
  s.mask.ether_type = 0xFFFF;
  add(r, &s, sizeof s);
}
static void g_mc_default(struct rule *r) {
  r->attr.type = IBV_FLOW_ATTR_MC_DEFAULT;
}

struct good_case {
  const char *name;
  void (*build)(struct rule *r);
  enum flowrt_sim_profile profile;
  void (*caps)(struct flowrt_sim_caps *caps);
};

static const struct good_case kGood[] = {
    {"ETH + IPV4_EXT + UDP", g_eth_ipv4_udp, MLX5, NULL},
    {"VXLAN with inner ETH, IPV4_EXT, TCP", g_vxlan_inner, MLX5, NULL},
    {"MPLS over UDP", g_mpls_over_udp, MLX5, NULL},
    {"MPLS over GRE", g_mpls_over_gre, MLX5, NULL},
    {"DONT_TRAP at priority 3", g_dont_trap, MLX5, NULL},
    {"EGRESS", g_egress, MLX5, NULL},
    {"TAG + COUNT", g_tag_count, MLX5, NULL},
    {"DROP + COUNT", g_drop_count, MLX5, NULL},
    {"actions before the match specs (DPDK order)", g_actions_first, MLX5, NULL},
    {"ether_type 0x8847 with IPV4 and the ip_version cap", g_mpls_ethertype_ip, MLX5, NULL},
    {"ALL_DEFAULT: mlx5 ignores the specs", g_all_default_ignored_specs, MLX5, NULL},
    {"non-zero comp_mask and a wrong attr size", g_comp_mask_and_size, MLX5, NULL},
    {"IPV4_EXT of size 40 with zero extra mask bytes", g_ipv4_ext_wide, MLX5, NULL},
    {"VXLAN_TUNNEL of size 24 with zero extra mask bytes", g_vxlan_wide, MLX5, NULL},
    {"IPV4_EXT proto 6 then TCP", g_same_proto, MLX5, NULL},
    {"partial ether_type mask without an IP spec", g_partial_ethertype, MLX5, NULL},
    {"outer proto 17 and an INNER TCP", g_levels, MLX5, NULL},
    {"MPLS with a zero mask needs no cap", g_mpls_zero_mask, MLX5, caps_no_mpls_udp},
    {"ETH of size 44: the size only advances", g_eth_size_44, MLX5, NULL},
    {"SNIFFER with DONT_TRAP", g_sniffer_dont_trap, MLX5, NULL},
    {"SNIFFER with EGRESS", g_egress_sniffer, MLX5, NULL},
    {"priority 7 with 8 priorities", g_prio_7, MLX5, caps_8_prios},
    {"ESP SPI", g_esp, MLX5, NULL},
    {"MPLS label only, label cap only", g_mpls_label, MLX5, caps_mpls_label_only},
    {"IPV6 with a 20-bit flow label + UDP", g_ipv6_udp, MLX5, NULL},
    {"INNER ETH is fine with inner-header matching", b_inner_eth, MLX5, NULL},
    {"MPLS over UDP's ttl without the TTL cap is fine when not matched", g_mpls_over_udp, MLX5,
     caps_mpls_label_only},
    {"ETH + IPV4 + TCP on mlx4", g_eth_ipv4_tcp, MLX4, NULL},
    {"ETH + IPV4_EXT without proto/tos + UDP on mlx4", g_eth_ipv4_ext_udp, MLX4, NULL},
    {"DONT_TRAP without specs on mlx4", b_dont_trap_plain, MLX4, NULL},
    {"DONT_TRAP with the multicast dst_mac mask on mlx4", g_dont_trap_mc, MLX4, NULL},
    {"DONT_TRAP with a zero dst_mac mask on mlx4", g_dont_trap_zero_mask, MLX4, NULL},
    {"SNIFFER with an ETH spec on mlx4", g_sniffer_eth, MLX4, NULL},
    {"priority 4095 on mlx4", g_prio_4095, MLX4, NULL},
    {"a /24 IPv4 mask on mlx4 (left to firmware)", g_partial_ip_mask, MLX4, NULL},
    {"src_mac and ether_type masks on mlx4 (ignored by mlx4)", g_eth_src_mac, MLX4, NULL},
    {"MC_DEFAULT on mlx4", g_mc_default, MLX4, NULL},
    {"IPV6 on mlx5 with the same specs mlx4 refuses", b_ipv6, MLX5, NULL},
};

static void test_good_buffers(void) {
  for (size_t i = 0; i < sizeof kGood / sizeof kGood[0]; ++i) {
    const struct good_case *c = &kGood[i];
    struct flowrt_sim_caps caps = flowrt_sim_default_caps();
    if (c->caps != NULL) {
      c->caps(&caps);
    }
    struct rule r;
    begin(&r);
    c->build(&r);
    finish(&r);
    char why[256];
    int err = run(r.bytes, r.len, c->profile, &caps, 1, why, sizeof why);
    CHECKF(err == 0, "%s on %s: got %s; reason: %s", c->name, c->profile == MLX5 ? "mlx5" : "mlx4",
           errno_name(err), why);
    CHECKF(err != 0 || strcmp(why, "accepted") == 0, "%s: reason '%s'", c->name, why);
  }
}

// --- §5.6 reference buffers ------------------------------------------------------

static const unsigned char kEx1[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x54, 0x00, 0x00, 0x00, 0x02, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x28, 0x00, 0x66, 0x11,
    0x22, 0x33, 0x44, 0x55, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x06, 0xc8,
    0x86, 0x0b, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00};

static const unsigned char kEx3[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0xff, 0x0f, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x02, 0xc9, 0x11,
    0x22, 0x33, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0xff, 0x00, 0x00};

static const unsigned char kEx4[] = {
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x02, 0x01,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00};

static const unsigned char kEx5AllDefault[] = {0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                               0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

static const unsigned char kEx5Sniffer[] = {0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                                            0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

/// EX1 built from the structs; `network_order` writes the IPv4 source with htonl.
static void build_ex1(struct rule *r, int network_order) {
  struct ibv_flow_spec_eth eth;
  INIT(eth, IBV_FLOW_SPEC_ETH);
  static const uint8_t dst[6] = {0x66, 0x11, 0x22, 0x33, 0x44, 0x55};
  memcpy(eth.val.dst_mac, dst, 6);
  memset(eth.mask.dst_mac, 0xFF, 6);
  memset(eth.mask.src_mac, 0xFF, 6);
  struct ibv_flow_spec_ipv4 ip;
  INIT(ip, IBV_FLOW_SPEC_IPV4);
  ip.val.src_ip = network_order ? be32(0x0B86C806) : 0x0B86C806;
  ip.mask.src_ip = 0xFFFFFFFF;
  begin(r);
  add(r, &eth, sizeof eth);
  add(r, &ip, sizeof ip);
  r->attr.size = (uint16_t)r->len;
  finish(r);
}

static void expect(const unsigned char *bytes, size_t len, enum flowrt_sim_profile profile,
                   const struct flowrt_sim_caps *caps, int expected, const char *what) {
  char why[256];
  int err = run(bytes, len, profile, caps, 1, why, sizeof why);
  CHECKF(err == expected, "%s on %s: got %s, expected %s; reason: %s", what,
         profile == MLX5 ? "mlx5" : "mlx4", errno_name(err), errno_name(expected), why);
}

static void test_reference_buffers(void) {
  struct flowrt_sim_caps caps = flowrt_sim_default_caps();
  struct rule r;

  // EX1 as printed (host-order IP, attr size 84) and with the IP in network order.
  build_ex1(&r, 0);
  if (host_is_little_endian()) {
    CHECK(r.len == sizeof kEx1 && memcmp(r.bytes, kEx1, sizeof kEx1) == 0);
  }
  expect(kEx1, sizeof kEx1, MLX5, &caps, 0, "EX1");
  expect(kEx1, sizeof kEx1, MLX4, &caps, 0, "EX1");
  build_ex1(&r, 1);
  CHECK(r.bytes[68] == 0x0B && r.bytes[71] == 0x06);
  expect(r.bytes, r.len, MLX5, &caps, 0, "EX1, network order");
  expect(r.bytes, r.len, MLX4, &caps, 0, "EX1, network order");

  // EX3: mlx4's internal MAC + VLAN rule at priority 4095, attr size 20.
  expect(kEx3, sizeof kEx3, MLX4, &caps, 0, "EX3");
  expect(kEx3, sizeof kEx3, MLX5, &caps, ENOMEM, "EX3 (priority 4095)");

  // EX4: DPDK mlx5's priority probe, attr size 0; 15 fits 16 priorities, not 8.
  expect(kEx4, sizeof kEx4, MLX5, &caps, 0, "EX4");
  struct flowrt_sim_caps eight = caps;
  eight.mlx5_num_prios = 8;
  expect(kEx4, sizeof kEx4, MLX5, &eight, ENOMEM, "EX4 with 8 priorities");
  expect(kEx4, sizeof kEx4, MLX4, &caps, EINVAL, "EX4 (DROP)");

  // EX5: perftest's promiscuous and sniffer rules, attr size 0.
  expect(kEx5AllDefault, sizeof kEx5AllDefault, MLX5, &caps, 0, "EX5 ALL_DEFAULT");
  expect(kEx5AllDefault, sizeof kEx5AllDefault, MLX4, &caps, 0, "EX5 ALL_DEFAULT");
  expect(kEx5Sniffer, sizeof kEx5Sniffer, MLX5, &caps, 0, "EX5 SNIFFER");
  expect(kEx5Sniffer, sizeof kEx5Sniffer, MLX4, &caps, 0, "EX5 SNIFFER");
  struct flowrt_sim_caps no_sniffer = caps;
  no_sniffer.mlx5_sniffer = false;
  expect(kEx5Sniffer, sizeof kEx5Sniffer, MLX5, &no_sniffer, EOPNOTSUPP, "EX5 SNIFFER, no cap");
}

// --- Truncations, trailing bytes, reasons ------------------------------------------

static void check_truncations(void (*build)(struct rule *r), enum flowrt_sim_profile profile,
                              const char *what) {
  struct rule r;
  begin(&r);
  build(&r);
  finish(&r);
  expect(r.bytes, r.len, profile, NULL, 0, what);
  for (size_t len = 0; len < r.len; ++len) {
    char why[256];
    int err = run(r.bytes, len, profile, NULL, 1, why, sizeof why);
    CHECKF(err == EINVAL, "%s cut to %zu of %zu bytes: got %s; reason: %s", what, len, r.len,
           errno_name(err), why);
  }
}

static void test_truncations(void) {
  check_truncations(g_vxlan_inner, MLX5, "VXLAN + inner");
  check_truncations(g_actions_first, MLX5, "actions first");
  check_truncations(g_eth_ipv4_tcp, MLX4, "ETH + IPV4 + TCP");
  check_truncations(g_ipv6_udp, MLX5, "ETH + IPV6 + UDP");
}

static void test_trailing_bytes_and_reasons(void) {
  struct rule r;
  begin(&r);
  g_eth_ipv4_udp(&r);
  finish(&r);
  size_t spec_end = r.len;
  add_bytes(&r, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  // libibverbs never reads past the last spec, so bytes there cannot make it fail (§1.4).
  expect(r.bytes, r.len, MLX5, NULL, 0, "8 trailing bytes");
  struct flowrt_sim_rule rule;
  CHECK(flowrt_sim_decode(r.bytes, r.len, &rule) == 0);
  CHECK(rule.length == spec_end);

  // A NULL or short reason buffer is safe; the reason is cut, not overrun.
  CHECK(flowrt_sim_validate(kEx4, sizeof kEx4, FLOWRT_SIM_MLX4, NULL, 1, 1, NULL, 0) == EINVAL);
  char small[8];
  memset(small, 'x', sizeof small);
  CHECK(flowrt_sim_validate(kEx4, sizeof kEx4, FLOWRT_SIM_MLX4, NULL, 1, 1, small, sizeof small) ==
        EINVAL);
  CHECK(memchr(small, '\0', sizeof small) == small + sizeof small - 1);
  // One port: port 1 is fine and port 2 is not.
  CHECK(flowrt_sim_validate(kEx1, sizeof kEx1, FLOWRT_SIM_MLX5, NULL, 1, 1, NULL, 0) == 0);
  CHECK(flowrt_sim_validate(kEx1, sizeof kEx1, FLOWRT_SIM_MLX5, NULL, 1, 0, NULL, 0) == EINVAL);
}

// --- Decode --------------------------------------------------------------------

static void test_decode(void) {
  struct rule r;
  begin(&r);
  add_eth(&r, 0x0800);
  add_ipv4_ext_wide(&r, 17, 0);
  add_udp(&r, 4789);
  add_tag(&r, 0xABCDEF);
  add_ipv6(&r, 6);
  r.attr.comp_mask = 7;
  r.attr.size = 0;
  r.attr.priority = 3;
  r.attr.port = 2;
  r.attr.flags = IBV_FLOW_ATTR_FLAGS_DONT_TRAP;
  finish(&r);
  expect(r.bytes, r.len, MLX5, NULL, EINVAL, "decode sample (UDP then IPv6 next_hdr 6)");

  unsigned char *block = malloc(r.len + 1);
  CHECK(block != NULL);
  if (block == NULL) {
    return;
  }
  memcpy(block + 1, r.bytes, r.len);
  struct flowrt_sim_rule d;
  CHECK(flowrt_sim_decode(block + 1, r.len, &d) == 0);
  free(block);

  CHECK(d.type == IBV_FLOW_ATTR_NORMAL);
  CHECK(d.priority == 3);
  CHECK(d.port == 2);
  CHECK(d.flags == IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  CHECK(d.num_specs == 5);
  CHECK(d.length == r.len);

  const struct flowrt_sim_spec *eth = &d.specs[0];
  CHECK(eth->type == IBV_FLOW_SPEC_ETH && eth->size == 40 && eth->filter_size == 16);
  CHECK(memcmp(eth->val, kMac, 6) == 0);
  CHECK(eth->val[12] == 0x08 && eth->val[13] == 0x00);
  CHECK(eth->mask[0] == 0xFF && eth->mask[5] == 0xFF && eth->mask[6] == 0x00);
  CHECK(eth->mask[12] == 0xFF && eth->mask[13] == 0xFF && eth->mask[14] == 0x00);

  // The 40-byte IPV4_EXT: the mask starts 16 bytes after val, not 12.
  const struct flowrt_sim_spec *ip = &d.specs[1];
  CHECK(ip->type == IBV_FLOW_SPEC_IPV4_EXT && ip->size == 40 && ip->filter_size == 12);
  CHECK(ip->val[0] == 10 && ip->val[3] == 1 && ip->val[4] == 10 && ip->val[7] == 2);
  CHECK(ip->val[8] == 17 && ip->mask[8] == 0xFF);
  CHECK(ip->mask[0] == 0xFF && ip->mask[7] == 0xFF && ip->mask[9] == 0 && ip->mask[12] == 0);

  const struct flowrt_sim_spec *udp = &d.specs[2];
  CHECK(udp->type == IBV_FLOW_SPEC_UDP && udp->size == 16 && udp->filter_size == 4);
  CHECK(udp->val[0] == 0x12 && udp->val[1] == 0xB5 && udp->mask[0] == 0xFF && udp->mask[2] == 0);

  const struct flowrt_sim_spec *tag = &d.specs[3];
  CHECK(tag->type == IBV_FLOW_SPEC_ACTION_TAG && tag->size == 12 && tag->filter_size == 0);
  CHECK(tag->tag_id == 0xABCDEF);

  // IPv6: 39 bytes are passed on; the pad byte stays zero.
  const struct flowrt_sim_spec *v6 = &d.specs[4];
  CHECK(v6->type == IBV_FLOW_SPEC_IPV6 && v6->size == 88 && v6->filter_size == 39);
  CHECK(v6->val[16] == 0xB0 && v6->mask[31] == 0xFF && v6->val[36] == 6 && v6->mask[36] == 0xFF);
  CHECK(v6->mask[39] == 0);

  // An INNER spec keeps its flag; more than FLOWRT_SIM_MAX_SPECS specs do not decode.
  begin(&r);
  g_vxlan_inner(&r);
  finish(&r);
  CHECK(flowrt_sim_decode(r.bytes, r.len, &d) == 0);
  CHECK(d.specs[6].type == (IBV_FLOW_SPEC_TCP | IBV_FLOW_SPEC_INNER));
  CHECK(d.specs[6].val[0] == 0x01 && d.specs[6].val[1] == 0xBB);
  begin(&r);
  b_eleven_specs(&r);
  finish(&r);
  CHECK(flowrt_sim_decode(r.bytes, r.len, &d) == EINVAL);
  begin(&r);
  b_ipv6_pad(&r);
  finish(&r);
  CHECK(flowrt_sim_decode(r.bytes, r.len, &d) == EOPNOTSUPP);
}

int main(void) {
  test_bad_buffers();
  test_good_buffers();
  test_reference_buffers();
  test_truncations();
  test_trailing_bytes_and_reasons();
  test_decode();
  printf("%u checks, %u failures (%zu bad buffers, %zu valid buffers)\n", checks, failures,
         sizeof kBad / sizeof kBad[0], sizeof kGood / sizeof kGood[0]);
  return failures == 0 ? 0 : 1;
}
