// Installing a bound policy all-or-nothing, updating it make-before-break, counters, uninstall.
#include "internal.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// One flow of an installation: the filled copy of its rule's attr buffer and the QP it is on.
struct flow_entry {
  struct ibv_flow *flow; // NULL until created
  struct ibv_qp *qp;
  uint32_t rule; // the index of the rule in its policy
  uint32_t size;
  unsigned char *attr; // 8-byte aligned, inside the plan's block
};

// A policy's flows as placed on the device: every selected rule, in policy order.
struct plan {
  unsigned char *block;
  struct flow_entry *entries;
  uint32_t num;
  int32_t shift; // added to the priority of every NORMAL rule
};

// The counters object of one counter symbol of the policy in use.
struct counter_slot {
  struct ibv_counters *obj;
  bool owned; // created (and destroyed) by the runtime
  bool fresh; // created by the update in progress
};

struct flowrt_installation {
  struct ibv_context *context;
  struct flowrt_policy *policy;
  uint8_t port;
  uint32_t levels;
  struct plan plan;
  struct counter_slot *counters;   // one per counter symbol of `policy`
  struct ibv_counters **leftovers; // owned objects whose destroy failed; retried at uninstall
  uint32_t num_leftovers;
};

static void free_plan(struct plan *p) {
  free(p->block);
  free(p->entries);
  memset(p, 0, sizeof *p);
}

static const char *errno_name(int e) {
  switch (e) {
  case EINVAL:
    return "EINVAL";
  case ENOMEM:
    return "ENOMEM";
  case EOPNOTSUPP:
    return "EOPNOTSUPP";
  case EPERM:
    return "EPERM";
  case EACCES:
    return "EACCES";
  case EEXIST:
    return "EEXIST";
  case ENOSPC:
    return "ENOSPC";
  case ENXIO:
    return "ENXIO";
  case EBUSY:
    return "EBUSY";
  case ENOENT:
    return "ENOENT";
  case ENODEV:
    return "ENODEV";
  case EIO:
    return "EIO";
  case EAGAIN:
    return "EAGAIN";
  case EFAULT:
    return "EFAULT";
  default:
    return "errno";
  }
}

// Reports a failed verbs call on rule `rule` (or no rule), with the errno explained.
static int verbs_fail(struct flowrt_error *err, const struct flowrt_policy *p, uint32_t rule,
                      const char *call, int e) {
  if (e <= 0) {
    e = EIO; // a provider that failed without setting errno
  }
  char what[200];
  if (rule != FLOWRT_NO_RULE) {
    flowrt_policy_describe_rule(p, rule, what, sizeof what);
  } else {
    snprintf(what, sizeof what, "policy");
  }
  return flowrt_fail(err, e, rule, "%s: %s failed with %s (%s): %s", what, call, errno_name(e),
                     strerror(e), flowrt_explain_errno(p->fbin.profile, e));
}

static bool selected(const struct flowrt_installation *inst, const struct flowrt_fbin_rule *r) {
  return inst->port == 0 || r->port == inst->port;
}

static uint32_t default_levels(const struct flowrt_policy *p) {
  if (strcmp(p->fbin.profile, "mlx5") == 0) {
    // Capabilities are a comma-separated list of names, none a prefix of "prio16," falsely.
    const char *caps = p->fbin.capabilities;
    size_t n = strlen("prio16");
    for (const char *c = caps; (c = strstr(c, "prio16")) != NULL; c += n) {
      if ((c == caps || c[-1] == ',') && (c[n] == '\0' || c[n] == ',')) {
        return 16;
      }
    }
    return 8;
  }
  if (strcmp(p->fbin.profile, "mlx4") == 0) {
    return 4096;
  }
  return 65536;
}

// Checks that every rule of `p` that `inst` installs has what it needs bound, on `context`.
static int check_bindings(const struct flowrt_installation *inst, const struct flowrt_policy *p,
                          struct flowrt_error *err) {
  char what[200];
  if (p->anchor != NULL && p->anchor->context != inst->context) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE,
                       "the anchor QP belongs to another device than the one installing");
  }
  for (uint32_t q = 0; q < p->num_symbols[FLOWRT_QUEUE]; ++q) {
    if (p->queues[q] != NULL && p->queues[q]->context != inst->context) {
      return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE,
                         "queue '%s' is bound to a QP of another device than the one installing",
                         flowrt_fbin_symbol(&p->fbin, FLOWRT_FBIN_QUEUES, q));
    }
  }
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&p->fbin, i, &r);
    if (!selected(inst, &r)) {
      continue;
    }
    if (r.queue == FLOWRT_FBIN_NO_QUEUE && p->anchor == NULL) {
      flowrt_policy_describe_rule(p, i, what, sizeof what);
      return flowrt_fail(err, EINVAL, i,
                         "%s steers to no queue (a drop or egress rule) and no anchor QP is bound "
                         "to create it on; bind one with flowrt_bind_anchor()",
                         what);
    }
    if (r.queue != FLOWRT_FBIN_NO_QUEUE && p->queues[r.queue] == NULL) {
      flowrt_policy_describe_rule(p, i, what, sizeof what);
      return flowrt_fail(err, EINVAL, i,
                         "queue '%s' is not bound (%s steers to it); bind it with "
                         "flowrt_bind_queue()",
                         flowrt_fbin_symbol(&p->fbin, FLOWRT_FBIN_QUEUES, r.queue), what);
    }
    for (uint32_t b = 0; b < r.binding_count; ++b) {
      struct flowrt_fbin_binding bind;
      flowrt_fbin_rule_binding(&p->fbin, i, b, &bind);
      if (bind.kind == FLOWRT_FBIN_BIND_HANDLE && p->handles[bind.symbol] == NULL) {
        flowrt_policy_describe_rule(p, i, what, sizeof what);
        return flowrt_fail(err, EINVAL, i,
                           "handle '%s' is not bound (%s uses it); bind it with "
                           "flowrt_bind_handle()",
                           flowrt_fbin_symbol(&p->fbin, FLOWRT_FBIN_HANDLES, bind.symbol), what);
      }
    }
  }
  return 0;
}

