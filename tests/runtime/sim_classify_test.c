// Tests of flowrt_sim_receive(): frames built by hand, rules installed through the real
// libibverbs ibv_create_flow(), counters read back through ibv_read_counters().
//
// Plain C, no framework: prints each failed check and exits non-zero. Run under ASan.
#include "flowrt/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sim_rules.h"

// --- Rules ------------------------------------------------------------------------------

static const uint8_t kMacMc[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};

// ETH: dst exact when `dst` is given; ether_type exact when non-zero; vlan under `vlan_mask`.
static void add_eth(struct rule *r, uint32_t inner, const uint8_t *dst, uint16_t ether_type,
                    uint16_t vlan, uint16_t vlan_mask) {
  struct ibv_flow_spec_eth s;
  memset(&s, 0, sizeof s);
  s.type = (enum ibv_flow_spec_type)(IBV_FLOW_SPEC_ETH | inner);
  s.size = sizeof s;
  if (dst != NULL) {
    memcpy(s.val.dst_mac, dst, 6);
    memset(s.mask.dst_mac, 0xff, 6);
  }
  if (ether_type != 0) {
    s.val.ether_type = htons(ether_type);
    s.mask.ether_type = 0xffff;
  }
  s.val.vlan_tag = htons(vlan);
  s.mask.vlan_tag = htons(vlan_mask);
  rule_add(r, &s, sizeof s);
}

// IPV4: src and dst exact when non-zero.
static void add_ipv4(struct rule *r, uint32_t inner, uint32_t src, uint32_t dst) {
  struct ibv_flow_spec_ipv4 s;
  memset(&s, 0, sizeof s);
  s.type = (enum ibv_flow_spec_type)(IBV_FLOW_SPEC_IPV4 | inner);
  s.size = sizeof s;
  s.val.src_ip = htonl(src);
  s.mask.src_ip = src != 0 ? 0xffffffff : 0;
  s.val.dst_ip = htonl(dst);
  s.mask.dst_ip = dst != 0 ? 0xffffffff : 0;
  rule_add(r, &s, sizeof s);
}

// TCP or UDP: ports exact when non-zero.
static void add_l4(struct rule *r, uint32_t type, uint16_t src, uint16_t dst) {
  struct ibv_flow_spec_tcp_udp s;
  memset(&s, 0, sizeof s);
  s.type = (enum ibv_flow_spec_type)type;
  s.size = sizeof s;
  s.val.src_port = htons(src);
  s.mask.src_port = src != 0 ? 0xffff : 0;
  s.val.dst_port = htons(dst);
  s.mask.dst_port = dst != 0 ? 0xffff : 0;
  rule_add(r, &s, sizeof s);
}

static void add_vxlan(struct rule *r, uint32_t vni) {
  struct ibv_flow_spec_tunnel s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_VXLAN_TUNNEL;
  s.size = sizeof s;
  s.val.tunnel_id = htonl(vni);
  s.mask.tunnel_id = htonl(0xffffff);
  rule_add(r, &s, sizeof s);
}

// MPLS: the 20-bit label exact (the label word is big-endian: label[20] exp[3] s_bos[1] ttl[8]).
static void add_mpls(struct rule *r, uint32_t label) {
  struct ibv_flow_spec_mpls s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_MPLS;
  s.size = sizeof s;
  s.val.label = htonl(label << 12);
  s.mask.label = htonl(0xfffffu << 12);
  rule_add(r, &s, sizeof s);
}

// A NORMAL rule ETH(0x0800) + IPV4(src, dst) + TCP(sport, dport): the exact 5-tuple.
static struct ibv_flow *install_5tuple(struct ibv_qp *qp, uint16_t priority, uint32_t flags,
                                       uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport) {
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, priority, 1, flags);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, src, dst);
  add_l4(&r, IBV_FLOW_SPEC_TCP, sport, dport);
  return install(qp, &r);
}

static struct ibv_flow *install_type(struct ibv_qp *qp, uint32_t type, uint8_t port) {
  struct rule r;
  rule_init(&r, type, 0, port, 0);
  return install(qp, &r);
}

// --- Frames ------------------------------------------------------------------------------

