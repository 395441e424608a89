// Tests of mlx5 flow table entries in the sim (verbs-facts §3.8): flows with identical matches in
// the same hardware table are one entry (EEXIST on conflicting actions or tags, replication to
// every QP otherwise), and counters re-binding after their last flow is gone (§1.6). Rules go
// through the real libibverbs ibv_create_flow(), counters are read with ibv_read_counters().
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

// ETH: ether_type exact when non-zero, nothing else (an all-zero ETH spec when 0).
static void add_eth(struct rule *r, uint16_t ether_type) {
  struct ibv_flow_spec_eth s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_ETH;
  s.size = sizeof s;
  if (ether_type != 0) {
    s.val.ether_type = htons(ether_type);
    s.mask.ether_type = 0xffff;
  }
  rule_add(r, &s, sizeof s);
}

// IPV4: dst exact; `junk` goes into the value's src_ip, which the mask leaves out.
static void add_ipv4(struct rule *r, uint32_t dst, uint32_t junk) {
  struct ibv_flow_spec_ipv4 s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_IPV4;
  s.size = sizeof s;
  s.val.src_ip = htonl(junk);
  s.val.dst_ip = htonl(dst);
  s.mask.dst_ip = 0xffffffff;
  rule_add(r, &s, sizeof s);
}

// IPV4_EXT with the same dst match and nothing else: mlx5 reads it as the same IPv4 match.
static void add_ipv4_ext(struct rule *r, uint32_t dst) {
  struct ibv_flow_spec_ipv4_ext s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_IPV4_EXT;
  s.size = sizeof s;
  s.val.dst_ip = htonl(dst);
  s.mask.dst_ip = 0xffffffff;
  rule_add(r, &s, sizeof s);
}

static void add_tcp(struct rule *r, uint16_t dport) {
  struct ibv_flow_spec_tcp_udp s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_TCP;
  s.size = sizeof s;
  s.val.dst_port = htons(dport);
  s.mask.dst_port = 0xffff;
  rule_add(r, &s, sizeof s);
}

static void add_handle(struct rule *r, struct ibv_flow_action *action) {
  struct ibv_flow_spec_action_handle s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_ACTION_HANDLE;
  s.size = sizeof s;
  s.action = action;
  rule_add(r, &s, sizeof s);
}

// The match every test shares: ETH(0x0800) + IPV4(dst 10.0.0.2) + TCP(dst 80).
static void web_rule(struct rule *r, uint16_t priority, uint32_t flags) {
  rule_init(r, IBV_FLOW_ATTR_NORMAL, priority, 1, flags);
  add_eth(r, 0x0800);
  add_ipv4(r, 0x0a000002, 0);
  add_tcp(r, 80);
}

// ibv_create_flow fails with `err` and stores nothing.
static void refused(struct flowrt_sim_device *dev, struct ibv_qp *qp, struct rule *r, int err,
                    int line) {
  unsigned before = flowrt_sim_num_flows(dev);
  errno = 0;
  struct ibv_flow *flow = ibv_create_flow(qp, &r->u.attr);
  CHECKF(flow == NULL && errno == err, "line %d: flow %p errno %d, want NULL and %d", line,
         (void *)flow, errno, err);
  CHECKF(flowrt_sim_num_flows(dev) == before, "line %d", line);
}
#define REFUSED(dev, qp, r, err) refused((dev), (qp), (r), (err), __LINE__)

// --- Frames ------------------------------------------------------------------------------

// The web frame (tcp_frame from port 1234) to `dport`, received on port 1.
static struct flowrt_sim_result receive_tcp(struct flowrt_sim_device *dev, uint16_t dport) {
  struct frame f;
  tcp_frame(&f, 1234, dport);
  return receive(dev, 1, &f);
}

static size_t frame_len(void) {
  struct frame f;
  tcp_frame(&f, 1234, 80);
  return f.n;
}

// Delivery `i` went to `qp` with tag `tag` (tagged), or untagged when `tag` < 0.
static int delivered(const struct flowrt_sim_result *res, unsigned i, const struct ibv_qp *qp,
                     long tag) {
  if (i >= res->num_deliveries || res->deliveries[i].qp != qp) {
    return 0;
  }
  if (tag < 0) {
    return !res->deliveries[i].tagged && res->deliveries[i].tag == 0;
  }
  return res->deliveries[i].tagged && res->deliveries[i].tag == (uint32_t)tag;
}