// Builds the filled copies of the rules of `p` that `inst` installs, priorities moved by
// `shift`, with the counters objects of `counters`.
static int make_plan(const struct flowrt_installation *inst, const struct flowrt_policy *p,
                     const struct counter_slot *counters, int32_t shift, struct plan *out,
                     struct flowrt_error *err) {
  memset(out, 0, sizeof *out);
  out->shift = shift;
  size_t total = 0;
  uint32_t num = 0;
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&p->fbin, i, &r);
    if (selected(inst, &r)) {
      total += ((size_t)r.attr_size + 7) & ~(size_t)7;
      ++num;
    }
  }
  out->block = malloc(total > 0 ? total : 8);
  out->entries = calloc(num > 0 ? num : 1, sizeof *out->entries);
  if (out->block == NULL || out->entries == NULL) {
    free_plan(out);
    return flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory for %u rules", num);
  }
  size_t at = 0;
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&p->fbin, i, &r);
    if (!selected(inst, &r)) {
      continue;
    }
    struct flow_entry *e = &out->entries[out->num++];
    e->rule = i;
    e->size = r.attr_size;
    e->attr = out->block + at;
    e->qp = r.queue == FLOWRT_FBIN_NO_QUEUE ? p->anchor : p->queues[r.queue];
    at += ((size_t)r.attr_size + 7) & ~(size_t)7;
    memcpy(e->attr, r.attr, r.attr_size);
    for (uint32_t b = 0; b < r.binding_count; ++b) {
      struct flowrt_fbin_binding bind;
      flowrt_fbin_rule_binding(&p->fbin, i, b, &bind);
      void *object = bind.kind == FLOWRT_FBIN_BIND_COUNTER ? (void *)counters[bind.symbol].obj
                                                           : (void *)p->handles[bind.symbol];
      memcpy(e->attr + bind.pointer_offset, &object, sizeof object);
    }
    if (r.type == IBV_FLOW_ATTR_NORMAL && shift != 0 &&
        (p->floating == NULL || p->floating[i] == 0)) {
      uint16_t prio = (uint16_t)(r.priority + shift);
      e->attr[kAttrPriority] = (unsigned char)(prio & 0xff);
      e->attr[kAttrPriority + 1] = (unsigned char)(prio >> 8);
    }
  }
  return 0;
}

// Creates, in order, the flows of the `plan` entries that have none and that `skip` does not
// mark: a new plan's flows, or the old flows a failed update destroyed. Returns 0, or -errno
// with `*failed` set to the failing entry (the caller destroys what was created).
static int create_flows(struct plan *plan, const bool *skip, uint32_t *failed) {
  for (uint32_t i = 0; i < plan->num; ++i) {
    struct flow_entry *e = &plan->entries[i];
    if (e->flow != NULL || (skip != NULL && skip[i])) {
      continue;
    }
    errno = 0;
    e->flow = ibv_create_flow(e->qp, (struct ibv_flow_attr *)e->attr);
    if (e->flow == NULL) {
      *failed = i;
      return errno != 0 ? -errno : -EIO;
    }
  }
  return 0;
}

// Destroys the created flows of `plan` not marked in `keep`, last first; returns 0 or the first
// failure (positive errno), continuing past failures (the flow is then forgotten).
static int destroy_flows(struct plan *plan, const bool *keep) {
  int first = 0;
  for (uint32_t i = plan->num; i > 0; --i) {
    struct flow_entry *e = &plan->entries[i - 1];
    if (e->flow == NULL || (keep != NULL && keep[i - 1])) {
      continue;
    }
    int rc = ibv_destroy_flow(e->flow);
    if (rc != 0 && first == 0) {
      first = rc;
    }
    e->flow = NULL;
  }
  return first;
}

// Adds to `err` that undoing failed too: ibv_destroy_flow() refused (errno `stuck`, 0 if it
// did not) and a flow may be left on the device, out of the installation's hands.
static void note_stuck(struct flowrt_error *err, int stuck) {
  if (stuck == 0 || err == NULL) {
    return;
  }
  size_t len = strlen(err->message);
  snprintf(err->message + len, sizeof err->message - len,
           "; removing the flows already created failed too (%s), so some may be left on the "
           "device",
           strerror(stuck));
}

// Creates and statically attaches (packets at index 0, bytes at 1; verbs-facts §1.6) a counters
// object for counter `index` of `p`.
static int create_counter(struct ibv_context *context, const struct flowrt_policy *p,
                          uint32_t index, struct counter_slot *slot, struct flowrt_error *err) {
  const char *name = flowrt_fbin_symbol(&p->fbin, FLOWRT_FBIN_COUNTERS, index);
  struct ibv_counters_init_attr init;
  memset(&init, 0, sizeof init);
  errno = 0;
  struct ibv_counters *c = ibv_create_counters(context, &init);
  if (c == NULL) {
    int e = errno != 0 ? errno : EIO;
    return flowrt_fail(err, e, FLOWRT_NO_RULE,
                       "counter '%s': ibv_create_counters failed with %s (%s)%s", name,
                       errno_name(e), strerror(e),
                       e == EOPNOTSUPP ? ": the device has no flow counters (mlx4 has none, "
                                         "verbs-facts §1.6)"
                                       : "");
  }
  struct ibv_counter_attach_attr points[2] = {{IBV_COUNTER_PACKETS, 0, 0},
                                              {IBV_COUNTER_BYTES, 1, 0}};
  for (int k = 0; k < 2; ++k) {
    int rc = ibv_attach_counters_point_flow(c, &points[k], NULL);
    if (rc != 0) {
      ibv_destroy_counters(c);
      return flowrt_fail(err, rc, FLOWRT_NO_RULE,
                         "counter '%s': ibv_attach_counters_point_flow(%s) failed with %s (%s)",
                         name, k == 0 ? "packets" : "bytes", errno_name(rc), strerror(rc));
    }
  }
  slot->obj = c;
  slot->owned = true;
  slot->fresh = true;
  return 0;
}

