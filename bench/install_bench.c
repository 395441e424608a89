/* install-bench POLICY.fbin [REPEAT]: what libflowrt costs per rule over a
 * plain loop of ibv_create_flow() calls, on a zero-cost provider (a
 * verbs_context whose create/destroy flow and counters ops do nothing but
 * hand out handles), so that only the runtime's own work is measured.
 *
 * Per phase, best of REPEAT (default 5): the reference loop (ibv_create_flow
 * over buffers built beforehand, then ibv_destroy_flow), flowrt_policy_open
 * (validation of every byte), flowrt_install, flowrt_update to the same
 * policy (every rule kept), flowrt_update to a copy with one rule changed,
 * and flowrt_uninstall; then the install overhead per rule. Peak RSS at the
 * end. bench/README.md has the usage. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <infiniband/verbs.h>

#include "flowrt/flowrt.h"

/* --- The zero-cost provider ------------------------------------------------------------- */

static struct verbs_context vctx;
static struct ibv_device device = {.name = "zero0"};
static struct ibv_flow *flow_pool;
static size_t flow_next, flow_cap;
static struct ibv_counters counters_pool[64];
static unsigned counters_next;

static struct ibv_flow *zero_create_flow(struct ibv_qp *qp, struct ibv_flow_attr *attr) {
  if (flow_next == flow_cap) {
    flow_next = 0; /* handles are only compared, never freed */
  }
  flow_pool[flow_next].context = qp->context; /* ibv_destroy_flow() dispatches on it */
  return &flow_pool[flow_next++];
}

static int zero_destroy_flow(struct ibv_flow *flow) {
  return 0;
}

static struct ibv_counters *zero_create_counters(struct ibv_context *context,
                                                 struct ibv_counters_init_attr *attr) {
  struct ibv_counters *c = &counters_pool[counters_next++ % 64];
  c->context = context;
  return c;
}

static int zero_attach(struct ibv_counters *c, struct ibv_counter_attach_attr *a,
                       struct ibv_flow *flow) {
  return 0;
}

static int zero_destroy_counters(struct ibv_counters *c) {
  return 0;
}

static int zero_query_device_ex(struct ibv_context *context,
                                const struct ibv_query_device_ex_input *input,
                                struct ibv_device_attr_ex *attr, size_t size) {
  memset(attr, 0, sizeof *attr);
  attr->orig_attr.vendor_id = 0x02c9;
  attr->orig_attr.vendor_part_id = 4125;
  attr->orig_attr.phys_port_cnt = 1;
  attr->orig_attr.device_cap_flags = IBV_DEVICE_MANAGED_FLOW_STEERING;
  return 0;
}

static int zero_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr,
                           size_t size) {
  memset(attr, 0, sizeof *attr);
  attr->state = IBV_PORT_ACTIVE;
  attr->link_layer = IBV_LINK_LAYER_ETHERNET;
  return 0;
}

static struct ibv_context *zero_context(size_t max_flows) {
  flow_cap = max_flows;
  flow_pool = calloc(max_flows, sizeof *flow_pool);
  vctx.sz = sizeof vctx;
  vctx.context.abi_compat = __VERBS_ABI_IS_EXTENDED;
  vctx.context.device = &device;
  vctx.ibv_create_flow = zero_create_flow;
  vctx.ibv_destroy_flow = zero_destroy_flow;
  vctx.create_counters = zero_create_counters;
  vctx.attach_counters_point_flow = zero_attach;
  vctx.destroy_counters = zero_destroy_counters;
  vctx.query_device_ex = zero_query_device_ex;
  vctx.query_port = zero_query_port;
  return &vctx.context;
}

/* --- Measuring ---------------------------------------------------------------------------- */

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *data = malloc((size_t)n);
  if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n) {
    fprintf(stderr, "%s: cannot read\n", path);
    exit(2);
  }
  fclose(f);
  *size = (size_t)n;
  return data;
}

static struct ibv_qp qps[256];

static void bind_all(struct flowrt_policy *p, struct ibv_context *context) {
  struct flowrt_error err;
  for (uint32_t i = 0; i < flowrt_policy_num_symbols(p, FLOWRT_QUEUE) && i < 256; ++i) {
    qps[i].context = context;
    qps[i].qp_type = IBV_QPT_RAW_PACKET;
    if (flowrt_bind_queue(p, flowrt_policy_symbol(p, FLOWRT_QUEUE, i), &qps[i], &err) != 0) {
      fprintf(stderr, "install-bench: %s\n", err.message);
      exit(1);
    }
  }
  static struct ibv_qp anchor;
  anchor.context = context;
  flowrt_bind_anchor(p, &anchor, &err);
}

static struct flowrt_policy *open_policy(const void *data, size_t size) {
  struct flowrt_error err;
  struct flowrt_policy *p = flowrt_policy_open_mem(data, size, &err);
  if (p == NULL) {
    fprintf(stderr, "install-bench: %s\n", err.message);
    exit(1);
  }
  return p;
}