// The counters' packets (index 0) and bytes (index 1).
static int counted(struct ibv_counters *counters, uint64_t packets, uint64_t bytes) {
  uint64_t values[2] = {~0ull, ~0ull};
  return ibv_read_counters(counters, values, 2, 0) == 0 && values[0] == packets &&
         values[1] == bytes;
}

// --- Tests -------------------------------------------------------------------------------

// Exactly one of the two has DROP: the XOR of the action bits touches DROP → EEXIST (§3.8).
static void test_drop_conflict(void) {
  struct bench t = open_bench(2);
  struct rule r;
  web_rule(&r, 0, 0);
  install(t.a, &r);
  web_rule(&r, 0, 0);
  add_drop(&r);
  REFUSED(t.dev, t.b, &r, EEXIST);
  REFUSED(t.dev, t.a, &r, EEXIST); // the same QP too: the conflict check comes first
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(!res.dropped && res.num_deliveries == 1 && delivered(&res, 0, t.a, -1));

  // The other way round, on another port: a DROP entry refuses a forwarding duplicate.
  r.u.attr.port = 2;
  install(t.a, &r);
  web_rule(&r, 0, 0);
  r.u.attr.port = 2;
  REFUSED(t.dev, t.b, &r, EEXIST);
  // Two DROPs do not conflict, COUNT differences never do.
  struct ibv_counters *drops = attached_counters(flowrt_sim_context(t.dev));
  web_rule(&r, 0, 0);
  r.u.attr.port = 2;
  add_drop(&r);
  add_count(&r, drops);
  install(t.b, &r);
  CHECK(flowrt_sim_num_flows(t.dev) == 3);

  // A refused COUNT flow binds nothing: its fresh counters can be destroyed right away.
  struct ibv_counters *unused = attached_counters(flowrt_sim_context(t.dev));
  web_rule(&r, 0, 0);
  add_drop(&r);
  add_count(&r, unused);
  REFUSED(t.dev, t.b, &r, EEXIST);
  CHECK(ibv_destroy_counters(unused) == 0);

  // Different HANDLE objects conflict; the same one does not.
  struct ibv_flow_action act1 = {flowrt_sim_context(t.dev)};
  struct ibv_flow_action act2 = {flowrt_sim_context(t.dev)};
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 3, 1, 0);
  add_eth(&r, 0x86dd);
  add_handle(&r, &act1);
  install(t.a, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 3, 1, 0);
  add_eth(&r, 0x86dd);
  add_handle(&r, &act2);
  REFUSED(t.dev, t.b, &r, EEXIST);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 3, 1, 0);
  add_eth(&r, 0x86dd);
  REFUSED(t.dev, t.b, &r, EEXIST); // a HANDLE on one side only
  add_handle(&r, &act1);
  install(t.b, &r);
  CHECK(flowrt_sim_num_flows(t.dev) == 5);
  flowrt_sim_close(t.dev);
}

// A TAG other than the entry's tag → EEXIST; a flow without a TAG joins and shares the entry's.
static void test_tag_conflict(void) {
  struct bench t = open_bench(2);
  struct rule r;
  web_rule(&r, 0, 0);
  add_tag(&r, 7);
  install(t.a, &r);
  web_rule(&r, 0, 0);
  add_tag(&r, 8);
  REFUSED(t.dev, t.b, &r, EEXIST);
  // check_conflicting_ftes checks only a new flow with a TAG: an untagged one joins.
  web_rule(&r, 0, 0);
  install(t.b, &r);
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(!res.dropped && res.num_deliveries == 2);
  CHECK(delivered(&res, 0, t.a, 7) && delivered(&res, 1, t.b, 7));

  // An untagged entry (tag 0) refuses a tagged duplicate, unless its tag is 0.
  web_rule(&r, 1, 0);
  install(t.a, &r);
  web_rule(&r, 1, 0);
  add_tag(&r, 9);
  REFUSED(t.dev, t.b, &r, EEXIST);
  web_rule(&r, 1, 0);
  add_tag(&r, 0);
  install(t.b, &r);
  CHECK(flowrt_sim_num_flows(t.dev) == 4);
  flowrt_sim_close(t.dev);
}