// Destroys the counters objects the update in progress (or the install) created.
static void destroy_fresh_counters(struct counter_slot *slots, uint32_t n) {
  for (uint32_t i = n; i > 0; --i) {
    if (slots[i - 1].fresh) {
      ibv_destroy_counters(slots[i - 1].obj);
      slots[i - 1].obj = NULL;
      slots[i - 1].fresh = false;
    }
  }
}

// Fills `slots` for policy `p`: bound objects, objects of `old` (the installation's current
// counters) with the same name, new ones for the rest. `reused` marks old slots taken over.
static int prepare_counters(struct flowrt_installation *inst, const struct flowrt_policy *p,
                            struct counter_slot *slots, bool *reused, struct flowrt_error *err) {
  uint32_t n = p->num_symbols[FLOWRT_COUNTER];
  const struct flowrt_policy *old = inst->policy;
  for (uint32_t i = 0; i < n; ++i) {
    if (p->counters[i] != NULL) {
      slots[i].obj = p->counters[i];
      continue;
    }
    uint32_t j;
    const char *name = flowrt_fbin_symbol(&p->fbin, FLOWRT_FBIN_COUNTERS, i);
    if (old != NULL && flowrt_fbin_find_symbol(&old->fbin, FLOWRT_FBIN_COUNTERS, name, &j) == 0 &&
        inst->counters[j].owned && !reused[j]) {
      slots[i].obj = inst->counters[j].obj;
      slots[i].owned = true;
      reused[j] = true;
      continue;
    }
    int rc = create_counter(inst->context, p, i, &slots[i], err);
    if (rc != 0) {
      destroy_fresh_counters(slots, i);
      return rc;
    }
  }
  return 0;
}

struct flowrt_installation *flowrt_install(struct ibv_context *context,
                                           struct flowrt_policy *policy,
                                           const struct flowrt_install_attr *attr,
                                           struct flowrt_error *err) {
  if (context == NULL || policy == NULL) {
    flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no device or no policy given");
    return NULL;
  }
  if (attr != NULL && attr->comp_mask != 0) {
    flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "flowrt_install_attr.comp_mask must be 0");
    return NULL;
  }
  if (attr != NULL && attr->priority_levels > 65536) {
    flowrt_fail(err, EINVAL, FLOWRT_NO_RULE,
                "flowrt_install_attr.priority_levels is %u; priorities are 16 bits (at most 65536 "
                "levels)",
                attr->priority_levels);
    return NULL;
  }
  if (policy->installed != NULL) {
    flowrt_fail(err, EBUSY, FLOWRT_NO_RULE,
                "the policy is already installed; open it again to install it twice");
    return NULL;
  }
  struct flowrt_installation *inst = calloc(1, sizeof *inst);
  struct counter_slot *slots = calloc(policy->num_symbols[FLOWRT_COUNTER] + 1, sizeof *slots);
  if (inst == NULL || slots == NULL) {
    free(inst);
    free(slots);
    flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory");
    return NULL;
  }
  inst->context = context;
  inst->port = attr != NULL ? attr->port : 0;
  inst->levels =
      attr != NULL && attr->priority_levels != 0 ? attr->priority_levels : default_levels(policy);
  int rc = check_bindings(inst, policy, err);
  if (rc == 0) {
    rc = flowrt_check_device_port(context, policy, inst->port, err);
  }
  if (rc == 0) {
    bool unused = false;
    rc = prepare_counters(inst, policy, slots, &unused, err);
  }
  if (rc == 0) {
    rc = make_plan(inst, policy, slots, 0, &inst->plan, err);
    if (rc != 0) {
      destroy_fresh_counters(slots, policy->num_symbols[FLOWRT_COUNTER]);
    }
  }
  if (rc == 0) {
    uint32_t failed = 0;
    rc = create_flows(&inst->plan, NULL, &failed);
    if (rc != 0) {
      int stuck = destroy_flows(&inst->plan, NULL);
      destroy_fresh_counters(slots, policy->num_symbols[FLOWRT_COUNTER]);
      verbs_fail(err, policy, inst->plan.entries[failed].rule, "ibv_create_flow", -rc);
      note_stuck(err, stuck);
      free_plan(&inst->plan);
    }
  }
  if (rc != 0) {
    free(slots);
    free(inst);
    errno = -rc;
    return NULL;
  }
  for (uint32_t i = 0; i < policy->num_symbols[FLOWRT_COUNTER]; ++i) {
    slots[i].fresh = false;
  }
  inst->counters = slots;
  inst->policy = policy;
  policy->installed = inst;
  return inst;
}

// ---------------------------------------------------------------------------------------------
// Updates.

