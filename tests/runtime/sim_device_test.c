// Tests of the simulated device through the real libibverbs inline entry points of verbs.h.
//
// Plain C, no framework: prints each failed check and exits non-zero. Rules
// are packed structs of verbs.h spec structs, as in the ibv_create_flow(3)
// example, and go through ibv_create_flow() itself. Run under ASan: the
// closes at the end must leave nothing behind.
#include "flowrt/sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sim_rules.h"

// ETH + IPV4 + UDP, the man page's shape: 10.0.0.1 -> 10.0.0.2, UDP dst port 4791.
struct eth_ipv4_udp {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_ipv4 ipv4;
  struct ibv_flow_spec_tcp_udp udp;
} __attribute__((packed, aligned(4)));

// The same plus an ACTION_COUNT spec; its pointer lands at offset 20 + 40 + 24 + 16 + 8.
struct eth_ipv4_udp_count {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_ipv4 ipv4;
  struct ibv_flow_spec_tcp_udp udp;
  struct ibv_flow_spec_counter_action count;
} __attribute__((packed, aligned(4)));

// ETH + IPV4_EXT: a ttl mask, which mlx5 cannot match (§3.2).
struct eth_ipv4_ext {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_ipv4_ext ipv4;
} __attribute__((packed, aligned(4)));

// ETH + ACTION_TAG (mlx4 has no TAG) or ETH + ACTION_HANDLE.
struct eth_tag {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_action_tag tag;
} __attribute__((packed, aligned(4)));

struct eth_handle {
  struct ibv_flow_attr attr;
  struct ibv_flow_spec_eth eth;
  struct ibv_flow_spec_action_handle handle;
} __attribute__((packed, aligned(4)));

static struct ibv_flow_attr make_attr(uint16_t size, uint8_t num_specs) {
  struct ibv_flow_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.type = IBV_FLOW_ATTR_NORMAL;
  attr.size = size;
  attr.num_of_specs = num_specs;
  attr.port = 1;
  return attr;
}

static struct ibv_flow_spec_eth make_eth(void) {
  static const uint8_t dst[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
  struct ibv_flow_spec_eth eth;
  memset(&eth, 0, sizeof eth);
  eth.type = IBV_FLOW_SPEC_ETH;
  eth.size = sizeof eth;
  memcpy(eth.val.dst_mac, dst, 6);
  memset(eth.mask.dst_mac, 0xff, 6);
  eth.val.ether_type = htons(0x0800);
  eth.mask.ether_type = 0xffff;
  return eth;
}

static struct ibv_flow_spec_ipv4 make_ipv4(void) {
  struct ibv_flow_spec_ipv4 ipv4;
  memset(&ipv4, 0, sizeof ipv4);
  ipv4.type = IBV_FLOW_SPEC_IPV4;
  ipv4.size = sizeof ipv4;
  ipv4.val.src_ip = htonl(0x0a000001);
  ipv4.mask.src_ip = 0xffffffff;
  ipv4.val.dst_ip = htonl(0x0a000002);
  ipv4.mask.dst_ip = 0xffffffff;
  return ipv4;
}

static struct ibv_flow_spec_tcp_udp make_udp(void) {
  struct ibv_flow_spec_tcp_udp udp;
  memset(&udp, 0, sizeof udp);
  udp.type = IBV_FLOW_SPEC_UDP;
  udp.size = sizeof udp;
  udp.val.dst_port = htons(4791);
  udp.mask.dst_port = 0xffff;
  return udp;
}

static void build_udp(struct eth_ipv4_udp *rule) {
  memset(rule, 0, sizeof *rule);
  rule->attr = make_attr(sizeof *rule, 3);
  rule->eth = make_eth();
  rule->ipv4 = make_ipv4();
  rule->udp = make_udp();
}

static void build_udp_count(struct eth_ipv4_udp_count *rule, struct ibv_counters *counters) {
  memset(rule, 0, sizeof *rule);
  rule->attr = make_attr(sizeof *rule, 4);
  rule->eth = make_eth();
  rule->ipv4 = make_ipv4();
  rule->udp = make_udp();
  struct ibv_flow_spec_counter_action count;
  memset(&count, 0, sizeof count);
  count.type = IBV_FLOW_SPEC_ACTION_COUNT;
  count.size = sizeof count;
  count.counters = counters;
  memcpy(&rule->count, &count, sizeof count); // the member is only 4-byte aligned
}

// The rule's attr. The packed rules are aligned(4), the alignment of struct ibv_flow_attr, so the
// pointer is a real one; going through void * keeps -Waddress-of-packed-member quiet.
static struct ibv_flow_attr *attr_of(void *rule) {
  return rule;
}
#define ATTR(rule) attr_of(rule)

static void test_flows_mlx5(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 1);
  CHECK(dev != NULL);
  struct ibv_context *context = flowrt_sim_context(dev);
  struct ibv_qp *raw = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct ibv_qp *ud = flowrt_sim_create_qp(dev, IBV_QPT_UD);
  struct ibv_qp *rc = flowrt_sim_create_qp(dev, IBV_QPT_RC);
  CHECK(raw != NULL && ud != NULL && rc != NULL);
  CHECK(raw->context == context && raw->qp_type == IBV_QPT_RAW_PACKET);
  CHECK(raw->qp_num != ud->qp_num && ud->qp_num != rc->qp_num && raw->qp_num != rc->qp_num);