#define BEST(var, expr)                                                                            \
  do {                                                                                             \
    double t0_ = now();                                                                            \
    expr;                                                                                          \
    double dt_ = now() - t0_;                                                                      \
    if (dt_ < (var)) {                                                                             \
      (var) = dt_;                                                                                 \
    }                                                                                              \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: install-bench POLICY.fbin [REPEAT]\n");
    return 2;
  }
  int repeat = argc == 3 ? atoi(argv[2]) : 5;
  size_t size = 0;
  unsigned char *data = read_file(argv[1], &size);
  struct ibv_context *context = zero_context(1u << 22);

  /* The reference: the buffers a hand-written loader would build once (copied, pointers
   * filled), then one ibv_create_flow() per rule and one ibv_destroy_flow() per flow. */
  struct flowrt_policy *p = open_policy(data, size);
  bind_all(p, context);
  const struct flowrt_fbin *f = flowrt_policy_fbin(p);
  uint32_t n = flowrt_policy_num_rules(p);
  size_t total = 0;
  for (uint32_t i = 0; i < n; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(f, i, &r);
    total += (r.attr_size + 7u) & ~7u;
  }
  unsigned char *buffers = aligned_alloc(8, total + 8);
  struct ibv_flow_attr **attrs = malloc(n * sizeof *attrs);
  struct ibv_qp **rule_qp = malloc(n * sizeof *rule_qp);
  struct ibv_flow **flows = malloc(n * sizeof *flows);
  size_t at = 0;
  for (uint32_t i = 0; i < n; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(f, i, &r);
    memcpy(buffers + at, r.attr, r.attr_size);
    attrs[i] = (struct ibv_flow_attr *)(buffers + at);
    rule_qp[i] = r.queue < 256 ? &qps[r.queue] : &qps[0];
    at += (r.attr_size + 7u) & ~7u;
  }
  double t_plain = 1e9, t_plain_destroy = 1e9, t_open = 1e9, t_install = 1e9, t_keep = 1e9,
         t_one = 1e9, t_uninstall = 1e9;
  /* A copy of the policy whose rule 0 matches another IPv4 destination (bench/gen_fbin.py's
   * rules start with an IPv4 spec): one rule to replace, checksum recomputed. */
  struct flowrt_error err;
  struct flowrt_fbin_rule r0;
  flowrt_fbin_rule(f, 0, &r0);
  unsigned char *changed = malloc(size);
  memcpy(changed, data, size);
  changed[r0.attr_offset + 20 + offsetof(struct ibv_flow_spec_ipv4, val.dst_ip)] ^= 1;
  memset(changed + 20, 0, 4);
  uint32_t crc = flowrt_fbin_crc32(0, changed, size);
  for (int i = 0; i < 4; ++i) {
    changed[20 + i] = (unsigned char)(crc >> (8 * i));
  }
  struct flowrt_policy *q = open_policy(changed, size);
  bind_all(q, context);
  for (int k = 0; k < repeat; ++k) {
    BEST(
        t_plain,
        for (uint32_t i = 0; i < n; ++i) { flows[i] = ibv_create_flow(rule_qp[i], attrs[i]); });
    BEST(
        t_plain_destroy, for (uint32_t i = n; i > 0; --i) { ibv_destroy_flow(flows[i - 1]); });
    struct flowrt_policy *fresh = NULL;
    BEST(t_open, fresh = open_policy(data, size));
    flowrt_policy_close(fresh);
    struct flowrt_installation *inst = NULL;
    BEST(t_install, inst = flowrt_install(context, p, NULL, &err));
    if (inst == NULL) {
      fprintf(stderr, "install-bench: %s\n", err.message);
      return 1;
    }
    int rc = 0;
    BEST(t_keep, rc = flowrt_update(inst, p, 0, &err));
    if (rc == 0) {
      BEST(t_one, rc = flowrt_update(inst, q, 0, &err));
    }
    if (rc != 0) {
      fprintf(stderr, "install-bench: %s\n", err.message);
      return 1;
    }
    BEST(t_uninstall, flowrt_uninstall(inst, NULL));
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("policy %s: %u rules, %zu bytes\n", argv[1], n, size);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "reference ibv_create_flow loop", t_plain * 1e3,
         t_plain * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "reference ibv_destroy_flow loop",
         t_plain_destroy * 1e3, t_plain_destroy * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "flowrt_policy_open (validate)", t_open * 1e3,
         t_open * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "flowrt_install", t_install * 1e3,
         t_install * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "flowrt_update, nothing changed", t_keep * 1e3,
         t_keep * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "flowrt_update, one rule changed", t_one * 1e3,
         t_one * 1e9 / n);
  printf("%-34s %10.3f ms  %7.1f ns/rule\n", "flowrt_uninstall", t_uninstall * 1e3,
         t_uninstall * 1e9 / n);
  printf("install overhead over the reference: %.1f ns/rule (target <= 1000); ratio %.2f\n",
         (t_install - t_plain) * 1e9 / n, t_install / t_plain);
  printf("peak RSS %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
  flowrt_policy_close(p);
  flowrt_policy_close(q);
  free(buffers);
  free(attrs);
  free(rule_qp);
  free(flows);
  free(flow_pool);
  free(data);
  free(changed);
  return 0;
}