// Where a match spec's value and mask are, and the filter's size, from the verbs.h structs
// (verbs-facts §1.3: the value follows the 6-byte type+size header at the filter's alignment,
// so ETH and TCP/UDP values start at 6, the others at 8). False for MPLS and actions, whose
// fields are never compared here.
static bool spec_layout(uint32_t kind, unsigned *val, unsigned *mask, unsigned *size) {
#define FLOWRT_LAYOUT(spec, filter)                                                                \
  *val = offsetof(struct spec, val);                                                               \
  *mask = offsetof(struct spec, mask);                                                             \
  *size = sizeof(struct filter);                                                                   \
  return true
  switch (kind) {
  case IBV_FLOW_SPEC_ETH:
    FLOWRT_LAYOUT(ibv_flow_spec_eth, ibv_flow_eth_filter);
  case IBV_FLOW_SPEC_IPV4:
    FLOWRT_LAYOUT(ibv_flow_spec_ipv4, ibv_flow_ipv4_filter);
  case IBV_FLOW_SPEC_IPV4_EXT:
    FLOWRT_LAYOUT(ibv_flow_spec_ipv4_ext, ibv_flow_ipv4_ext_filter);
  case IBV_FLOW_SPEC_IPV6:
    FLOWRT_LAYOUT(ibv_flow_spec_ipv6, ibv_flow_ipv6_filter);
  case IBV_FLOW_SPEC_TCP:
  case IBV_FLOW_SPEC_UDP:
    FLOWRT_LAYOUT(ibv_flow_spec_tcp_udp, ibv_flow_tcp_udp_filter);
  case IBV_FLOW_SPEC_VXLAN_TUNNEL:
    FLOWRT_LAYOUT(ibv_flow_spec_tunnel, ibv_flow_tunnel_filter);
  case IBV_FLOW_SPEC_GRE:
    FLOWRT_LAYOUT(ibv_flow_spec_gre, ibv_flow_gre_filter);
  case IBV_FLOW_SPEC_ESP:
    FLOWRT_LAYOUT(ibv_flow_spec_esp, ibv_flow_esp_filter);
  default:
    return false;
  }
#undef FLOWRT_LAYOUT
}

// What a rule says about the ethertype of its outer (0) and inner (1) layer: the value of an
// ETH spec's fully masked ether_type, and the one an IPV4 or IPV6 spec implies (mlx5 and the
// simulator match the IP version with them, verbs-facts §3.3). 0 where nothing is said.
struct ethertypes {
  uint16_t stated[2];
  uint16_t implied[2];
};

static struct ethertypes rule_ethertypes(const unsigned char *attr) {
  struct ethertypes t;
  memset(&t, 0, sizeof t);
  const unsigned char *spec = attr + FLOWRT_FBIN_ATTR_SIZE;
  for (unsigned i = 0; i < attr[kAttrNumSpecs]; ++i) {
    uint32_t type = flowrt_load32(spec);
    uint16_t size = flowrt_load16(spec + 4);
    int layer = (type & IBV_FLOW_SPEC_INNER) != 0;
    uint32_t kind = type & ~(uint32_t)IBV_FLOW_SPEC_INNER;
    if (kind == IBV_FLOW_SPEC_ETH) {
      // ether_type is in network order.
      const unsigned char *val = spec + offsetof(struct ibv_flow_spec_eth, val.ether_type);
      const unsigned char *mask = spec + offsetof(struct ibv_flow_spec_eth, mask.ether_type);
      if (mask[0] == 0xff && mask[1] == 0xff) {
        t.stated[layer] = (uint16_t)(val[0] << 8 | val[1]);
      }
    } else if (kind == IBV_FLOW_SPEC_IPV4 || kind == IBV_FLOW_SPEC_IPV4_EXT) {
      t.implied[layer] = 0x0800;
    } else if (kind == IBV_FLOW_SPEC_IPV6) {
      t.implied[layer] = 0x86dd;
    }
    spec += size;
  }
  return t;
}

static bool ethertypes_disjoint(const unsigned char *a, const unsigned char *b) {
  struct ethertypes ta = rule_ethertypes(a), tb = rule_ethertypes(b);
  for (int layer = 0; layer < 2; ++layer) {
    uint16_t ea = ta.stated[layer] != 0 ? ta.stated[layer] : ta.implied[layer];
    uint16_t eb = tb.stated[layer] != 0 ? tb.stated[layer] : tb.implied[layer];
    if (ea != 0 && eb != 0 && ea != eb) {
      return true;
    }
  }
  return false;
}

// Whether two NORMAL rules can match a common packet, decided conservatively from their specs:
// false only when some field both match has different values under both masks, the rules are
// for different ports or directions, a layer's ethertypes differ (stated or implied by an IP
// spec), or a layer is IPv4 in one and IPv6 (or TCP in one and UDP) in the other. MPLS
// specs are never compared: their position depends on the spec before them (verbs-facts §3.3).
static bool rules_disjoint(const unsigned char *a, const unsigned char *b) {
  if (flowrt_load32(a + kAttrType) != IBV_FLOW_ATTR_NORMAL ||
      flowrt_load32(b + kAttrType) != IBV_FLOW_ATTR_NORMAL) {
    return false;
  }
  if (a[kAttrPort] != b[kAttrPort] ||
      ((flowrt_load32(a + kAttrFlags) ^ flowrt_load32(b + kAttrFlags)) &
       IBV_FLOW_ATTR_FLAGS_EGRESS) != 0 ||
      ethertypes_disjoint(a, b)) {
    return true;
  }
  const unsigned char *sa = a + FLOWRT_FBIN_ATTR_SIZE;
  for (unsigned i = 0; i < a[kAttrNumSpecs]; ++i) {
    uint32_t ta = flowrt_load32(sa);
    uint16_t size_a = flowrt_load16(sa + 4);
    const unsigned char *sb = b + FLOWRT_FBIN_ATTR_SIZE;
    for (unsigned j = 0; j < b[kAttrNumSpecs]; ++j) {
      uint32_t tb = flowrt_load32(sb);
      uint16_t size_b = flowrt_load16(sb + 4);
      uint32_t la = ta & IBV_FLOW_SPEC_INNER, lb = tb & IBV_FLOW_SPEC_INNER;
      uint32_t ka = ta & ~(uint32_t)IBV_FLOW_SPEC_INNER, kb = tb & ~(uint32_t)IBV_FLOW_SPEC_INNER;
      if (ka == IBV_FLOW_SPEC_IPV4_EXT) {
        ka = IBV_FLOW_SPEC_IPV4;
      }
      if (kb == IBV_FLOW_SPEC_IPV4_EXT) {
        kb = IBV_FLOW_SPEC_IPV4;
      }
      if (la != lb || ka >= IBV_FLOW_SPEC_ACTION_TAG || kb >= IBV_FLOW_SPEC_ACTION_TAG ||
          ka == IBV_FLOW_SPEC_MPLS) {
        sb += size_b;
        continue;
      }
      if ((ka == IBV_FLOW_SPEC_IPV4 && kb == IBV_FLOW_SPEC_IPV6) ||
          (ka == IBV_FLOW_SPEC_IPV6 && kb == IBV_FLOW_SPEC_IPV4) ||
          (ka == IBV_FLOW_SPEC_TCP && kb == IBV_FLOW_SPEC_UDP) ||
          (ka == IBV_FLOW_SPEC_UDP && kb == IBV_FLOW_SPEC_TCP)) {
        return true;
      }
      unsigned va_at, ma_at, fa, vb_at, mb_at, fb;
      if (ka == kb && spec_layout(ta & ~(uint32_t)IBV_FLOW_SPEC_INNER, &va_at, &ma_at, &fa) &&
          spec_layout(tb & ~(uint32_t)IBV_FLOW_SPEC_INNER, &vb_at, &mb_at, &fb)) {
        // IPV4 and IPV4_EXT filters start alike (src, dst): compare the common prefix.
        unsigned n = fa < fb ? fa : fb;
        const unsigned char *va = sa + va_at, *ma = sa + ma_at;
        const unsigned char *vb = sb + vb_at, *mb = sb + mb_at;
        for (unsigned k = 0; k < n; ++k) {
          if (((va[k] ^ vb[k]) & ma[k] & mb[k]) != 0) {
            return true;
          }
        }
      }
      sb += size_b;
    }
    sa += size_a;
  }
  return false;
}