  struct eth_ipv4_udp rule;
  build_udp(&rule);
  struct ibv_flow *flow = ibv_create_flow(raw, ATTR(&rule));
  CHECK(flow != NULL);
  CHECK(flow != NULL && flow->context == context);
  CHECK(flowrt_sim_num_flows(dev) == 1);

  // Changing the caller's buffer afterwards changes nothing stored: the device keeps a copy.
  memset(&rule, 0xab, sizeof rule);

  // IPV4_EXT with a ttl mask: mlx5 refuses with EOPNOTSUPP (§3.2).
  struct eth_ipv4_ext ttl;
  memset(&ttl, 0, sizeof ttl);
  ttl.attr = make_attr(sizeof ttl, 2);
  ttl.eth = make_eth();
  ttl.ipv4.type = IBV_FLOW_SPEC_IPV4_EXT;
  ttl.ipv4.size = sizeof ttl.ipv4;
  ttl.ipv4.val.ttl = 64;
  ttl.ipv4.mask.ttl = 0xff;
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&ttl)) == NULL);
  CHECK(errno == EOPNOTSUPP);
  CHECK(flowrt_sim_num_flows(dev) == 1);

  // A UD QP takes flows; an RC QP does not (§2 check 9).
  build_udp(&rule);
  struct ibv_flow *on_ud = ibv_create_flow(ud, ATTR(&rule));
  CHECK(on_ud != NULL);
  errno = 0;
  CHECK(ibv_create_flow(rc, ATTR(&rule)) == NULL);
  CHECK(errno == EINVAL);
  CHECK(flowrt_sim_num_flows(dev) == 2);

  // A port the device does not have: EINVAL (§2 check 8).
  rule.attr.port = 2;
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&rule)) == NULL);
  CHECK(errno == EINVAL);
  rule.attr.port = 1;

  // HANDLE: any non-NULL pointer is taken, NULL is EINVAL.
  struct eth_handle handle;
  memset(&handle, 0, sizeof handle);
  handle.attr = make_attr(sizeof handle, 2);
  handle.eth = make_eth();
  struct ibv_flow_spec_action_handle action;
  memset(&action, 0, sizeof action);
  action.type = IBV_FLOW_SPEC_ACTION_HANDLE;
  action.size = sizeof action;
  memcpy(&handle.handle, &action, sizeof action);
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&handle)) == NULL);
  CHECK(errno == EINVAL);
  struct ibv_flow_action fake_action = {context};
  action.action = &fake_action;
  memcpy(&handle.handle, &action, sizeof action);
  struct ibv_flow *with_handle = ibv_create_flow(raw, ATTR(&handle));
  CHECK(with_handle != NULL);
  CHECK(flowrt_sim_num_flows(dev) == 3);

  CHECK(ibv_destroy_flow(flow) == 0);
  CHECK(flowrt_sim_num_flows(dev) == 2);
  // A handle that is no (longer a) flow of the device: EINVAL, nothing read beyond `context`.
  struct ibv_flow bogus = {0, context, 99};
  CHECK(ibv_destroy_flow(&bogus) == EINVAL);
  CHECK(ibv_destroy_flow(on_ud) == 0);
  CHECK(flowrt_sim_num_flows(dev) == 1);

  // with_handle and the QPs are left for flowrt_sim_close (checked by ASan's leak report).
  flowrt_sim_destroy_qp(rc);
  flowrt_sim_close(dev);
}