static void put_udp(struct frame *f, uint16_t sport, uint16_t dport) {
  put16(f, sport);
  put16(f, dport);
  put32(f, 0);
}

static void put_vxlan(struct frame *f, uint32_t vni) {
  put32(f, 0x08000000);
  put32(f, vni << 8);
}

static void put_mpls(struct frame *f, uint32_t label, int bos) {
  put32(f, (label << 12) | (bos ? 0x100u : 0u) | 64u);
}

// The frame went to exactly `qp` (untagged), nothing dropped.
static int only_to(const struct flowrt_sim_result *res, const struct ibv_qp *qp) {
  return !res->dropped && res->num_deliveries == 1 && res->deliveries[0].qp == qp &&
         !res->deliveries[0].tagged;
}

static int nowhere(const struct flowrt_sim_result *res) {
  return !res->dropped && res->num_deliveries == 0;
}

// --- Tests -------------------------------------------------------------------------------

static void test_exact_5tuple(void) {
  struct bench t = open_bench(1);
  install_5tuple(t.a, 0, 0, 0x0a000001, 0x0a000002, 1234, 80);
  struct frame f;
  tcp_frame(&f, 1234, 80);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  tcp_frame(&f, 1235, 80); // another source port
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));
  // UDP with the same ports: the TCP spec requires IP protocol 6.
  f.n = 0;
  put_eth(&f, kMacA, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000002, 17);
  put_udp(&f, 1234, 80);
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));
  flowrt_sim_close(t.dev);
}

static void test_priority_order(void) {
  struct bench t = open_bench(1);
  // Installed first but priority 3: loses to the priority 1 rule installed after it.
  install_5tuple(t.a, 3, 0, 0, 0x0a000002, 0, 0);
  install_5tuple(t.b, 1, 0, 0, 0x0a000002, 0, 80);
  struct frame f;
  tcp_frame(&f, 1234, 80);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  tcp_frame(&f, 1234, 81); // only the wider rule matches
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  // Same priority as the priority 3 rule, different matches: the first installed wins.
  install_5tuple(t.c, 3, 0, 0x0a000001, 0x0a000002, 0, 0);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  flowrt_sim_close(t.dev);
}

static void test_dont_trap(void) {
  struct bench t = open_bench(1);
  install_5tuple(t.b, 0, 0, 0, 0x0a000002, 0, 80);
  install_5tuple(t.a, 0, IBV_FLOW_ATTR_FLAGS_DONT_TRAP, 0, 0x0a000002, 0, 0);
  struct frame f;
  tcp_frame(&f, 1234, 80);
  // Table 0 (DONT_TRAP, priority 0) copies to a, then table 1 (priority 0) delivers to b.
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(!res.dropped && res.num_deliveries == 2);
  CHECK(res.deliveries[0].qp == t.a && res.deliveries[1].qp == t.b);
  // A DONT_TRAP rule at priority 1 (table 2) comes after the trapping priority 0 rule (table 1).
  install_5tuple(t.c, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP, 0, 0x0a000002, 0, 0);
  res = receive(t.dev, 1, &f);
  CHECK(res.num_deliveries == 2 && res.deliveries[0].qp == t.a && res.deliveries[1].qp == t.b);
  // Without the trapping match, both DONT_TRAP copies happen and nothing else.
  tcp_frame(&f, 1234, 81);
  res = receive(t.dev, 1, &f);
  CHECK(!res.dropped && res.num_deliveries == 2);
  CHECK(res.deliveries[0].qp == t.a && res.deliveries[1].qp == t.c);
  flowrt_sim_close(t.dev);
}