// FNV-1a over a flow's QP and bytes: the key that finds unchanged rules.
static uint64_t entry_hash(const struct flow_entry *e) {
  uint64_t h = 1469598103934665603ull;
  uintptr_t qp = (uintptr_t)e->qp;
  for (unsigned i = 0; i < sizeof qp; ++i) {
    h = (h ^ ((qp >> (8 * i)) & 0xff)) * 1099511628211ull;
  }
  for (uint32_t i = 0; i < e->size; ++i) {
    h = (h ^ e->attr[i]) * 1099511628211ull;
  }
  return h;
}

static bool same_entry(const struct flow_entry *a, const struct flow_entry *b) {
  return a->qp == b->qp && a->size == b->size && memcmp(a->attr, b->attr, a->size) == 0;
}

// Pairs every entry of `next` with an identical, not yet paired entry of `old`:
// `kept_new[i]` = whether next entry i has a twin, `old_twin[j]` = the next entry old j pairs
// with, or UINT32_MAX. Returns 0 or -ENOMEM.
static int pair_entries(const struct plan *old, const struct plan *next, bool *kept_new,
                        uint32_t *old_twin) {
  uint32_t cap = 16;
  while (cap < 2 * (old->num + 1)) {
    cap *= 2;
  }
  uint32_t *table = malloc(cap * sizeof *table); // old entry index + 1, 0 = empty
  uint64_t *hashes = malloc((old->num + 1) * sizeof *hashes);
  if (table == NULL || hashes == NULL) {
    free(table);
    free(hashes);
    return -ENOMEM;
  }
  memset(table, 0, cap * sizeof *table);
  for (uint32_t j = 0; j < old->num; ++j) {
    old_twin[j] = UINT32_MAX;
    hashes[j] = entry_hash(&old->entries[j]);
    uint32_t slot = (uint32_t)hashes[j] & (cap - 1);
    while (table[slot] != 0) {
      slot = (slot + 1) & (cap - 1);
    }
    table[slot] = j + 1;
  }
  for (uint32_t i = 0; i < next->num; ++i) {
    kept_new[i] = false;
    uint64_t h = entry_hash(&next->entries[i]);
    for (uint32_t slot = (uint32_t)h & (cap - 1); table[slot] != 0; slot = (slot + 1) & (cap - 1)) {
      uint32_t j = table[slot] - 1;
      if (hashes[j] == h && old_twin[j] == UINT32_MAX &&
          same_entry(&old->entries[j], &next->entries[i])) {
        old_twin[j] = i;
        kept_new[i] = true;
        break;
      }
    }
  }
  free(table);
  free(hashes);
  return 0;
}

// The most rule-pair comparisons spent on proving an in-place update safe before falling back
// to placing the new policy in other priority levels.
enum { kMaxDisjointTests = 20 * 1000 * 1000 };

static bool is_normal(const struct flow_entry *e) {
  return flowrt_load32(e->attr + kAttrType) == IBV_FLOW_ATTR_NORMAL;
}

static bool is_pass(const struct flow_entry *e) {
  return (flowrt_load32(e->attr + kAttrFlags) & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) != 0;
}