static void test_counters_mlx5(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 1);
  struct ibv_context *context = flowrt_sim_context(dev);
  struct ibv_qp *raw = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);

  struct ibv_counters *counters = attached_counters(context);
  CHECK(counters != NULL);
  CHECK(counters != NULL && counters->context == context);
  CHECK(flowrt_sim_num_counters(dev) == 1);

  // Attach errors, in the mlx5 provider's order (§1.6).
  struct ibv_counter_attach_attr bad_desc = {(enum ibv_counter_description)7, 2, 0};
  struct ibv_counter_attach_attr bad_mask = {IBV_COUNTER_PACKETS, 2, 1};
  struct ibv_counter_attach_attr more = {IBV_COUNTER_PACKETS, 2, 0};
  CHECK(ibv_attach_counters_point_flow(counters, &bad_desc, NULL) == ENOTSUP);
  CHECK(ibv_attach_counters_point_flow(counters, &bad_mask, NULL) == EOPNOTSUPP);

  struct eth_ipv4_udp_count rule;
  build_udp_count(&rule, counters);
  struct ibv_flow *flow = ibv_create_flow(raw, ATTR(&rule));
  CHECK(flow != NULL);
  CHECK(flowrt_sim_num_flows(dev) == 1);
  CHECK(ibv_attach_counters_point_flow(counters, &more, flow) == ENOTSUP);
  CHECK(ibv_attach_counters_point_flow(counters, &more, NULL) == EBUSY);

  // A second flow may share the counters (they accumulate, §1.6).
  struct ibv_flow *second = ibv_create_flow(raw, ATTR(&rule));
  CHECK(second != NULL);

  uint64_t values[4] = {7, 7, 7, 7};
  CHECK(ibv_read_counters(counters, values, 4, IBV_READ_COUNTERS_ATTR_PREFER_CACHED) == 0);
  CHECK(values[0] == 0 && values[1] == 0 && values[2] == 0 && values[3] == 0);

  // COUNT naming counters that were never attached: EINVAL ("never called", §1.6).
  struct ibv_counters_init_attr init;
  memset(&init, 0, sizeof init);
  struct ibv_counters *bare = ibv_create_counters(context, &init);
  CHECK(bare != NULL);
  struct eth_ipv4_udp_count bare_rule;
  build_udp_count(&bare_rule, bare);
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&bare_rule)) == NULL);
  CHECK(errno == EINVAL);
  // COUNT naming something that is not a counters object of the device: EINVAL.
  struct ibv_counters foreign = {context};
  build_udp_count(&bare_rule, &foreign);
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&bare_rule)) == NULL);
  CHECK(errno == EINVAL);
  CHECK(flowrt_sim_num_flows(dev) == 2);

  // Destroy order: counters are busy while a flow uses them, free once none does.
  CHECK(ibv_destroy_counters(counters) == EBUSY);
  CHECK(ibv_destroy_flow(flow) == 0);
  CHECK(ibv_destroy_counters(counters) == EBUSY);
  CHECK(ibv_destroy_flow(second) == 0);
  CHECK(ibv_destroy_counters(counters) == 0);
  CHECK(flowrt_sim_num_counters(dev) == 1);
  // A handle the device never made is EINVAL. (A freed one cannot be tested: the verbs.h entry
  // point itself reads its `context` before the device sees it.)
  CHECK(ibv_destroy_counters(&foreign) == EINVAL);
  CHECK(ibv_read_counters(&foreign, values, 4, 0) == EINVAL);
  CHECK(ibv_attach_counters_point_flow(&foreign, &more, NULL) == EINVAL);

  // A counters init with an unknown comp_mask: EOPNOTSUPP.
  init.comp_mask = 1;
  errno = 0;
  CHECK(ibv_create_counters(context, &init) == NULL);
  CHECK(errno == EOPNOTSUPP);

  // Flows and counters left behind, with a flow using counters: close frees them all.
  struct ibv_counters *left = attached_counters(context);
  build_udp_count(&rule, left);
  CHECK(ibv_create_flow(raw, ATTR(&rule)) != NULL);
  CHECK(flowrt_sim_num_flows(dev) == 1 && flowrt_sim_num_counters(dev) == 2);
  flowrt_sim_close(dev);
}