// The same match and tag on different QPs: one entry, the frame goes to both (§3.8).
static void test_replication(void) {
  struct bench t = open_bench(2);
  struct rule r;
  web_rule(&r, 0, 0);
  add_tag(&r, 0x42);
  struct ibv_flow *fa = install(t.a, &r);
  struct ibv_flow *fb = install(t.b, &r);
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(!res.dropped && res.num_deliveries == 2);
  CHECK(delivered(&res, 0, t.a, 0x42) && delivered(&res, 1, t.b, 0x42));
  res = receive_tcp(t.dev, 81);
  CHECK(!res.dropped && res.num_deliveries == 0);

  // The same match written differently: specs reordered, IPV4_EXT for IPV4, a value bit the
  // mask leaves out, an extra all-zero ETH spec instead of none. Still the same entry.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_tcp(&r, 80);
  add_ipv4_ext(&r, 0x0a000002);
  add_eth(&r, 0x0800);
  add_eth(&r, 0);
  add_tag(&r, 0x42);
  install(t.c, &r);
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_tcp(&r, 80);
  add_ipv4(&r, 0x0a000002, 0x01020304);
  add_eth(&r, 0x0800);
  add_tag(&r, 0x43);
  REFUSED(t.dev, t.c, &r, EEXIST); // the same entry: a different tag is refused
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 3 && delivered(&res, 2, t.c, 0x42));

  // Dropping members leaves the rest of the entry; the tag stays the entry's.
  CHECK(ibv_destroy_flow(fa) == 0);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 2 && delivered(&res, 0, t.b, 0x42) && delivered(&res, 1, t.c, 0x42));
  CHECK(ibv_destroy_flow(fb) == 0);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 1 && delivered(&res, 0, t.c, 0x42));

  // A DONT_TRAP entry replicates too, then classification goes on (§3.4).
  web_rule(&r, 0, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  install(t.a, &r);
  install(t.b, &r);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 3 && delivered(&res, 0, t.a, -1) && delivered(&res, 1, t.b, -1) &&
        delivered(&res, 2, t.c, 0x42));
  flowrt_sim_close(t.dev);
}

// The same QP again: accepted (a reference on the existing rule), one copy per frame.
static void test_same_qp_twice(void) {
  struct bench t = open_bench(2);
  struct rule r;
  web_rule(&r, 0, 0);
  struct ibv_flow *first = install(t.a, &r);
  struct ibv_flow *second = install(t.a, &r);
  CHECK(first != second && flowrt_sim_num_flows(t.dev) == 2);
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(!res.dropped && res.num_deliveries == 1 && delivered(&res, 0, t.a, -1));
  // With another QP in between, still one copy to a.
  install(t.b, &r);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 2 && delivered(&res, 0, t.a, -1) && delivered(&res, 1, t.b, -1));
  CHECK(ibv_destroy_flow(first) == 0);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 2 && delivered(&res, 0, t.a, -1) && delivered(&res, 1, t.b, -1));
  CHECK(ibv_destroy_flow(second) == 0);
  res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 1 && delivered(&res, 0, t.b, -1));
  flowrt_sim_close(t.dev);
}

// Another table is another entry: no EEXIST, and the lower table wins.
static void test_no_merge_across_tables(void) {
  struct bench t = open_bench(2);
  struct rule r;
  web_rule(&r, 1, 0);
  add_tag(&r, 1);
  install(t.a, &r);
  web_rule(&r, 2, 0); // another priority, with DROP and another tag
  add_drop(&r);
  add_tag(&r, 2);
  install(t.b, &r);
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(!res.dropped && res.num_deliveries == 1 && delivered(&res, 0, t.a, 1));
  // Priority 0 comes first: it drops, the priority 1 entry never sees the frame.
  web_rule(&r, 0, 0);
  add_drop(&r);
  install(t.c, &r);
  res = receive_tcp(t.dev, 80);
  CHECK(res.dropped == 1 && res.num_deliveries == 0);
  // DONT_TRAP at the same priority is its own table (2*1 + 0), before the trapping one.
  web_rule(&r, 1, IBV_FLOW_ATTR_FLAGS_DONT_TRAP);
  add_tag(&r, 3);
  install(t.b, &r);
  // Another port is another device table.
  web_rule(&r, 1, 0);
  r.u.attr.port = 2;
  add_tag(&r, 4);
  install(t.b, &r);
  CHECK(flowrt_sim_num_flows(t.dev) == 5);
  flowrt_sim_close(t.dev);
}