static void test_drop_and_tag(void) {
  struct bench t = open_bench(1);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 22);
  add_drop(&r);
  install(t.a, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, 0);
  add_eth(&r, 0, kMacA, 0, 0, 0);
  add_tag(&r, 0xabcdef);
  install(t.b, &r);
  install_type(t.c, IBV_FLOW_ATTR_ALL_DEFAULT, 1);

  struct frame f;
  tcp_frame(&f, 1234, 22);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(res.dropped == 1 && res.num_deliveries == 0); // neither the tag rule nor the default
  tcp_frame(&f, 1234, 80);
  res = receive(t.dev, 1, &f);
  CHECK(!res.dropped && res.num_deliveries == 1);
  CHECK(res.deliveries[0].qp == t.b && res.deliveries[0].tagged == 1);
  CHECK(res.deliveries[0].tag == 0xabcdef);
  // DONT_TRAP + DROP drops and stops too (§3.4).
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  add_eth(&r, 0, kMacA, 0, 0, 0);
  add_drop(&r);
  install(t.a, &r);
  res = receive(t.dev, 1, &f);
  CHECK(res.dropped == 1 && res.num_deliveries == 0);
  flowrt_sim_close(t.dev);
}

static void test_counters(void) {
  struct bench t = open_bench(1);
  struct ibv_context *context = flowrt_sim_context(t.dev);
  struct ibv_counters *hits = attached_counters(context);
  struct ibv_counters *drops = attached_counters(context);
  struct ibv_counters *copies = attached_counters(context);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 80);
  add_count(&r, hits);
  install(t.a, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 22);
  add_drop(&r);
  add_count(&r, drops);
  install(t.a, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  add_eth(&r, 0, kMacA, 0, 0, 0);
  add_count(&r, copies);
  install(t.b, &r);

  struct frame f;
  tcp_frame(&f, 1234, 80);
  size_t len80 = f.n;
  receive(t.dev, 1, &f);
  receive(t.dev, 1, &f);
  tcp_frame(&f, 1234, 22);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(res.dropped == 1 && res.num_deliveries == 1 && res.deliveries[0].qp == t.b);
  tcp_frame(&f, 1234, 23);
  f.b[0] = 0x02; // another port and dst MAC: none of the rules match
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));

  uint64_t values[3];
  CHECK(ibv_read_counters(hits, values, 3, 0) == 0);
  CHECK(values[0] == 2 && values[1] == 2 * len80 && values[2] == 0);
  CHECK(ibv_read_counters(drops, values, 2, 0) == 0);
  CHECK(values[0] == 1 && values[1] == f.n);
  CHECK(ibv_read_counters(copies, values, 2, 0) == 0);
  CHECK(values[0] == 3 && values[1] == 2 * len80 + f.n);
  flowrt_sim_close(t.dev);
}

static void test_vlan(void) {
  struct bench t = open_bench(1);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, kMacA, 0, 100, 0x0fff);
  install(t.a, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, 0);
  add_eth(&r, 0, kMacA, 0x0800, 0, 0); // no vlan mask: tagged or not
  install(t.b, &r);

  struct frame f = {{0}, 0};
  put_eth(&f, kMacA, 0x6000 | 100, 0x0800); // prio 3, vid 100
  put_ipv4(&f, 1, 2, 6);
  put_tcp(&f, 1, 2);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  f.n = 0;
  put_eth(&f, kMacA, 200, 0x0800); // another vid: the ether_type after the tag still matches
  put_ipv4(&f, 1, 2, 6);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  tcp_frame(&f, 1, 2); // untagged: the vlan rule requires a tag
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  // A VLAN-tag-only rule (vid 0 under a full mask) still needs a tag.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0, 0, 0x0fff);
  install(t.c, &r);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  flowrt_sim_close(t.dev);
}

// ETH + IPv4 10.0.0.1 -> 10.0.0.2 + UDP dst 4789 + VXLAN vni + inner ETH to kMacB + inner IPv4
// 192.168.0.1 -> `inner_dst` + inner UDP 5000 -> 53.
static void vxlan_frame(struct frame *f, uint32_t vni, uint32_t inner_dst) {
  f->n = 0;
  put_eth(f, kMacA, -1, 0x0800);
  put_ipv4(f, 0x0a000001, 0x0a000002, 17);
  put_udp(f, 40000, 4789);
  put_vxlan(f, vni);
  put_eth(f, kMacB, -1, 0x0800);
  put_ipv4(f, 0xc0a80001, inner_dst, 17);
  put_udp(f, 5000, 53);
}