static void test_failure_injection(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 1);
  struct ibv_context *context = flowrt_sim_context(dev);
  struct ibv_qp *raw = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct eth_ipv4_udp rule;
  build_udp(&rule);
  struct ibv_counters_init_attr init;
  memset(&init, 0, sizeof init);

  unsigned before = flowrt_sim_num_calls(dev);
  flowrt_sim_fail_call(dev, 2, ENOMEM);
  struct ibv_flow *first = ibv_create_flow(raw, ATTR(&rule));
  CHECK(first != NULL);
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&rule)) == NULL);
  CHECK(errno == ENOMEM);
  CHECK(flowrt_sim_num_flows(dev) == 1);
  struct ibv_flow *third = ibv_create_flow(raw, ATTR(&rule));
  CHECK(third != NULL);
  CHECK(flowrt_sim_num_flows(dev) == 2);
  CHECK(flowrt_sim_num_calls(dev) == before + 3);

  // Each op can be made to fail, and then changes nothing.
  flowrt_sim_fail_call(dev, 1, EIO);
  CHECK(ibv_destroy_flow(first) == EIO);
  CHECK(flowrt_sim_num_flows(dev) == 2);
  flowrt_sim_fail_call(dev, 1, ENOMEM);
  errno = 0;
  CHECK(ibv_create_counters(context, &init) == NULL);
  CHECK(errno == ENOMEM);
  CHECK(flowrt_sim_num_counters(dev) == 0);
  struct ibv_counters *counters = ibv_create_counters(context, &init);
  CHECK(counters != NULL);
  struct ibv_counter_attach_attr packets = {IBV_COUNTER_PACKETS, 0, 0};
  flowrt_sim_fail_call(dev, 1, EAGAIN);
  CHECK(ibv_attach_counters_point_flow(counters, &packets, NULL) == EAGAIN);
  // The failed attach left no attach point: a COUNT rule on these counters is still refused.
  struct eth_ipv4_udp_count count_rule;
  build_udp_count(&count_rule, counters);
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&count_rule)) == NULL);
  CHECK(errno == EINVAL);
  uint64_t value = 0;
  flowrt_sim_fail_call(dev, 1, EIO);
  CHECK(ibv_read_counters(counters, &value, 1, 0) == EIO);
  flowrt_sim_fail_call(dev, 1, EIO);
  CHECK(ibv_destroy_counters(counters) == EIO);
  CHECK(flowrt_sim_num_counters(dev) == 1);
  // Off again: 0 disables it.
  flowrt_sim_fail_call(dev, 1, 0);
  CHECK(ibv_destroy_counters(counters) == 0);
  CHECK(ibv_destroy_flow(first) == 0);
  CHECK(flowrt_sim_num_flows(dev) == 1);

  // Destroying a QP takes its flows with it.
  flowrt_sim_destroy_qp(raw);
  CHECK(flowrt_sim_num_flows(dev) == 0);
  flowrt_sim_close(dev);
}

static void test_mlx4(void) {
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX4, NULL, 2);
  CHECK(dev != NULL);
  struct ibv_context *context = flowrt_sim_context(dev);
  struct ibv_qp *raw = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);

  struct eth_tag tag;
  memset(&tag, 0, sizeof tag);
  tag.attr = make_attr(sizeof tag, 2);
  tag.eth = make_eth();
  tag.tag.type = IBV_FLOW_SPEC_ACTION_TAG;
  tag.tag.size = sizeof tag.tag;
  tag.tag.tag_id = 0x42;
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&tag)) == NULL);
  CHECK(errno == EINVAL);
  CHECK(flowrt_sim_num_flows(dev) == 0);

  struct eth_ipv4_udp rule;
  build_udp(&rule);
  rule.attr.port = 2;
  CHECK(ibv_create_flow(raw, ATTR(&rule)) != NULL);
  CHECK(flowrt_sim_num_flows(dev) == 1);

  // The mlx4 provider has no counters ops: verbs.h itself answers EOPNOTSUPP (§1.6).
  unsigned calls = flowrt_sim_num_calls(dev);
  struct ibv_counters_init_attr init;
  memset(&init, 0, sizeof init);
  errno = 0;
  CHECK(ibv_create_counters(context, &init) == NULL);
  CHECK(errno == EOPNOTSUPP);
  CHECK(flowrt_sim_num_calls(dev) == calls);
  flowrt_sim_close(dev);
}

static void test_open(void) {
  errno = 0;
  CHECK(flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, 0) == NULL);
  CHECK(errno == EINVAL);
  errno = 0;
  CHECK(flowrt_sim_open((enum flowrt_sim_profile)9, NULL, 1) == NULL);
  CHECK(errno == EINVAL);
  flowrt_sim_close(NULL);

  // Caps reach the validator: with 8 mlx5 priorities, priority 8 is refused with the driver's
  // ENOMEM (§3.1).
  struct flowrt_sim_caps caps = flowrt_sim_default_caps();
  caps.mlx5_num_prios = 8;
  struct flowrt_sim_device *dev = flowrt_sim_open(FLOWRT_SIM_MLX5, &caps, 1);
  struct ibv_qp *raw = flowrt_sim_create_qp(dev, IBV_QPT_RAW_PACKET);
  struct eth_ipv4_udp rule;
  build_udp(&rule);
  rule.attr.priority = 7;
  CHECK(ibv_create_flow(raw, ATTR(&rule)) != NULL);
  rule.attr.priority = 8;
  errno = 0;
  CHECK(ibv_create_flow(raw, ATTR(&rule)) == NULL);
  CHECK(errno == ENOMEM);
  CHECK(flowrt_sim_num_flows(dev) == 1);
  flowrt_sim_close(dev);
}

int main(void) {
  test_open();
  test_flows_mlx5();
  test_counters_mlx5();
  test_failure_injection();
  test_mlx4();
  if (failures != 0) {
    fprintf(stderr, "%u of %u checks failed\n", failures, checks);
    return 1;
  }
  printf("all %u checks passed\n", checks);
  return 0;
}
