/* What the sim's C tests build by hand: rules (an ibv_flow_attr followed by
 * packed specs) installed through the real libibverbs ibv_create_flow(), wire
 * frames to feed flowrt_sim_receive(), and a device with three raw QPs.
 * Include after check.h. The helpers are static inline so that a test which
 * uses only some of them compiles without unused-function warnings. */
#ifndef FLOWRT_TESTS_RUNTIME_SIM_RULES_H
#define FLOWRT_TESTS_RUNTIME_SIM_RULES_H

#include <errno.h>
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "flowrt/sim.h"

// --- Rules: an attr followed by packed specs, built in an aligned byte buffer ------------

struct rule {
  union {
    struct ibv_flow_attr attr;
    uint64_t align;
    unsigned char bytes[512];
  } u;
  size_t len;
};

static inline void rule_init(struct rule *r, uint32_t type, uint16_t priority, uint8_t port,
                             uint32_t flags) {
  memset(r, 0, sizeof *r);
  r->u.attr.type = (enum ibv_flow_attr_type)type;
  r->u.attr.priority = priority;
  r->u.attr.port = port;
  r->u.attr.flags = flags;
  r->len = sizeof r->u.attr;
  r->u.attr.size = (uint16_t)r->len;
}

static inline void rule_add(struct rule *r, const void *spec, size_t size) {
  memcpy(r->u.bytes + r->len, spec, size);
  r->len += size;
  r->u.attr.size = (uint16_t)r->len;
  ++r->u.attr.num_of_specs;
}

static const uint8_t kMacA[6] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t kMacB[6] = {0x00, 0x66, 0x77, 0x88, 0x99, 0xaa};

static inline void add_tag(struct rule *r, uint32_t tag) {
  struct ibv_flow_spec_action_tag s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_ACTION_TAG;
  s.size = sizeof s;
  s.tag_id = tag;
  rule_add(r, &s, sizeof s);
}

static inline void add_drop(struct rule *r) {
  struct ibv_flow_spec_action_drop s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_ACTION_DROP;
  s.size = sizeof s;
  rule_add(r, &s, sizeof s);
}

static inline void add_count(struct rule *r, struct ibv_counters *counters) {
  struct ibv_flow_spec_counter_action s;
  memset(&s, 0, sizeof s);
  s.type = IBV_FLOW_SPEC_ACTION_COUNT;
  s.size = sizeof s;
  s.counters = counters;
  rule_add(r, &s, sizeof s);
}

/// ibv_create_flow() must succeed; prints errno when it does not.
static inline struct ibv_flow *install(struct ibv_qp *qp, struct rule *r) {
  struct ibv_flow *flow = ibv_create_flow(qp, &r->u.attr);
  CHECK(flow != NULL);
  if (flow == NULL) {
    fprintf(stderr, "  ibv_create_flow: errno %d\n", errno);
  }
  return flow;
}

/// Counters with packets at index 0 and bytes at index 1, ready for a COUNT spec;
/// NULL (after a failed check) when the device refuses them.
static inline struct ibv_counters *attached_counters(struct ibv_context *context) {
  struct ibv_counters_init_attr init;
  memset(&init, 0, sizeof init);
  struct ibv_counters *counters = ibv_create_counters(context, &init);
  CHECK(counters != NULL);
  if (counters == NULL) {
    return NULL;
  }
  struct ibv_counter_attach_attr packets = {IBV_COUNTER_PACKETS, 0, 0};
  struct ibv_counter_attach_attr bytes = {IBV_COUNTER_BYTES, 1, 0};
  CHECK(ibv_attach_counters_point_flow(counters, &packets, NULL) == 0);
  CHECK(ibv_attach_counters_point_flow(counters, &bytes, NULL) == 0);
  return counters;
}

// --- Frames ------------------------------------------------------------------------------

struct frame {
  uint8_t b[256];
  size_t n;
};

static inline void put(struct frame *f, const void *p, size_t n) {
  memcpy(f->b + f->n, p, n);
  f->n += n;
}

static inline void put16(struct frame *f, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  put(f, b, 2);
}

static inline void put32(struct frame *f, uint32_t v) {
  put16(f, (uint16_t)(v >> 16));
  put16(f, (uint16_t)v);
}

// Ethernet to `dst` from kMacB; an 802.1Q tag with TCI `vlan` unless vlan < 0.
static inline void put_eth(struct frame *f, const uint8_t *dst, int vlan, uint16_t type) {
  put(f, dst, 6);
  put(f, kMacB, 6);
  if (vlan >= 0) {
    put16(f, 0x8100);
    put16(f, (uint16_t)vlan);
  }
  put16(f, type);
}

// IPv4 without options; total length and checksum are not looked at.
static inline void put_ipv4(struct frame *f, uint32_t src, uint32_t dst, uint8_t proto) {
  const uint8_t head[12] = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0};
  put(f, head, sizeof head);
  put32(f, src);
  put32(f, dst);
}

static inline void put_tcp(struct frame *f, uint16_t sport, uint16_t dport) {
  put16(f, sport);
  put16(f, dport);
  const uint8_t rest[16] = {0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0};
  put(f, rest, sizeof rest);
}

// ETH to kMacA + IPv4 10.0.0.1 -> 10.0.0.2 + TCP sport -> dport.
static inline void tcp_frame(struct frame *f, uint16_t sport, uint16_t dport) {
  f->n = 0;
  put_eth(f, kMacA, -1, 0x0800);
  put_ipv4(f, 0x0a000001, 0x0a000002, 6);
  put_tcp(f, sport, dport);
}

/// flowrt_sim_receive() must succeed; the result is zeroed when it does not.
static inline struct flowrt_sim_result receive(struct flowrt_sim_device *dev, uint8_t port,
                                               const struct frame *f) {
  struct flowrt_sim_result res;
  memset(&res, 0xee, sizeof res);
  int rc = flowrt_sim_receive(dev, port, f->b, f->n, &res);
  CHECK(rc == 0);
  if (rc != 0) {
    memset(&res, 0, sizeof res);
  }
  return res;
}

// --- A device with three raw-packet QPs ---------------------------------------------------

struct bench {
  struct flowrt_sim_device *dev;
  struct ibv_qp *a;
  struct ibv_qp *b;
  struct ibv_qp *c;
};

static inline struct bench open_bench(uint8_t num_ports) {
  struct bench t;
  t.dev = flowrt_sim_open(FLOWRT_SIM_MLX5, NULL, num_ports);
  CHECK(t.dev != NULL);
  t.a = flowrt_sim_create_qp(t.dev, IBV_QPT_RAW_PACKET);
  t.b = flowrt_sim_create_qp(t.dev, IBV_QPT_RAW_PACKET);
  t.c = flowrt_sim_create_qp(t.dev, IBV_QPT_RAW_PACKET);
  CHECK(t.a != NULL && t.b != NULL && t.c != NULL);
  return t;
}

#endif /* FLOWRT_TESTS_RUNTIME_SIM_RULES_H */