static void test_vxlan(void) {
  struct bench t = open_bench(1);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_UDP, 0, 4789);
  add_vxlan(&r, 42);
  add_eth(&r, IBV_FLOW_SPEC_INNER, kMacB, 0x0800, 0, 0);
  add_ipv4(&r, IBV_FLOW_SPEC_INNER, 0, 0xc0a80002);
  add_l4(&r, IBV_FLOW_SPEC_UDP | IBV_FLOW_SPEC_INNER, 0, 53);
  install(t.a, &r);
  // An outer-only rule for the same outer headers, at a later priority.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_UDP, 0, 53); // the inner port: does not match the outer UDP
  install(t.c, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 2, 1, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  install(t.b, &r);

  struct frame f;
  vxlan_frame(&f, 42, 0xc0a80002);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  vxlan_frame(&f, 42, 0xc0a80003); // another inner dst
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  vxlan_frame(&f, 43, 0xc0a80002); // another VNI
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  flowrt_sim_close(t.dev);
}

static void test_mpls_over_udp(void) {
  struct bench t = open_bench(1);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_UDP, 0, 6635);
  add_mpls(&r, 0x12345); // after UDP: outer_first_mpls_over_udp
  install(t.a, &r);
  // Inner IPv4 (after the bottom-of-stack MPLS entry) to 172.16.0.9.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, 0);
  add_ipv4(&r, IBV_FLOW_SPEC_INNER, 0, 0xac100009);
  install(t.b, &r);

  struct frame f = {{0}, 0};
  put_eth(&f, kMacA, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000002, 17);
  put_udp(&f, 40000, 6635);
  put_mpls(&f, 0x12345, 1);
  put_ipv4(&f, 0xac100001, 0xac100009, 6);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  f.b[14 + 20 + 8 + 2] ^= 0x10; // another label (bit 4 of the label's low nibble)
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  // MPLS right after Ethernet is not MPLS over UDP.
  f.n = 0;
  put_eth(&f, kMacA, -1, 0x8847);
  put_mpls(&f, 0x12345, 1);
  put_ipv4(&f, 0xac100001, 0xac100009, 6);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  flowrt_sim_close(t.dev);
}

static void test_defaults(void) {
  struct bench t = open_bench(1);
  install_5tuple(t.a, 0, 0, 0, 0x0a000002, 0, 80);
  install_type(t.b, IBV_FLOW_ATTR_ALL_DEFAULT, 1);
  struct frame f;
  tcp_frame(&f, 1, 80);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a)); // a matching rule comes before the leftovers
  tcp_frame(&f, 1, 81);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  memcpy(f.b, kMacMc, 6);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b)); // multicast, no MC_DEFAULT: ALL_DEFAULT
  install_type(t.c, IBV_FLOW_ATTR_MC_DEFAULT, 1);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.c));
  tcp_frame(&f, 1, 81);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b)); // unicast still to ALL_DEFAULT
  flowrt_sim_close(t.dev);
}

static void test_sniffer(void) {
  struct bench t = open_bench(1);
  install_5tuple(t.a, 0, 0, 0, 0x0a000002, 0, 80);
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, 0);
  add_eth(&r, 0, kMacA, 0, 0, 0);
  add_drop(&r);
  install(t.a, &r);
  install_type(t.c, IBV_FLOW_ATTR_SNIFFER, 1);
  struct frame f;
  tcp_frame(&f, 1, 80);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(!res.dropped && res.num_deliveries == 2);
  CHECK(res.deliveries[0].qp == t.a && res.deliveries[1].qp == t.c);
  tcp_frame(&f, 1, 81); // dropped, and still sniffed
  res = receive(t.dev, 1, &f);
  CHECK(res.dropped == 1 && res.num_deliveries == 1 && res.deliveries[0].qp == t.c);
  f.b[0] = 0x02; // taken by nothing, still sniffed
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.c));
  flowrt_sim_close(t.dev);
}