// Every member counts the frame once, forwarding or dropping.
static void test_member_counters(void) {
  struct bench t = open_bench(2);
  struct ibv_context *context = flowrt_sim_context(t.dev);
  struct ibv_counters *ca = attached_counters(context);
  struct ibv_counters *cb = attached_counters(context);
  struct ibv_counters *da = attached_counters(context);
  struct ibv_counters *db = attached_counters(context);
  struct rule r;
  web_rule(&r, 0, 0);
  add_count(&r, ca);
  install(t.a, &r);
  web_rule(&r, 0, 0);
  add_count(&r, cb);
  install(t.b, &r);
  web_rule(&r, 0, 0); // a member without counters
  install(t.c, &r);
  size_t len = frame_len();
  struct flowrt_sim_result res = receive_tcp(t.dev, 80);
  CHECK(res.num_deliveries == 3);
  receive_tcp(t.dev, 80);
  receive_tcp(t.dev, 81); // no match
  CHECK(counted(ca, 2, 2 * len));
  CHECK(counted(cb, 2, 2 * len));

  // A DROP entry: each member counts, nothing is delivered.
  rule_init(&r, IBV_FLOW_ATTR_NORMAL, 0, 1, 0);
  add_eth(&r, 0x0800);
  add_ipv4(&r, 0x0a000002, 0);
  add_tcp(&r, 22);
  add_drop(&r);
  struct rule r2 = r;
  add_count(&r, da);
  add_count(&r2, db);
  install(t.a, &r);
  install(t.b, &r2);
  res = receive_tcp(t.dev, 22);
  CHECK(res.dropped == 1 && res.num_deliveries == 0);
  CHECK(counted(da, 1, len) && counted(db, 1, len));
  CHECK(counted(ca, 2, 2 * len));
  flowrt_sim_close(t.dev);
}

// §1.6: the description is dropped with the last flow (mlx5_ib_destroy_flow →
// mlx5_ib_counters_clear_description), and the provider's refcount is back at 0, so binding the
// counters again re-sends the description and is accepted.
static void test_counters_rebind(void) {
  struct bench t = open_bench(2);
  struct ibv_context *context = flowrt_sim_context(t.dev);
  struct ibv_counters *k = attached_counters(context);
  size_t len = frame_len();
  struct rule r;
  web_rule(&r, 0, 0);
  add_count(&r, k);
  struct ibv_flow *only = install(t.a, &r);
  receive_tcp(t.dev, 80);
  CHECK(counted(k, 1, len));
  CHECK(ibv_destroy_flow(only) == 0);

  // Bound again after its only user is gone: accepted, and it counts on from where it was.
  struct ibv_flow *again = install(t.a, &r);
  CHECK(again != NULL);
  receive_tcp(t.dev, 80);
  CHECK(counted(k, 2, 2 * len));
  // While a flow uses it, more COUNT flows on it are fine, and attach is busy.
  web_rule(&r, 1, 0);
  add_count(&r, k);
  struct ibv_flow *more = install(t.b, &r);
  CHECK(more != NULL);
  struct ibv_counter_attach_attr extra = {IBV_COUNTER_PACKETS, 2, 0};
  CHECK(ibv_attach_counters_point_flow(k, &extra, NULL) == EBUSY);
  receive_tcp(t.dev, 80); // the priority 0 flow takes it
  CHECK(counted(k, 3, 3 * len));

  // With every user gone the provider takes attach points again, and the next COUNT flow
  // describes all of them.
  CHECK(ibv_destroy_flow(again) == 0);
  CHECK(ibv_destroy_flow(more) == 0);
  CHECK(ibv_attach_counters_point_flow(k, &extra, NULL) == 0);
  web_rule(&r, 0, 0);
  add_count(&r, k);
  install(t.c, &r);
  receive_tcp(t.dev, 80);
  uint64_t values[3] = {0, 0, 0};
  CHECK(ibv_read_counters(k, values, 3, 0) == 0);
  CHECKF(values[0] == 4 && values[1] == 4 * len && values[2] == 1, "%llu %llu %llu",
         (unsigned long long)values[0], (unsigned long long)values[1],
         (unsigned long long)values[2]);
  flowrt_sim_close(t.dev);
}

// The entry check is mlx5's fs_core (§3.8); mlx4's duplicate handling is not modelled (§7), and
// mlx4 rules have no actions to conflict: duplicates install.
static void test_mlx4_duplicates(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX4, NULL, 1);
  struct ibv_qp *a = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *b = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct rule r;
  web_rule(&r, 0, 0);
  install(a, &r);
  install(a, &r);
  install(b, &r);
  CHECK(flowrt_sim_num_flows(dev) == 3);
  flowrt_sim_close(dev);
}