// Whether the changes can be made in place: every changed NORMAL rule (an old one not kept or
// a new one not kept) is disjoint from every other NORMAL rule of both policies. Then a packet
// meets at most one changed rule, alone among the NORMAL rules, and gets that rule's outcome
// while it is installed and the default rules' before or after: its old or its new outcome in
// any order of the changes (docs/runtime.md, "Updates"). Default and sniffer rules match
// everything but come after every NORMAL rule; changing one is not made any worse in place,
// except with a changed DONT_TRAP rule, whose copy would then combine with the other policy's
// default. (A changed default rule has its own window, documented under "Known limits".)
static bool in_place_safe(const struct plan *old, const uint32_t *old_twin, const struct plan *next,
                          const bool *kept_new) {
  uint64_t changed = 0;
  bool changed_pass = false, changed_other = false;
  for (int side = 0; side < 2; ++side) {
    const struct plan *p = side == 0 ? old : next;
    for (uint32_t c = 0; c < p->num; ++c) {
      if (side == 0 ? old_twin[c] != UINT32_MAX : kept_new[c]) {
        continue;
      }
      ++changed;
      changed_pass |= is_pass(&p->entries[c]);
      changed_other |= !is_normal(&p->entries[c]);
    }
  }
  if ((changed_pass && changed_other) ||
      changed * (uint64_t)(old->num + next->num) > kMaxDisjointTests) {
    return false;
  }
  for (int side = 0; side < 2; ++side) {
    const struct plan *p = side == 0 ? old : next;
    for (uint32_t c = 0; c < p->num; ++c) {
      bool is_changed = side == 0 ? old_twin[c] == UINT32_MAX : !kept_new[c];
      if (!is_changed || !is_normal(&p->entries[c])) {
        continue;
      }
      const unsigned char *ca = p->entries[c].attr;
      for (uint32_t j = 0; j < old->num; ++j) {
        if (!(side == 0 && j == c) && is_normal(&old->entries[j]) &&
            !rules_disjoint(ca, old->entries[j].attr)) {
          return false;
        }
      }
      for (uint32_t i = 0; i < next->num; ++i) {
        // Kept next entries were compared as their old twins.
        if (kept_new[i] || (side == 1 && i == c) || !is_normal(&next->entries[i])) {
          continue;
        }
        if (!rules_disjoint(ca, next->entries[i].attr)) {
          return false;
        }
      }
    }
  }
  return true;
}

// Computes how updates place `p` (the fields after `placed` in struct flowrt_policy). A
// DONT_TRAP rule disjoint from every other NORMAL rule copies every packet it matches
// wherever it sits, so it keeps its compiled priority ("floating"): an unchanged one stays
// installed through an update, and no packet gets its copy twice. Returns 0 or -ENOMEM.
static int place_policy(struct flowrt_policy *p) {
  if (p->placed) {
    return 0;
  }
  p->floating = calloc(p->num_rules + 1, 1);
  if (p->floating == NULL) {
    return -ENOMEM;
  }
  uint64_t pass = 0, trap = 0;
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&p->fbin, i, &r);
    if (r.type == IBV_FLOW_ATTR_NORMAL) {
      if ((r.flags & FLOWRT_FBIN_RULE_PASS) != 0) {
        ++pass;
      } else {
        ++trap;
      }
    }
  }
  bool affordable = pass * (pass + trap) <= kMaxDisjointTests;
  for (uint32_t i = 0; i < p->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&p->fbin, i, &r);
    if (r.type != IBV_FLOW_ATTR_NORMAL) {
      continue;
    }
    bool is_pass = (r.flags & FLOWRT_FBIN_RULE_PASS) != 0;
    bool floating = is_pass && affordable;
    for (uint32_t j = 0; floating && j < p->num_rules; ++j) {
      struct flowrt_fbin_rule t;
      flowrt_fbin_rule(&p->fbin, j, &t);
      // Disjoint from every other NORMAL rule, pass rules included: two
      // overlapping DONT_TRAP rules at one level share a table entry.
      if (j != i && t.type == IBV_FLOW_ATTR_NORMAL && !rules_disjoint(r.attr, t.attr)) {
        floating = false;
      }
    }
    p->floating[i] = floating;
    if (floating) {
      continue;
    }
    p->moving_pass |= is_pass;
    if (!p->has_band || r.priority < p->band_lo) {
      p->band_lo = r.priority;
    }
    if (!p->has_band || r.priority > p->band_hi) {
      p->band_hi = r.priority;
    }
    p->has_band = true;
  }
  p->placed = true;
  return 0;
}

// Whether `p` placed with `shift` fits levels 0..levels-1, and mlx4's DONT_TRAP rules stay at
// priority 0 (verbs-facts §4.2).
static bool fits(const struct flowrt_policy *p, int64_t shift, uint32_t levels) {
  if (!p->has_band) {
    return true;
  }
  if (p->band_lo + shift < 0 || p->band_hi + shift > (int64_t)levels - 1) {
    return false;
  }
  return shift == 0 || !p->moving_pass || strcmp(p->fbin.profile, "mlx4") != 0;
}

// Where make-before-break places `next`: returns 0 with `*shift`, or -ENOSPC with a message.
static int choose_shift(const struct flowrt_installation *inst, const struct flowrt_policy *next,
                        int32_t *shift, struct flowrt_error *err) {
  const struct flowrt_policy *old = inst->policy;
  if (!old->has_band || !next->has_band) {
    *shift = 0;
    return 0;
  }
  uint32_t lo = old->band_lo + (uint32_t)inst->plan.shift;
  uint32_t hi = old->band_hi + (uint32_t)inst->plan.shift;
  // Above: the new levels end right before the old ones; packets the new policy takes never
  // reach the old rules. Below: they start right after; only packets the old policy does not
  // take reach the new rules. A DONT_TRAP rule that moves on the upper side could copy a packet
  // that the lower side then takes, so prefer the side that has none.
  int64_t above = (int64_t)lo - 1 - next->band_hi;
  int64_t below = (int64_t)hi + 1 - next->band_lo;
  bool above_fits = fits(next, above, inst->levels);
  bool below_fits = fits(next, below, inst->levels);
  if (above_fits && !next->moving_pass) {
    *shift = (int32_t)above;
  } else if (below_fits && !old->moving_pass) {
    *shift = (int32_t)below;
  } else if (above_fits) {
    *shift = (int32_t)above;
  } else if (below_fits) {
    *shift = (int32_t)below;
  } else {
    return flowrt_fail(err, ENOSPC, FLOWRT_NO_RULE,
                       "make-before-break needs the new policy's %u priority levels next to the "
                       "old policy's levels %u..%u, but the device has levels 0..%u; pass "
                       "FLOWRT_UPDATE_ALLOW_BREAK to replace the rules with a gap, or use fewer "
                       "levels",
                       (unsigned)(next->band_hi - next->band_lo + 1), lo, hi, inst->levels - 1);
  }
  return 0;
}