static void test_ports_and_errors(void) {
  struct bench t = open_bench(2);
  install_5tuple(t.a, 0, 0, 0, 0x0a000002, 0, 80);
  install_type(t.b, IBV_FLOW_ATTR_SNIFFER, 1);
  install_type(t.c, IBV_FLOW_ATTR_ALL_DEFAULT, 1);
  struct frame f;
  tcp_frame(&f, 1, 80);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(res.num_deliveries == 2 && res.deliveries[0].qp == t.a && res.deliveries[1].qp == t.b);
  res = receive(t.dev, 2, &f); // port 2: no rule, default or sniffer of port 1 applies
  CHECK(nowhere(&res));
  CHECK(flowrt_sim_receive(t.dev, 3, f.b, f.n, &res) == -EINVAL);
  CHECK(flowrt_sim_receive(t.dev, 0, f.b, f.n, &res) == -EINVAL);
  CHECK(flowrt_sim_receive(t.dev, 1, f.b, 13, &res) == -EINVAL);
  CHECK(flowrt_sim_receive(t.dev, 1, f.b, 14, &res) == 0); // a bare Ethernet header parses
  CHECK(flowrt_sim_receive(t.dev, 1, NULL, 0, &res) == -EINVAL);
  CHECK(flowrt_sim_receive(t.dev, 1, f.b, f.n, NULL) == -EINVAL);
  f.n = 0;
  put_eth(&f, kMacA, 5, 0x0800);
  CHECK(flowrt_sim_receive(t.dev, 1, f.b, 16, &res) == -EINVAL); // the tag is cut off
  CHECK(flowrt_sim_receive(t.dev, 1, f.b, 18, &res) == 0);
  flowrt_sim_close(t.dev);

  struct flowrt_sim_device *mlx4 = flowrt_sim_open(FLOWRT_SIM_MLX4, NULL, 1);
  tcp_frame(&f, 1, 80);
  CHECK(flowrt_sim_send(mlx4, 1, f.b, f.n, &res) == -EOPNOTSUPP); // no egress on mlx4 (§4.1)
  flowrt_sim_close(mlx4);
}

// mlx4 (§4): only dst MAC, VLAN, IPv4 addresses and ports match; ETH src_mac and ether_type are
// ignored; lower priority wins; a lone multicast ETH rule goes to the NIC domain; DONT_TRAP is
// a sniffer; default rules apply their specs.
static void test_mlx4(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX4, NULL, 1);
  struct ibv_qp *a = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *b = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *c = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *d = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct rule r;
  // Priority 5: dst MAC kMacA with ether_type 0x86dd, which mlx4 ignores.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 5, 1, 0);
  add_eth(&r, 0, kMacA, 0x86dd, 0, 0);
  CHECK(install(a, &r) != NULL);
  // Priority 2: IPv4 dst 10.0.0.2 and TCP dst 80: before the ETH rule.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 2, 1, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 80);
  CHECK(install(b, &r) != NULL);
  // Priority 0, but its only spec is a multicast dst MAC: domain NIC, after every other rule.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, kMacMc, 0, 0, 0);
  CHECK(install(c, &r) != NULL);
  struct frame f;
  tcp_frame(&f, 1, 80); // to kMacA, 10.0.0.2, TCP 80
  struct flowrt_sim_result res = receive(dev, 1, &f);
  CHECK(only_to(&res, b));
  tcp_frame(&f, 1, 81); // the TCP rule misses; the ETH rule takes it though it is IPv4
  res = receive(dev, 1, &f);
  CHECK(only_to(&res, a));
  f.n = 0; // UDP: the TCP rule needs protocol 6
  put_eth(&f, kMacA, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000002, 17);
  put_udp(&f, 1, 80);
  res = receive(dev, 1, &f);
  CHECK(only_to(&res, a));
  f.n = 0;
  put_eth(&f, kMacMc, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000002, 6);
  put_tcp(&f, 1, 80);
  res = receive(dev, 1, &f); // multicast, TCP 80: the priority-2 rule beats the NIC domain
  CHECK(only_to(&res, b));
  f.b[14 + 16] = 11; // another dst IP: only the multicast rule is left
  res = receive(dev, 1, &f);
  CHECK(only_to(&res, c));
  // A DONT_TRAP sniffer for multicast frames (dst mask 01:00:00:00:00:00) and a default rule
  // whose spec limits it to VLAN 7.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  struct ibv_flow_spec_eth mc;
  memset(&mc, 0, sizeof mc);
  mc.type = IBV_FLOW_SPEC_ETH;
  mc.size = sizeof mc;
  mc.val.dst_mac[0] = 0x01;
  mc.mask.dst_mac[0] = 0x01;
  rule_add(&r, &mc, sizeof mc);
  CHECK(install(d, &r) != NULL);
  res = receive(dev, 1, &f); // multicast: copied to d, then taken by c
  CHECK(res.num_deliveries == 2 && res.deliveries[0].qp == d && res.deliveries[1].qp == c);
  tcp_frame(&f, 1, 81); // unicast: no copy
  res = receive(dev, 1, &f);
  CHECK(only_to(&res, a));
  rule_init(&r, IBV_FLOW_ATTR_ALL_DEFAULT, 0, 1, 0);
  add_eth(&r, 0, NULL, 0, 7, 0x0fff);
  CHECK(install(d, &r) != NULL);
  f.n = 0;
  put_eth(&f, kMacB, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000009, 6);
  put_tcp(&f, 1, 81);
  res = receive(dev, 1, &f); // no VLAN: the default rule's spec does not match
  CHECK(nowhere(&res));
  f.n = 0;
  put_eth(&f, kMacB, 7, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000009, 6);
  put_tcp(&f, 1, 81);
  res = receive(dev, 1, &f);
  CHECK(only_to(&res, d));
  flowrt_sim_close(dev);
}