// IPV4 with dst under a /`len` mask: a match mask per length.
static void masked_rule(struct rule *r, uint16_t priority, uint32_t dst, unsigned len) {
  rule_init(r, IBV_FLOW_ATTR_NORMAL, priority, 1, 0);
  struct ibv_flow_spec_ipv4 s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_IPV4;
  s.size = sizeof s;
  s.mask.dst_ip = htonl(0xffffffffu << (32 - len));
  s.val.dst_ip = htonl(dst) & s.mask.dst_ip;
  rule_add(r, &s, sizeof s);
}

// A table of 14 entries (§3.8): groups of 14/7 = 2 for the first 6 masks, then one-entry
// groups. Ten masks: six groups take 12 entries, two singles fill the table, and the next new
// mask fails with ENOSPC, while a mask with room in its group still fits. Destroying flows
// frees their entries, and an empty group its range.
static void test_table_full(void) {
  struct flowrt_sim_caps caps = flowrt_sim_default_caps();
  caps.mlx5_table_entries = 14;
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, &caps, 1);
  struct ibv_qp *qp = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_flow *flows[10];
  struct rule r;
  for (unsigned i = 0; i < 8; ++i) {
    masked_rule(&r, 0, 0x0a000000 + (i << 8), 20 + i);
    flows[i] = install(qp, &r);
  }
  masked_rule(&r, 0, 0x0a000900, 28);
  REFUSED(dev, qp, &r, ENOSPC);
  // The /20 group has a free entry; the same match again joins the entry and takes none.
  masked_rule(&r, 0, 0x0b000000, 20);
  flows[8] = install(qp, &r);
  masked_rule(&r, 0, 0x0b000000, 20);
  flows[9] = install(qp, &r);
  // Another priority is another table.
  masked_rule(&r, 1, 0x0a000900, 28);
  struct ibv_flow *other = install(qp, &r);
  // The /27 flow's single entry goes; a new mask then fits, and a second one does not.
  CHECK(ibv_destroy_flow(flows[7]) == 0);
  masked_rule(&r, 0, 0x0a000900, 28);
  struct ibv_flow *again = install(qp, &r);
  masked_rule(&r, 0, 0x0a000a00, 29);
  REFUSED(dev, qp, &r, ENOSPC);
  // Emptying the /20 group (three flows, two entries) frees its two entries.
  CHECK(ibv_destroy_flow(flows[0]) == 0);
  CHECK(ibv_destroy_flow(flows[8]) == 0);
  REFUSED(dev, qp, &r, ENOSPC);
  CHECK(ibv_destroy_flow(flows[9]) == 0);
  struct ibv_flow *after = install(qp, &r);
  CHECK(after != NULL && again != NULL && other != NULL);
  flowrt_sim_close(dev);
}

// Destroying a QP destroys its flows, and with them their table entries: the table is empty
// again afterwards.
static void test_destroy_qp_frees_entries(void) {
  struct flowrt_sim_caps caps = flowrt_sim_default_caps();
  caps.mlx5_table_entries = 14;
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, &caps, 1);
  struct ibv_qp *first = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *second = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct rule r;
  for (unsigned i = 0; i < 8; ++i) {
    masked_rule(&r, 0, 0x0a000000 + (i << 8), 20 + i);
    install(first, &r);
  }
  // The second QP shares the /20 entry; the table is full for new masks.
  masked_rule(&r, 0, 0x0a000000, 20);
  install(second, &r);
  masked_rule(&r, 0, 0x0c000000, 30);
  REFUSED(dev, second, &r, ENOSPC);
  flowrt_sim_destroy_qp(first);
  CHECK(flowrt_sim_num_flows(dev) == 1);
  // Everything but the shared /20 entry is free: five masks take groups, two take singles.
  for (unsigned i = 1; i < 8; ++i) {
    masked_rule(&r, 0, 0x0d000000 + (i << 8), 20 + i);
    install(second, &r);
  }
  masked_rule(&r, 0, 0x0e000000, 30);
  REFUSED(dev, second, &r, ENOSPC);
  flowrt_sim_close(dev);
}

int main(void) {
  test_table_full();
  test_destroy_qp_frees_entries();
  test_drop_conflict();
  test_tag_conflict();
  test_replication();
  test_same_qp_twice();
  test_no_merge_across_tables();
  test_member_counters();
  test_counters_rebind();
  test_mlx4_duplicates();
  if (failures != 0) {
    fprintf(stderr, "%u of %u checks failed\n", failures, checks);
    return 1;
  }
  printf("all %u checks passed\n", checks);
  return 0;
}