// Destroys the old flows not kept (last first). On a failure, re-creates those it destroyed and
// returns -errno: `*failed` is the entry that could not be destroyed, `*lost` the first entry
// that could not be re-created (the old policy is then incomplete), or UINT32_MAX.
static int break_old(struct plan *old, const bool *kept_old, uint32_t *failed, uint32_t *lost) {
  *lost = UINT32_MAX;
  for (uint32_t i = old->num; i > 0; --i) {
    struct flow_entry *e = &old->entries[i - 1];
    if (kept_old[i - 1] || e->flow == NULL) {
      continue;
    }
    int rc = ibv_destroy_flow(e->flow);
    if (rc == 0) {
      e->flow = NULL;
      continue;
    }
    *failed = i - 1;
    uint32_t where = 0;
    if (create_flows(old, kept_old, &where) != 0) {
      *lost = where;
    }
    return rc > 0 ? -rc : -EIO;
  }
  return 0;
}

// Reports a failed break phase: the destroy that failed, and an old rule lost for good if any.
static int break_fail(struct flowrt_error *err, const struct flowrt_policy *policy,
                      const struct plan *old, uint32_t failed, uint32_t lost, int rc) {
  verbs_fail(err, policy, old->entries[failed].rule, "ibv_destroy_flow", -rc);
  if (lost != UINT32_MAX && err != NULL) {
    char what[200];
    flowrt_policy_describe_rule(policy, old->entries[lost].rule, what, sizeof what);
    size_t len = strlen(err->message);
    snprintf(err->message + len, sizeof err->message - len,
             "; restoring the old policy failed too: %s is not installed", what);
  }
  errno = -rc;
  return rc;
}

int flowrt_update(struct flowrt_installation *inst, struct flowrt_policy *next, unsigned flags,
                  struct flowrt_error *err) {
  if (inst == NULL || next == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no installation or no policy given");
  }
  if ((flags & ~FLOWRT_UPDATE_ALLOW_BREAK) != 0) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "unknown flowrt_update() flags 0x%x",
                       flags & ~FLOWRT_UPDATE_ALLOW_BREAK);
  }
  if (next->installed != NULL && next->installed != inst) {
    return flowrt_fail(err, EBUSY, FLOWRT_NO_RULE,
                       "the new policy is installed elsewhere; open it again");
  }
  struct flowrt_policy *old_policy = inst->policy;
  if (place_policy(old_policy) != 0 || place_policy(next) != 0) {
    return flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory");
  }
  int rc = check_bindings(inst, next, err);
  if (rc == 0) {
    rc = flowrt_check_device_port(inst->context, next, inst->port, err);
  }
  if (rc != 0) {
    return rc;
  }
  uint32_t nc = next->num_symbols[FLOWRT_COUNTER];
  uint32_t oc = old_policy->num_symbols[FLOWRT_COUNTER];
  struct counter_slot *slots = calloc(nc + 1, sizeof *slots);
  bool *reused = calloc(oc + 1, sizeof *reused);
  if (slots == NULL || reused == NULL) {
    free(slots);
    free(reused);
    return flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory");
  }
  // The plan in place first: the same shift as the policy installed now.
  struct plan plan;
  bool *kept_new = NULL, *kept_old = NULL;
  uint32_t *old_twin = NULL;
  bool breaking = false;
  rc = prepare_counters(inst, next, slots, reused, err);
  if (rc != 0) {
    goto out;
  }
  rc = make_plan(inst, next, slots, inst->plan.shift, &plan, err);
  if (rc != 0) {
    destroy_fresh_counters(slots, nc);
    goto out;
  }
  kept_new = calloc(plan.num + 1, sizeof *kept_new);
  kept_old = calloc(inst->plan.num + 1, sizeof *kept_old);
  old_twin = calloc(inst->plan.num + 1, sizeof *old_twin);
  if (kept_new == NULL || kept_old == NULL || old_twin == NULL ||
      pair_entries(&inst->plan, &plan, kept_new, old_twin) != 0) {
    rc = flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory");
    goto fail_plan;
  }
  if (!fits(next, inst->plan.shift, inst->levels) ||
      !in_place_safe(&inst->plan, old_twin, &plan, kept_new)) {
    int32_t shift = 0;
    // With ALLOW_BREAK a failure to place is not an error: keep `err` untouched for success.
    struct flowrt_error placing;
    bool allow_break = (flags & FLOWRT_UPDATE_ALLOW_BREAK) != 0;
    rc = choose_shift(inst, next, &shift, allow_break ? &placing : err);
    if (rc != 0 && !allow_break) {
      goto fail_plan;
    }
    breaking = rc != 0;
    free_plan(&plan);
    rc = make_plan(inst, next, slots, breaking ? 0 : shift, &plan, err);
    if (rc != 0) {
      destroy_fresh_counters(slots, nc);
      goto out;
    }
    if (breaking) {
      memset(kept_new, 0, (plan.num + 1) * sizeof *kept_new);
      for (uint32_t j = 0; j < inst->plan.num; ++j) {
        old_twin[j] = UINT32_MAX;
      }
    } else if (pair_entries(&inst->plan, &plan, kept_new, old_twin) != 0) {
      rc = flowrt_fail(err, ENOMEM, FLOWRT_NO_RULE, "out of memory");
      goto fail_plan;
    }
  }
  for (uint32_t j = 0; j < inst->plan.num; ++j) {
    kept_old[j] = old_twin[j] != UINT32_MAX;
  }
  uint32_t failed = 0, lost = UINT32_MAX;
  if (breaking) {
    rc = break_old(&inst->plan, kept_old, &failed, &lost);
    if (rc != 0) {
      break_fail(err, old_policy, &inst->plan, failed, lost, rc);
      goto fail_plan;
    }
  }
  // Make: every new flow first.
  rc = create_flows(&plan, kept_new, &failed);
  if (rc != 0) {
    int stuck = destroy_flows(&plan, kept_new);
    verbs_fail(err, next, plan.entries[failed].rule, "ibv_create_flow", -rc);
    note_stuck(err, stuck);
    if (breaking && create_flows(&inst->plan, kept_old, &lost) != 0 && err != NULL) {
      char what[200];
      flowrt_policy_describe_rule(old_policy, inst->plan.entries[lost].rule, what, sizeof what);
      size_t len = strlen(err->message);
      snprintf(err->message + len, sizeof err->message - len,
               "; restoring the old policy failed too: %s is not installed", what);
    }
    goto fail_plan;
  }
  // Break: then the old flows that did not stay.
  if (!breaking) {
    rc = break_old(&inst->plan, kept_old, &failed, &lost);
    if (rc != 0) {
      break_fail(err, old_policy, &inst->plan, failed, lost, rc);
      note_stuck(err, destroy_flows(&plan, kept_new));
      goto fail_plan;
    }
  }
  // Commit: kept flows move to the new plan, old-only counters go.
  for (uint32_t j = 0; j < inst->plan.num; ++j) {
    if (old_twin[j] != UINT32_MAX) {
      plan.entries[old_twin[j]].flow = inst->plan.entries[j].flow;
    }
  }
  for (uint32_t j = 0; j < oc; ++j) {
    if (inst->counters[j].owned && !reused[j] && ibv_destroy_counters(inst->counters[j].obj) != 0) {
      struct ibv_counters **grown =
          realloc(inst->leftovers, (inst->num_leftovers + 1) * sizeof *grown);
      if (grown != NULL) {
        inst->leftovers = grown;
        inst->leftovers[inst->num_leftovers++] = inst->counters[j].obj;
      }
    }
  }
  for (uint32_t i = 0; i < nc; ++i) {
    slots[i].fresh = false;
  }
  free_plan(&inst->plan);
  inst->plan = plan;
  free(inst->counters);
  inst->counters = slots;
  slots = NULL;
  old_policy->installed = NULL;
  next->installed = inst;
  inst->policy = next;
  rc = 0;
  goto out;