// mlx5 egress (§3.6): DROP drops, anything else allows; counters count; ingress flows do not
// see sent frames and egress flows do not see received ones.
static void test_egress(void) {
  struct bench t = open_bench(1);
  struct ibv_counters *counters = attached_counters(flowrt_sim_context(t.dev));
  struct rule r;
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_EGRESS);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 22);
  add_drop(&r);
  add_count(&r, counters);
  CHECK(install(t.a, &r) != NULL);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 1, 1, IBV_FLOW_ATTR_FLAGS_EGRESS);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  CHECK(install(t.a, &r) != NULL); // allow, at a lower precedence
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 2, 1, IBV_FLOW_ATTR_FLAGS_EGRESS);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_drop(&r);
  CHECK(install(t.a, &r) != NULL); // every other IPv4 frame dropped
  struct frame f;
  struct flowrt_sim_result res;
  tcp_frame(&f, 1, 22);
  CHECK(flowrt_sim_send(t.dev, 1, f.b, f.n, &res) == 0 && res.dropped && res.num_deliveries == 0);
  tcp_frame(&f, 1, 23);
  CHECK(flowrt_sim_send(t.dev, 1, f.b, f.n, &res) == 0 && !res.dropped);
  f.b[14 + 16] = 11; // another destination: the catch-all drop
  CHECK(flowrt_sim_send(t.dev, 1, f.b, f.n, &res) == 0 && res.dropped);
  f.n = 0;
  put_eth(&f, kMacA, -1, 0x0806); // ARP: no egress flow matches; sent
  put32(&f, 0);
  CHECK(flowrt_sim_send(t.dev, 1, f.b, f.n, &res) == 0 && !res.dropped);
  tcp_frame(&f, 1, 22); // received, not sent: egress flows do not apply
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));
  uint64_t values[2] = {0, 0};
  CHECK(ibv_read_counters(counters, values, 2, 0) == 0 && values[0] == 1 && values[1] == f.n);
  CHECK(flowrt_sim_send(t.dev, 2, f.b, f.n, &res) == -EINVAL);
  CHECK(flowrt_sim_send(t.dev, 1, f.b, 13, &res) == -EINVAL);
  CHECK(flowrt_sim_send(NULL, 1, f.b, f.n, &res) == -EINVAL);
  flowrt_sim_close(t.dev);
}

static void test_multicast_last(void) {
  struct bench t = open_bench(1);
  struct rule r;
  // Priority 0, but its first spec is a multicast ETH dst: table 32, after everything (§3.3).
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0, kMacMc, 0, 0, 0);
  install(t.a, &r);
  // Priority 5, not multicast-only (no dst mask): table 11.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 5, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0xe0000001);
  install(t.b, &r);

  struct frame f = {{0}, 0};
  put_eth(&f, kMacMc, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0xe0000001, 17);
  put_udp(&f, 1, 2);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  f.b[14 + 19] = 2; // 224.0.0.2: only the multicast-only rule
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  // An IPv4-first rule with a multicast dst is multicast-only too: it loses to priority 5.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_ipv4(&r, 0, 0, 0xe0000002);
  install(t.c, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 5, 1, 0);
  add_eth(&r, 0, NULL, 0x0800, 0, 0);
  add_ipv4(&r, 0, 0, 0xe0000002);
  install(t.b, &r);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  // With DONT_TRAP it keeps its own table 0 and copies first.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  add_eth(&r, 0, kMacMc, 0, 0, 0);
  install(t.c, &r);
  res = receive(t.dev, 1, &f);
  CHECK(res.num_deliveries == 2 && res.deliveries[0].qp == t.c && res.deliveries[1].qp == t.b);
  flowrt_sim_close(t.dev);
}

static void test_gre_ipv6(void) {
  struct bench t = open_bench(1);
  struct rule r;
  // GRE key 7 carrying IPv4 (K bit set), then an inner IPv4 dst.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_ipv4(&r, 0, 0, 0x0a000002);
  struct ibv_flow_spec_gre gre;
  memset(&gre, 0, sizeof gre);
  gre.type = IBV_FLOW_SPEC_GRE;
  gre.size = sizeof gre;
  gre.val.protocol = htons(0x0800);
  gre.mask.protocol = 0xffff;
  gre.val.key = htonl(7);
  gre.mask.key = 0xffffffff;
  rule_add(&r, &gre, sizeof gre);
  add_ipv4(&r, IBV_FLOW_SPEC_INNER, 0, 0xac100009);
  install(t.a, &r);
  // IPv6 next header 6 with a TCP dst port.
  struct ibv_flow_spec_ipv6 v6;
  memset(&v6, 0, sizeof v6);
  v6.type = IBV_FLOW_SPEC_IPV6;
  v6.size = sizeof v6;
  v6.val.dst_ip[15] = 1;
  memset(v6.mask.dst_ip, 0xff, 16);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  rule_add(&r, &v6, sizeof v6);
  add_l4(&r, IBV_FLOW_SPEC_TCP, 0, 443);
  install(t.b, &r);

  struct frame f = {{0}, 0};
  put_eth(&f, kMacA, -1, 0x0800);
  put_ipv4(&f, 0x0a000001, 0x0a000002, 47);
  put32(&f, 0x20000800); // K bit, protocol IPv4
  put32(&f, 7);
  put_ipv4(&f, 0xac100001, 0xac100009, 17);
  struct flowrt_sim_result res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.a));
  f.b[14 + 20 + 7] = 8; // another key
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));

  f.n = 0;
  put_eth(&f, kMacA, -1, 0x86dd);
  const uint8_t v6head[8] = {0x60, 0, 0, 0, 0, 20, 6, 64};
  put(&f, v6head, sizeof v6head);
  uint8_t addr[16] = {0};
  put(&f, addr, 16); // src ::
  addr[15] = 1;
  put(&f, addr, 16); // dst ::1
  put_tcp(&f, 1000, 443);
  res = receive(t.dev, 1, &f);
  CHECK(only_to(&res, t.b));
  f.b[14 + 6] = 17; // next header UDP: the TCP spec needs protocol 6
  res = receive(t.dev, 1, &f);
  CHECK(nowhere(&res));
  flowrt_sim_close(t.dev);
}

int main(void) {
  test_exact_5tuple();
  test_priority_order();
  test_dont_trap();
  test_drop_and_tag();
  test_counters();
  test_vlan();
  test_vxlan();
  test_mpls_over_udp();
  test_defaults();
  test_sniffer();
  test_ports_and_errors();
  test_multicast_last();
  test_gre_ipv6();
  test_mlx4();
  test_egress();
  if (failures != 0) {
    fprintf(stderr, "%u of %u checks failed\n", failures, checks);
    return 1;
  }
  printf("all %u checks passed\n", checks);
  return 0;
}