fail_plan:
  destroy_fresh_counters(slots, nc);
  free_plan(&plan);
out:
  free(slots);
  free(reused);
  free(kept_new);
  free(kept_old);
  free(old_twin);
  if (rc != 0) {
    errno = -rc;
  }
  return rc;
}

// ---------------------------------------------------------------------------------------------

struct flowrt_policy *flowrt_installation_policy(const struct flowrt_installation *inst) {
  return inst->policy;
}

uint32_t flowrt_installation_num_flows(const struct flowrt_installation *inst) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < inst->plan.num; ++i) {
    n += inst->plan.entries[i].flow != NULL;
  }
  return n;
}

int flowrt_read_counter(struct flowrt_installation *inst, const char *name, uint64_t *packets,
                        uint64_t *bytes, struct flowrt_error *err) {
  if (inst == NULL || name == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no installation or no counter name given");
  }
  uint32_t i;
  if (flowrt_fbin_find_symbol(&inst->policy->fbin, FLOWRT_FBIN_COUNTERS, name, &i) != 0) {
    return flowrt_fail(err, ENOENT, FLOWRT_NO_RULE, "the installed policy has no counter '%s'",
                       name);
  }
  uint64_t values[2] = {0, 0};
  int rc = ibv_read_counters(inst->counters[i].obj, values, 2, 0);
  if (rc != 0) {
    return flowrt_fail(err, rc, FLOWRT_NO_RULE, "counter '%s': ibv_read_counters failed: %s", name,
                       strerror(rc));
  }
  if (packets != NULL) {
    *packets = values[0];
  }
  if (bytes != NULL) {
    *bytes = values[1];
  }
  return 0;
}

int flowrt_uninstall(struct flowrt_installation *inst, struct flowrt_error *err) {
  if (inst == NULL) {
    return 0;
  }
  int rc = 0;
  for (uint32_t i = inst->plan.num; i > 0; --i) {
    struct flow_entry *e = &inst->plan.entries[i - 1];
    if (e->flow == NULL) {
      continue;
    }
    int r = ibv_destroy_flow(e->flow);
    if (r != 0 && rc == 0) {
      rc = verbs_fail(err, inst->policy, e->rule, "ibv_destroy_flow", r);
    }
  }
  uint32_t nc = inst->policy->num_symbols[FLOWRT_COUNTER];
  for (uint32_t i = nc; i > 0; --i) {
    if (!inst->counters[i - 1].owned) {
      continue;
    }
    int r = ibv_destroy_counters(inst->counters[i - 1].obj);
    if (r != 0 && rc == 0) {
      rc = flowrt_fail(err, r, FLOWRT_NO_RULE, "counter '%s': ibv_destroy_counters failed: %s",
                       flowrt_fbin_symbol(&inst->policy->fbin, FLOWRT_FBIN_COUNTERS, i - 1),
                       strerror(r));
    }
  }
  for (uint32_t i = 0; i < inst->num_leftovers; ++i) {
    ibv_destroy_counters(inst->leftovers[i]);
  }
  inst->policy->installed = NULL;
  free(inst->leftovers);
  free(inst->counters);
  free_plan(&inst->plan);
  free(inst);
  if (rc != 0) {
    errno = -rc; // later destroy calls may have changed it
  }
  return rc;
}
