// The simulated device: a verbs_context whose flow and counters ops store what the validator
// accepts.
#include "flowrt/sim.h"

#include <errno.h>
#include <search.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Objects live in singly linked lists on the device. A handle that comes back from the caller
// is only trusted once it is found in the device's list by address: a stale or foreign pointer
// is never dereferenced beyond what verbs.h itself already read (its `context` field).

struct sim_qp {
  struct ibv_qp qp; // handed out as &qp; first, so a found entry converts back directly
  struct sim_qp *next;
};

struct sim_counter_point {
  uint32_t desc; // enum ibv_counter_description
  uint32_t index;
};

// The value of one counter index; a later classifier adds to it.
struct sim_counter_slot {
  uint32_t index;
  uint64_t value;
};

// Re-binding (§1.6): the mlx5 provider sends the attach points' descriptions with a COUNT flow
// only while its refcount of live flows on the counters is 0, and the kernel refuses (EINVAL)
// descriptions for counters that already have one. That EINVAL cannot be reached by destroying
// every flow and binding again: mlx5_ib_destroy_flow calls mlx5_ib_counters_clear_description,
// which drops the description when the counters' usecnt is 1 (the flow being destroyed is the
// last user; uverbs_free_flow only decrements usecnt after destroy_flow returns), and
// mlx5_destroy_flow decrements the provider's refcount, so both sides are back at "unbound".
// (Read in torvalds/linux @0829d2da drivers/infiniband/hw/mlx5/fs.c and counters.c,
// core/uverbs_std_types.c, and rdma-core providers/mlx5/verbs.c.) A failed create leaves both
// unbound too (_create_flow_rule clears the description on error). So `flows` alone is the
// state: 0 means the next COUNT flow describes the counters again, and is accepted.
struct sim_counters {
  struct ibv_counters counters; // handed out as &counters
  struct sim_counter_point *points;
  size_t num_points;
  struct sim_counter_slot *slots; // one per distinct attached index
  size_t num_slots;
  unsigned flows; // flows whose COUNT spec names this object
  struct sim_counters *next;
};

struct sim_flow {
  struct ibv_flow flow; // handed out as &flow
  unsigned char *attr;  // the attr and its specs as passed, `length` bytes
  size_t length;
  struct flowrt_sim_rule rule;
  struct sim_qp *qp;
  struct sim_counters *counters; // from the ACTION_COUNT spec, or NULL
  // The flow tag of the flow table entry the flow belongs to (§3.8): its own ACTION_TAG unless
  // it joined an entry another flow created, whose tag it then shares. Unused for non-NORMAL.
  bool entry_tagged;
  uint32_t entry_tag;
  // mlx5 NORMAL ingress: the flow table entry the flow is a member of (§3.8), or NULL, and
  // the next member.
  struct sim_entry *entry;
  struct sim_flow *entry_next;
  struct sim_flow *next;
};

// A flow's match as mlx5 compares it (see "Flow table entries" below): port, hardware table
// and the match items sorted, with their values (an entry's key) or with the values zeroed
// (a flow group's key), so that equal matches have equal bytes.
struct sim_key {
  uint8_t port;
  unsigned table;
  unsigned num_items;
  struct match_item *items;
};

// One flow table entry: the flows of one match in one table; they never conflict (§3.8).
struct sim_entry {
  struct sim_key key;
  struct sim_flow *members; // through entry_next
  struct sim_group *group;
};

// One mlx5 flow table of a port (fs_core's auto-grouping, §3.8): its groups in index order,
// how many of them are big, and the end of the last one. `holes` says a group before the last
// was freed, so a new group may fit in a gap.
struct sim_table {
  uint8_t port;
  unsigned table;
  unsigned big;
  uint32_t end;
  bool holes;
  struct sim_group *first, *last;
  struct sim_table *next;
};

// The groups of one match mask in one table, and those of them with a free entry.
struct sim_mask {
  struct sim_key key;
  unsigned num_groups;
  struct sim_group *open; // through open_next
};

// One flow group: entries [start, start + size) of its table for the flows of one match mask;
// `used` of them taken.
struct sim_group {
  struct sim_table *table;
  struct sim_mask *mask;
  uint32_t start, size, used;
  struct sim_group *prev, *next;           // the table's groups by start
  struct sim_group *open_prev, *open_next; // the mask's groups with room
};

struct flowrt_sim_device {
  enum flowrt_sim_profile profile;
  struct flowrt_sim_caps caps;
  uint8_t num_ports;
  uint32_t next_qp_num;
  uint32_t next_flow_handle;
  struct sim_qp *qps;
  struct sim_flow *flows;
  struct sim_counters *counters;
  // mlx5's flow tables (§3.8): tsearch() trees of the entries (struct sim_entry *) and masks
  // (struct sim_mask *) by key, and the tables.
  void *entries;
  void *masks;
  struct sim_table *tables;
  unsigned num_flows;
  unsigned num_counters;
  unsigned num_calls;
  unsigned fail_countdown; // 0: off; else the call that reaches 1 fails
  int fail_errno;
  void (*hook)(void *arg, unsigned call);
  void *hook_arg;
  struct ibv_device device;  // what context.device points to: its name, for messages
  struct verbs_context vctx; // verbs.h finds it from &vctx.context (verbs_get_ctx)
};

// What each profile's provider implements (§1.5, §1.6): both have create/destroy flow; only
// mlx5 has the counters ops.
// What the device reports (ibv_query_device_ex): the Mellanox OUI and a part id of the family,
// which is how libflowrt tells the driver (ConnectX-6 Dx for mlx5, ConnectX-3 for mlx4).
struct sim_profile_ops {
  bool counters;
  const char *device_name;
  uint32_t vendor_part_id;
};

static const struct sim_profile_ops kProfileOps[] = {
    [FLOWRT_SIM_MLX5] = {true, "sim_mlx5_0", 4125},
    [FLOWRT_SIM_MLX4] = {false, "sim_mlx4_0", 4099},
};

enum { kMellanoxOui = 0x02c9 };

// The largest spec verbs.h defines; no client writes a bigger `size` (§1.3, §1.4).
enum { kMaxSpecBytes = sizeof(struct ibv_flow_spec) };
enum { kSpecHeader = 8 };

static struct flowrt_sim_device *device_of(struct ibv_context *context) {
  struct verbs_context *vctx =
      (struct verbs_context *)((unsigned char *)context - offsetof(struct verbs_context, context));
  return (struct flowrt_sim_device *)((unsigned char *)vctx -
                                      offsetof(struct flowrt_sim_device, vctx));
}

// Counts the call and answers the failure injection: 0, or the errno this call fails with.
static int enter_op(struct flowrt_sim_device *dev) {
  if (dev->hook != NULL) {
    dev->hook(dev->hook_arg, dev->num_calls + 1);
  }
  ++dev->num_calls;
  if (dev->fail_countdown == 0) {
    return 0;
  }
  if (--dev->fail_countdown > 0) {
    return 0;
  }
  return dev->fail_errno;
}

static struct sim_qp *find_qp(struct flowrt_sim_device *dev, const struct ibv_qp *qp) {
  for (struct sim_qp *q = dev->qps; q != NULL; q = q->next) {
    if (&q->qp == qp) {
      return q;
    }
  }
  return NULL;
}

static struct sim_counters *find_counters(struct flowrt_sim_device *dev, const void *counters) {
  for (struct sim_counters *c = dev->counters; c != NULL; c = c->next) {
    if ((const void *)&c->counters == counters) {
      return c;
    }
  }
  return NULL;
}

// Unlinks and returns the flow whose handle is `flow`, or NULL.
static struct sim_flow *unlink_flow(struct flowrt_sim_device *dev, const struct ibv_flow *flow) {
  for (struct sim_flow **link = &dev->flows; *link != NULL; link = &(*link)->next) {
    struct sim_flow *f = *link;
    if (&f->flow == flow) {
      *link = f->next;
      --dev->num_flows;
      return f;
    }
  }
  return NULL;
}

static void free_flow(struct sim_flow *f) {
  if (f->counters != NULL) {
    --f->counters->flows;
  }
  free(f->attr);
  free(f);
}

static void free_counters(struct sim_counters *c) {
  free(c->points);
  free(c->slots);
  free(c);
}

// --- create_flow / destroy_flow ----------------------------------------------------------

static uint16_t read16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static uint32_t read32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static const void *read_pointer(const unsigned char *p) {
  const void *v;
  memcpy(&v, p, sizeof v);
  return v;
}

// The bytes the attr and its specs span, walking the specs by their `size` fields as libibverbs
// does (§1.4); the API gives no length. A spec bigger than any verbs.h spec ends the walk after
// its header, so that the validator refuses it as truncated (EINVAL) instead of the sim reading
// an arbitrary distance; libibverbs would step over such a spec, but no client writes one. The
// walk covers up to 255 specs (num_of_specs is a u8): libibverbs converts them all before the
// kernel refuses more than 10, and the validator answers the same.
static size_t attr_length(const unsigned char *attr) {
  unsigned num_specs = attr[offsetof(struct ibv_flow_attr, num_of_specs)];
  size_t offset = sizeof(struct ibv_flow_attr);
  size_t end = offset;
  for (unsigned i = 0; i < num_specs; ++i) {
    uint16_t size = read16(attr + offset + offsetof(struct ibv_flow_spec_eth, size));
    if (size > kMaxSpecBytes) {
      return offset + kSpecHeader > end ? offset + kSpecHeader : end;
    }
    size_t spec_end = offset + (size > kSpecHeader ? size : kSpecHeader);
    end = spec_end > end ? spec_end : end;
    offset += size;
  }
  return end;
}

// The objects that HANDLE and COUNT specs point to. The mlx5 provider resolves COUNT before
// anything else (get_flow_mcounters, allocate_flow_counters_descriptions, §1.6); libibverbs and
// the kernel resolve HANDLE and COUNT objects during conversion. The sim checks them all here,
// before the validator, so a buffer with both a bad object and another fault may get a
// different (usually also EINVAL) errno than the real stack. On success `*counters` is the
// first COUNT spec's object, or NULL; a second COUNT spec is the validator's to refuse.
static int resolve_actions(struct flowrt_sim_device *dev, const unsigned char *attr, size_t length,
                           struct sim_counters **counters) {
  *counters = NULL;
  unsigned num_specs = attr[offsetof(struct ibv_flow_attr, num_of_specs)];
  size_t offset = sizeof(struct ibv_flow_attr);
  for (unsigned i = 0; i < num_specs && length - offset >= kSpecHeader; ++i) {
    const unsigned char *spec = attr + offset;
    uint32_t type = read32(spec + offsetof(struct ibv_flow_spec_eth, type));
    uint16_t size = read16(spec + offsetof(struct ibv_flow_spec_eth, size));
    size_t pointer_at = offsetof(struct ibv_flow_spec_counter_action, counters);
    bool has_pointer = type == IBV_FLOW_SPEC_ACTION_HANDLE || type == IBV_FLOW_SPEC_ACTION_COUNT;
    if (has_pointer && length - offset >= pointer_at + sizeof(void *)) {
      // HANDLE and COUNT keep their pointer at the same offset (§1.3).
      const void *object = read_pointer(spec + pointer_at);
      if (type == IBV_FLOW_SPEC_ACTION_HANDLE && object == NULL) {
        return EINVAL; // the sim has no flow actions to check further
      }
      if (type == IBV_FLOW_SPEC_ACTION_COUNT && *counters == NULL) {
        struct sim_counters *c = find_counters(dev, object);
        if (c == NULL || c->num_points == 0) {
          return EINVAL; // not this device's counters, or attach "never called" (§1.6)
        }
        *counters = c;
      }
    }
    if (size > length - offset) {
      break;
    }
    offset += size;
  }
  return 0;
}

// Sets f->entry_tag*; returns EEXIST if f duplicates the match of a flow table entry whose
// actions or tag conflict with f's (§3.8). Defined with the classifier below.
static int join_entry(struct flowrt_sim_device *dev, struct sim_flow *f);
// Frees f's table entry if no other flow shares it, and its group once empty (§3.8).
static void leave_entry(struct flowrt_sim_device *dev, struct sim_flow *f);

static struct ibv_flow *sim_create_flow(struct ibv_qp *qp, struct ibv_flow_attr *flow_attr) {
  struct flowrt_sim_device *dev = device_of(qp->context);
  int err = enter_op(dev);
  if (err != 0) {
    errno = err;
    return NULL;
  }
  struct sim_qp *q = find_qp(dev, qp);
  if (q == NULL || flow_attr == NULL) {
    errno = EINVAL;
    return NULL;
  }
  const unsigned char *attr = (const unsigned char *)flow_attr;
  size_t length = attr_length(attr);
  struct sim_counters *counters = NULL;
  err = resolve_actions(dev, attr, length, &counters);
  if (err == 0) {
    int raw_or_ud = qp->qp_type == IBV_QPT_RAW_PACKET || qp->qp_type == IBV_QPT_UD;
    err = flowrt_sim_validate(attr, length, dev->profile, &dev->caps, raw_or_ud, dev->num_ports,
                              NULL, 0);
  }
  if (err != 0) {
    errno = err;
    return NULL;
  }

  struct sim_flow *f = calloc(1, sizeof *f);
  unsigned char *copy = malloc(length);
  if (f == NULL || copy == NULL) {
    free(f);
    free(copy);
    errno = ENOMEM;
    return NULL;
  }
  memcpy(copy, attr, length);
  // The validator accepted the buffer, so it decodes; a failure here is a validator bug.
  err = flowrt_sim_decode(copy, length, &f->rule);
  f->attr = copy;
  f->length = length;
  if (err == 0) {
    // fs_core's duplicate check comes last in the real stack: mlx5_add_flow_rules (§3.8).
    err = join_entry(dev, f);
  }
  if (err != 0) {
    free(f);
    free(copy);
    errno = err;
    return NULL;
  }
  f->qp = q;
  f->counters = counters;
  f->flow.context = qp->context;
  f->flow.handle = dev->next_flow_handle++;
  if (counters != NULL) {
    ++counters->flows;
  }
  f->next = dev->flows;
  dev->flows = f;
  ++dev->num_flows;
  return &f->flow;
}

static int sim_destroy_flow(struct ibv_flow *flow) {
  struct flowrt_sim_device *dev = device_of(flow->context);
  int err = enter_op(dev);
  if (err != 0) {
    return err;
  }
  struct sim_flow *f = unlink_flow(dev, flow);
  if (f == NULL) {
    return EINVAL;
  }
  leave_entry(dev, f);
  free_flow(f);
  return 0;
}

// --- counters (mlx5 provider semantics, §1.6) -------------------------------------------

static struct ibv_counters *sim_create_counters(struct ibv_context *context,
                                                struct ibv_counters_init_attr *init_attr) {
  struct flowrt_sim_device *dev = device_of(context);
  int err = enter_op(dev);
  if (err != 0) {
    errno = err;
    return NULL;
  }
  if (init_attr == NULL) {
    errno = EINVAL;
    return NULL;
  }
  if (init_attr->comp_mask != 0) {
    errno = EOPNOTSUPP;
    return NULL;
  }
  struct sim_counters *c = calloc(1, sizeof *c);
  if (c == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  c->counters.context = context;
  c->next = dev->counters;
  dev->counters = c;
  ++dev->num_counters;
  return &c->counters;
}

static int add_slot(struct sim_counters *c, uint32_t index) {
  for (size_t i = 0; i < c->num_slots; ++i) {
    if (c->slots[i].index == index) {
      return 0;
    }
  }
  struct sim_counter_slot *slots = realloc(c->slots, (c->num_slots + 1) * sizeof *slots);
  if (slots == NULL) {
    return ENOMEM;
  }
  slots[c->num_slots].index = index;
  slots[c->num_slots].value = 0;
  c->slots = slots;
  ++c->num_slots;
  return 0;
}

// mlx5_attach_counters_point_flow's checks, in its order (§1.6).
static int sim_attach_counters_point_flow(struct ibv_counters *counters,
                                          struct ibv_counter_attach_attr *attr,
                                          struct ibv_flow *flow) {
  struct flowrt_sim_device *dev = device_of(counters->context);
  int err = enter_op(dev);
  if (err != 0) {
    return err;
  }
  struct sim_counters *c = find_counters(dev, counters);
  if (c == NULL || attr == NULL) {
    return EINVAL;
  }
  if (flow != NULL) {
    return ENOTSUP; // only static binding, before ibv_create_flow
  }
  if (attr->comp_mask != 0) {
    return EOPNOTSUPP;
  }
  if (attr->counter_desc != IBV_COUNTER_PACKETS && attr->counter_desc != IBV_COUNTER_BYTES) {
    return ENOTSUP;
  }
  if (c->flows > 0) {
    return EBUSY;
  }
  struct sim_counter_point *points = realloc(c->points, (c->num_points + 1) * sizeof *points);
  if (points == NULL) {
    return ENOMEM;
  }
  c->points = points;
  err = add_slot(c, attr->index);
  if (err != 0) {
    return err;
  }
  points[c->num_points].desc = attr->counter_desc;
  points[c->num_points].index = attr->index;
  ++c->num_points;
  return 0;
}

static int sim_read_counters(struct ibv_counters *counters, uint64_t *counters_value,
                             uint32_t ncounters, uint32_t flags) {
  (void)flags; // the sim's values are always current
  struct flowrt_sim_device *dev = device_of(counters->context);
  int err = enter_op(dev);
  if (err != 0) {
    return err;
  }
  struct sim_counters *c = find_counters(dev, counters);
  if (c == NULL || (counters_value == NULL && ncounters > 0)) {
    return EINVAL;
  }
  for (uint32_t i = 0; i < ncounters; ++i) {
    counters_value[i] = 0;
  }
  for (size_t i = 0; i < c->num_slots; ++i) {
    if (c->slots[i].index < ncounters) {
      counters_value[c->slots[i].index] = c->slots[i].value;
    }
  }
  return 0;
}

static int sim_destroy_counters(struct ibv_counters *counters) {
  struct flowrt_sim_device *dev = device_of(counters->context);
  int err = enter_op(dev);
  if (err != 0) {
    return err;
  }
  for (struct sim_counters **link = &dev->counters; *link != NULL; link = &(*link)->next) {
    struct sim_counters *c = *link;
    if (&c->counters != counters) {
      continue;
    }
    if (c->flows > 0) {
      return EBUSY;
    }
    *link = c->next;
    --dev->num_counters;
    free_counters(c);
    return 0;
  }
  return EINVAL;
}

// --- The device -------------------------------------------------------------------------

// ibv_query_device_ex(): what libflowrt's device check reads (§1.7). Not counted as a call and
// never failed by flowrt_sim_fail_call(): the six flow and counters ops are.
static int sim_query_device_ex(struct ibv_context *context,
                               const struct ibv_query_device_ex_input *input,
                               struct ibv_device_attr_ex *attr, size_t attr_size) {
  struct flowrt_sim_device *dev = device_of(context);
  if (attr_size < sizeof attr->orig_attr) {
    return EINVAL;
  }
  memset(attr, 0, attr_size < sizeof *attr ? attr_size : sizeof *attr);
  struct ibv_device_attr *a = &attr->orig_attr;
  snprintf(a->fw_ver, sizeof a->fw_ver, "flowrt-sim %s",
           dev->profile == FLOWRT_SIM_MLX5 ? "mlx5" : "mlx4");
  a->vendor_id = kMellanoxOui;
  a->vendor_part_id = kProfileOps[dev->profile].vendor_part_id;
  a->phys_port_cnt = dev->num_ports;
  a->max_qp = 1 << 16;
  if (dev->caps.managed_flow_steering) {
    a->device_cap_flags |= IBV_DEVICE_MANAGED_FLOW_STEERING;
  }
  return 0;
}

// ibv_query_port(): every port is an active Ethernet port; others are EINVAL, as the kernel
// answers for a port number past phys_port_cnt.
static int sim_query_port(struct ibv_context *context, uint8_t port_num,
                          struct ibv_port_attr *port_attr, size_t port_attr_len) {
  struct flowrt_sim_device *dev = device_of(context);
  if (port_num == 0 || port_num > dev->num_ports) {
    return EINVAL;
  }
  memset(port_attr, 0, port_attr_len < sizeof *port_attr ? port_attr_len : sizeof *port_attr);
  port_attr->state = IBV_PORT_ACTIVE;
  port_attr->max_mtu = IBV_MTU_4096;
  port_attr->active_mtu = IBV_MTU_1024;
  port_attr->link_layer = IBV_LINK_LAYER_ETHERNET;
  return 0;
}

struct flowrt_sim_device *flowrt_sim_open(enum flowrt_sim_profile profile,
                                          const struct flowrt_sim_caps *caps, uint8_t num_ports) {
  if ((profile != FLOWRT_SIM_MLX5 && profile != FLOWRT_SIM_MLX4) || num_ports == 0) {
    errno = EINVAL;
    return NULL;
  }
  struct flowrt_sim_device *dev = calloc(1, sizeof *dev);
  if (dev == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  dev->profile = profile;
  dev->caps = caps != NULL ? *caps : flowrt_sim_default_caps();
  dev->num_ports = num_ports;
  dev->next_qp_num = 1;
  dev->next_flow_handle = 1;

  // What verbs_get_ctx_op() checks (verbs.h): abi_compat marks the context extended, and `sz`
  // must reach back to the op; an op left NULL makes the entry point answer EOPNOTSUPP.
  struct verbs_context *vctx = &dev->vctx;
  vctx->sz = sizeof *vctx;
  vctx->context.abi_compat = __VERBS_ABI_IS_EXTENDED;
  vctx->ibv_create_flow = sim_create_flow;
  vctx->ibv_destroy_flow = sim_destroy_flow;
  vctx->query_device_ex = sim_query_device_ex;
  vctx->query_port = sim_query_port;
  snprintf(dev->device.name, sizeof dev->device.name, "%s", kProfileOps[profile].device_name);
  snprintf(dev->device.dev_name, sizeof dev->device.dev_name, "uverbs-sim");
  dev->device.node_type = IBV_NODE_CA;
  dev->device.transport_type = IBV_TRANSPORT_IB;
  vctx->context.device = &dev->device;
  if (kProfileOps[profile].counters) {
    vctx->create_counters = sim_create_counters;
    vctx->attach_counters_point_flow = sim_attach_counters_point_flow;
    vctx->read_counters = sim_read_counters;
    vctx->destroy_counters = sim_destroy_counters;
  }
  return dev;
}

void flowrt_sim_close(struct flowrt_sim_device *dev) {
  if (dev == NULL) {
    return;
  }
  while (dev->flows != NULL) {
    struct sim_flow *f = dev->flows;
    dev->flows = f->next;
    leave_entry(dev, f); // the last member frees the entry, its group, mask and table
    free_flow(f);
  }
  while (dev->counters != NULL) {
    struct sim_counters *c = dev->counters;
    dev->counters = c->next;
    free_counters(c);
  }
  while (dev->qps != NULL) {
    struct sim_qp *q = dev->qps;
    dev->qps = q->next;
    free(q);
  }
  free(dev);
}

struct ibv_context *flowrt_sim_context(struct flowrt_sim_device *dev) {
  return &dev->vctx.context;
}

struct ibv_qp *flowrt_sim_create_qp(struct flowrt_sim_device *dev, enum ibv_qp_type type) {
  struct sim_qp *q = calloc(1, sizeof *q);
  if (q == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  q->qp.context = &dev->vctx.context;
  q->qp.qp_type = type;
  q->qp.qp_num = dev->next_qp_num++;
  q->next = dev->qps;
  dev->qps = q;
  return &q->qp;
}

void flowrt_sim_destroy_qp(struct ibv_qp *qp) {
  if (qp == NULL) {
    return;
  }
  struct flowrt_sim_device *dev = device_of(qp->context);
  struct sim_qp *q = NULL;
  for (struct sim_qp **link = &dev->qps; *link != NULL; link = &(*link)->next) {
    if (&(*link)->qp == qp) {
      q = *link;
      *link = q->next;
      break;
    }
  }
  if (q == NULL) {
    return;
  }
  for (struct sim_flow **link = &dev->flows; *link != NULL;) {
    struct sim_flow *f = *link;
    if (f->qp != q) {
      link = &f->next;
      continue;
    }
    *link = f->next;
    --dev->num_flows;
    leave_entry(dev, f);
    free_flow(f);
  }
  free(q);
}

void flowrt_sim_fail_call(struct flowrt_sim_device *dev, unsigned nth, int errnum) {
  bool on = nth != 0 && errnum != 0;
  dev->fail_countdown = on ? nth : 0;
  dev->fail_errno = on ? errnum : 0;
}

unsigned flowrt_sim_num_flows(const struct flowrt_sim_device *dev) {
  return dev->num_flows;
}

unsigned flowrt_sim_num_counters(const struct flowrt_sim_device *dev) {
  return dev->num_counters;
}

void flowrt_sim_set_call_hook(struct flowrt_sim_device *dev, void (*hook)(void *arg, unsigned call),
                              void *arg) {
  dev->hook = hook;
  dev->hook_arg = arg;
}

unsigned flowrt_sim_num_calls(const struct flowrt_sim_device *dev) {
  return dev->num_calls;
}

// --- Classification (mlx5 ingress, verbs-facts §3.2-§3.5) -------------------------------

enum {
  kEtherIpv4 = 0x0800,
  kEtherIpv6 = 0x86dd,
  kEtherVlan = 0x8100,
  kEtherMplsUc = 0x8847,
  kEtherMplsMc = 0x8848,
  kProtoTcp = 6,
  kProtoUdp = 17,
  kProtoGre = 47,
  kProtoEsp = 50,
  kUdpVxlan = 4789,
  kUdpMpls = 6635,
  kMcastTable = 32, // MLX5_IB_FLOW_MCAST_PRIO (§3.3)
  kMaxMplsDepth = 8,
};

// One level (outer or inner) of a parsed frame; each header is kept in its verbs filter layout,
// network order, so a spec compares byte by byte against it.
struct pkt_layer {
  bool has_eth;
  bool has_vlan;
  uint8_t eth[FLOWRT_SIM_FILTER_MAX]; // struct ibv_flow_eth_filter
  int ip_version;                     // 0 (none), 4 or 6
  uint8_t ip[FLOWRT_SIM_FILTER_MAX];  // ibv_flow_ipv4_ext_filter or ibv_flow_ipv6_filter
  uint8_t proto;                      // IPv4 protocol / IPv6 next header, if ip_version
  bool has_ports;
  uint8_t ports[FLOWRT_SIM_FILTER_MAX]; // struct ibv_flow_tcp_udp_filter
  bool has_mpls;                        // the first MPLS entry after this level's Ethernet
  uint8_t mpls[FLOWRT_SIM_FILTER_MAX];
};

struct pkt {
  struct pkt_layer outer;
  struct pkt_layer inner;
  bool has_esp;
  uint8_t esp[FLOWRT_SIM_FILTER_MAX]; // struct ibv_flow_esp_filter
  bool has_gre;
  uint8_t gre[FLOWRT_SIM_FILTER_MAX]; // struct ibv_flow_gre_filter
  bool has_vxlan;
  uint8_t vxlan[FLOWRT_SIM_FILTER_MAX]; // struct ibv_flow_tunnel_filter
  bool has_mpls_udp;
  uint8_t mpls_udp[FLOWRT_SIM_FILTER_MAX];
  bool has_mpls_gre;
  uint8_t mpls_gre[FLOWRT_SIM_FILTER_MAX];
};

static uint16_t be16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

// Parses the IP packet at p (n bytes) into `layer`, then its L4 header.
static void parse_ip(struct pkt *pkt, struct pkt_layer *layer, const uint8_t *p, size_t n,
                     bool tunnels);

// Parses an MPLS stack at p (n bytes): records the first entry in `first` and returns whether
// there was one; after the bottom-of-stack entry, parses the IP packet (by its version nibble)
// into `ip_layer` unless that is NULL.
static bool parse_mpls(struct pkt *pkt, const uint8_t *p, size_t n, uint8_t *first,
                       struct pkt_layer *ip_layer) {
  if (n < 4) {
    return false;
  }
  memcpy(first, p, 4);
  for (unsigned depth = 0; depth < kMaxMplsDepth && n >= 4; ++depth) {
    bool bos = (p[2] & 0x01) != 0;
    p += 4;
    n -= 4;
    if (bos) {
      if (n >= 1 && ip_layer != NULL) {
        parse_ip(pkt, ip_layer, p, n, false);
      }
      break;
    }
  }
  return true;
}

// Parses the L4 header of `layer` (protocol layer->proto) at p; on the outer level also the
// tunnels (ESP, GRE, VXLAN, MPLS over UDP) and the inner packet behind them.
static void parse_l4(struct pkt *pkt, struct pkt_layer *layer, const uint8_t *p, size_t n,
                     bool tunnels);

static void parse_eth(struct pkt *pkt, struct pkt_layer *layer, const uint8_t *p, size_t n,
                      bool tunnels) {
  if (n < 14) {
    return;
  }
  size_t off = 14;
  uint16_t type = be16(p + 12);
  layer->has_eth = true;
  memcpy(layer->eth, p, 12); // dst_mac, src_mac
  if (type == kEtherVlan) {
    if (n < 18) {
      layer->has_eth = false;
      return;
    }
    layer->has_vlan = true;
    memcpy(layer->eth + offsetof(struct ibv_flow_eth_filter, vlan_tag), p + 14, 2);
    type = be16(p + 16);
    off = 18;
  }
  memcpy(layer->eth + offsetof(struct ibv_flow_eth_filter, ether_type), p + off - 2, 2);
  p += off;
  n -= off;
  if (type == kEtherIpv4 || type == kEtherIpv6) {
    parse_ip(pkt, layer, p, n, tunnels);
  } else if (type == kEtherMplsUc || type == kEtherMplsMc) {
    // MPLS right after Ethernet: the first MPLS of this level; the IP behind it is inner
    // (on the inner level there is no deeper level to put it in).
    layer->has_mpls = parse_mpls(pkt, p, n, layer->mpls, tunnels ? &pkt->inner : NULL);
  }
}

static void parse_ip(struct pkt *pkt, struct pkt_layer *layer, const uint8_t *p, size_t n,
                     bool tunnels) {
  if (n < 1) {
    return;
  }
  unsigned version = p[0] >> 4;
  if (version == 4) {
    size_t ihl = (size_t)(p[0] & 0x0f) * 4;
    if (n < 20 || ihl < 20 || ihl > n) {
      return;
    }
    layer->ip_version = 4;
    uint8_t *f = layer->ip;
    memcpy(f + offsetof(struct ibv_flow_ipv4_ext_filter, src_ip), p + 12, 4);
    memcpy(f + offsetof(struct ibv_flow_ipv4_ext_filter, dst_ip), p + 16, 4);
    f[offsetof(struct ibv_flow_ipv4_ext_filter, proto)] = p[9];
    f[offsetof(struct ibv_flow_ipv4_ext_filter, tos)] = p[1];
    f[offsetof(struct ibv_flow_ipv4_ext_filter, ttl)] = p[8];
    f[offsetof(struct ibv_flow_ipv4_ext_filter, flags)] = p[6] >> 5;
    layer->proto = p[9];
    bool first_fragment = (be16(p + 6) & 0x1fff) == 0;
    if (first_fragment) {
      parse_l4(pkt, layer, p + ihl, n - ihl, tunnels);
    }
  } else if (version == 6) {
    if (n < 40) {
      return;
    }
    layer->ip_version = 6;
    uint8_t *f = layer->ip;
    memcpy(f + offsetof(struct ibv_flow_ipv6_filter, src_ip), p + 8, 16);
    memcpy(f + offsetof(struct ibv_flow_ipv6_filter, dst_ip), p + 24, 16);
    size_t label = offsetof(struct ibv_flow_ipv6_filter, flow_label);
    f[label] = 0;
    f[label + 1] = p[1] & 0x0f;
    f[label + 2] = p[2];
    f[label + 3] = p[3];
    f[offsetof(struct ibv_flow_ipv6_filter, next_hdr)] = p[6];
    f[offsetof(struct ibv_flow_ipv6_filter, traffic_class)] =
        (uint8_t)(((p[0] & 0x0f) << 4) | (p[1] >> 4));
    f[offsetof(struct ibv_flow_ipv6_filter, hop_limit)] = p[7];
    layer->proto = p[6];
    parse_l4(pkt, layer, p + 40, n - 40, tunnels);
  }
}

static void parse_l4(struct pkt *pkt, struct pkt_layer *layer, const uint8_t *p, size_t n,
                     bool tunnels) {
  if ((layer->proto == kProtoTcp || layer->proto == kProtoUdp) && n >= 4) {
    layer->has_ports = true;
    // The wire has src then dst; the filter has dst_port then src_port.
    memcpy(layer->ports + offsetof(struct ibv_flow_tcp_udp_filter, dst_port), p + 2, 2);
    memcpy(layer->ports + offsetof(struct ibv_flow_tcp_udp_filter, src_port), p, 2);
  }
  if (!tunnels) {
    return;
  }
  if (layer->proto == kProtoUdp && n >= 8) {
    uint16_t dport = be16(p + 2);
    if (dport == kUdpVxlan && n >= 16) {
      pkt->has_vxlan = true;
      memcpy(pkt->vxlan + 1, p + 8 + 4, 3); // tunnel_id: the 24-bit VNI, network order
      parse_eth(pkt, &pkt->inner, p + 16, n - 16, false);
    } else if (dport == kUdpMpls) {
      pkt->has_mpls_udp = parse_mpls(pkt, p + 8, n - 8, pkt->mpls_udp, &pkt->inner);
    }
  } else if (layer->proto == kProtoEsp && n >= 8) {
    pkt->has_esp = true;
    memcpy(pkt->esp, p, 8); // spi, seq
  } else if (layer->proto == kProtoGre && n >= 4) {
    bool c = (p[0] & 0x80) != 0;
    bool k = (p[0] & 0x20) != 0;
    bool s = (p[0] & 0x10) != 0;
    size_t hdr = 4 + (c ? 4u : 0u) + (k ? 4u : 0u) + (s ? 4u : 0u);
    if (n < hdr) {
      return;
    }
    pkt->has_gre = true;
    memcpy(pkt->gre, p, 4); // c_ks_res0_ver, protocol
    if (k) {
      memcpy(pkt->gre + offsetof(struct ibv_flow_gre_filter, key), p + 4 + (c ? 4 : 0), 4);
    }
    uint16_t protocol = be16(p + 2);
    if (protocol == kEtherIpv4 || protocol == kEtherIpv6) {
      parse_ip(pkt, &pkt->inner, p + hdr, n - hdr, false);
    } else if (protocol == kEtherMplsUc || protocol == kEtherMplsMc) {
      pkt->has_mpls_gre = parse_mpls(pkt, p + hdr, n - hdr, pkt->mpls_gre, &pkt->inner);
    }
  }
}

static bool mask_is_zero(const struct flowrt_sim_spec *s) {
  for (size_t i = 0; i < FLOWRT_SIM_FILTER_MAX; ++i) {
    if (s->mask[i] != 0) {
      return false;
    }
  }
  return true;
}

// (field & mask) == (value & mask) over the filter; a missing header (field NULL) matches only
// an all-zero mask.
static bool fields_match(const struct flowrt_sim_spec *s, const uint8_t *field) {
  if (field == NULL) {
    return mask_is_zero(s);
  }
  for (size_t i = 0; i < FLOWRT_SIM_FILTER_MAX; ++i) {
    if (((field[i] ^ s->val[i]) & s->mask[i]) != 0) {
      return false;
    }
  }
  return true;
}

static bool spec_matches(const struct pkt *pkt, const struct flowrt_sim_spec *s, uint32_t prev) {
  bool inner = (s->type & IBV_FLOW_SPEC_INNER) != 0;
  const struct pkt_layer *l = inner ? &pkt->inner : &pkt->outer;
  switch (s->type & ~(uint32_t)IBV_FLOW_SPEC_INNER) {
  case IBV_FLOW_SPEC_ETH: {
    size_t vlan = offsetof(struct ibv_flow_eth_filter, vlan_tag);
    if ((s->mask[vlan] != 0 || s->mask[vlan + 1] != 0) && !l->has_vlan) {
      return false; // cvlan_tag = 1 (§3.2)
    }
    return fields_match(s, l->has_eth ? l->eth : NULL);
  }
  case IBV_FLOW_SPEC_IPV4:
  case IBV_FLOW_SPEC_IPV4_EXT:
    return l->ip_version == 4 && fields_match(s, l->ip);
  case IBV_FLOW_SPEC_IPV6:
    return l->ip_version == 6 && fields_match(s, l->ip);
  case IBV_FLOW_SPEC_TCP:
  case IBV_FLOW_SPEC_UDP: {
    uint8_t proto =
        (s->type & ~(uint32_t)IBV_FLOW_SPEC_INNER) == IBV_FLOW_SPEC_TCP ? kProtoTcp : kProtoUdp;
    return l->ip_version != 0 && l->proto == proto &&
           fields_match(s, l->has_ports ? l->ports : NULL);
  }
  case IBV_FLOW_SPEC_ESP: // always the outer SPI (§3.2)
    return fields_match(s, pkt->has_esp ? pkt->esp : NULL);
  case IBV_FLOW_SPEC_GRE:
    return pkt->outer.ip_version != 0 && pkt->outer.proto == kProtoGre &&
           fields_match(s, pkt->has_gre ? pkt->gre : NULL);
  case IBV_FLOW_SPEC_VXLAN_TUNNEL:
    return fields_match(s, pkt->has_vxlan ? pkt->vxlan : NULL);
  case IBV_FLOW_SPEC_MPLS: // placed by the previous spec's raw type (§3.3)
    if (prev == IBV_FLOW_SPEC_UDP) {
      return fields_match(s, pkt->has_mpls_udp ? pkt->mpls_udp : NULL);
    }
    if (prev == IBV_FLOW_SPEC_GRE) {
      return fields_match(s, pkt->has_mpls_gre ? pkt->mpls_gre : NULL);
    }
    return fields_match(s, l->has_mpls ? l->mpls : NULL);
  default: // actions match everything
    return true;
  }
}

static bool flow_matches(const struct pkt *pkt, const struct flowrt_sim_rule *r) {
  for (unsigned i = 0; i < r->num_specs; ++i) {
    uint32_t prev = i > 0 ? r->specs[i - 1].type : 0;
    if (!spec_matches(pkt, &r->specs[i], prev)) {
      return false;
    }
  }
  return true;
}

// flow_is_multicast_only (§3.3): the first spec is an outer IPv4 with a multicast dst value, or
// an outer ETH whose dst value and mask both have the multicast bit.
static bool multicast_only(const struct flowrt_sim_rule *r) {
  if (r->type != IBV_FLOW_ATTR_NORMAL || r->num_specs < 1) {
    return false;
  }
  const struct flowrt_sim_spec *s = &r->specs[0];
  if (s->type == IBV_FLOW_SPEC_IPV4 || s->type == IBV_FLOW_SPEC_IPV4_EXT) {
    return (s->val[offsetof(struct ibv_flow_ipv4_filter, dst_ip)] & 0xf0) == 0xe0;
  }
  if (s->type == IBV_FLOW_SPEC_ETH) {
    size_t dst = offsetof(struct ibv_flow_eth_filter, dst_mac);
    return (s->val[dst] & 0x01) != 0 && (s->mask[dst] & 0x01) != 0;
  }
  return false;
}

static unsigned hw_table(const struct flowrt_sim_rule *r) {
  bool dont_trap = (r->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) != 0;
  if (!dont_trap && multicast_only(r)) {
    return kMcastTable;
  }
  return 2u * r->priority + (dont_trap ? 0u : 1u);
}

static bool flow_has(const struct flowrt_sim_rule *r, uint32_t type) {
  for (unsigned i = 0; i < r->num_specs; ++i) {
    if (r->specs[i].type == type) {
      return true;
    }
  }
  return false;
}

// --- Flow table entries (mlx5 fs_core, §3.8) ---------------------------------------------
//
// mlx5 keeps one flow table entry (FTE) per distinct match in a hardware table. A NORMAL
// ingress flow whose match equals an installed flow's, on the same port and in the same table
// (hw_table(): priority, DONT_TRAP, multicast-only placement), joins that entry: its QP is
// appended as one more destination (the same QP again only takes a reference), and the frame
// goes to every QP of the entry. fs_core refuses the join with EEXIST when the actions conflict
// or the tags differ (check_conflicting_ftes). The sim keeps one sim_flow per ibv_flow, and one
// sim_entry per entry, found by its key (port, table and the sorted match items) in a tsearch()
// tree; members never conflict, so any member stands for the entry's actions, and each carries
// the entry's tag in entry_tag. Flow groups are found by the key with the values zeroed.
//
// "Identical match" here (a conservative version of mlx5's equal match criteria and value):
// the two flows have the same multiset of match items, spec order ignored, where every match
// spec (actions excluded) gives one item of
//   - its type with the IBV_FLOW_SPEC_INNER flag, IPV4_EXT counted as IPV4 (the decoded IPV4
//     filter is the first 8 bytes of the IPV4_EXT layout, the rest zero, as mlx5 reads both);
//   - for MPLS, its placement: after a UDP spec, after a GRE spec, or neither (§3.3);
//   - its mask and its (val & mask) over the whole filter.
// A spec with an all-zero mask that imposes nothing (ETH, ESP, VXLAN_TUNNEL, MPLS) gives no
// item; IPV4/IPV6 (IP version) and TCP/UDP/GRE (IP protocol) with a zero mask still constrain
// the packet and stay. Matches mlx5 would merge through different specs (an ETH ether_type
// 0x0800 against an IPV4 spec's implied version, a TCP spec against an IPv4 proto of 6, ...) are
// not found: those flows stay separate, and the first installed of them wins.

struct match_item {
  uint32_t type;      // base type | INNER flag; IPV4_EXT as IPV4
  uint32_t placement; // MPLS: IBV_FLOW_SPEC_UDP or IBV_FLOW_SPEC_GRE after such a spec, else 0
  uint8_t mask[FLOWRT_SIM_FILTER_MAX];
  uint8_t val[FLOWRT_SIM_FILTER_MAX]; // val & mask
};

static bool is_action_type(uint32_t type) {
  return type >= IBV_FLOW_SPEC_ACTION_TAG;
}

// Whether the spec leaves out nothing: its mask is zero and its type implies no other field.
static bool imposes_nothing(const struct flowrt_sim_spec *s) {
  switch (s->type & ~(uint32_t)IBV_FLOW_SPEC_INNER) {
  case IBV_FLOW_SPEC_ETH:
  case IBV_FLOW_SPEC_ESP:
  case IBV_FLOW_SPEC_VXLAN_TUNNEL:
  case IBV_FLOW_SPEC_MPLS:
    return mask_is_zero(s);
  default:
    return false;
  }
}

// Fills `items` (FLOWRT_SIM_MAX_SPECS) with the rule's match items; returns how many.
static unsigned match_items(const struct flowrt_sim_rule *r, struct match_item *items) {
  unsigned n = 0;
  for (unsigned i = 0; i < r->num_specs; ++i) {
    const struct flowrt_sim_spec *s = &r->specs[i];
    if (is_action_type(s->type) || imposes_nothing(s)) {
      continue;
    }
    struct match_item *item = &items[n++];
    memset(item, 0, sizeof *item);
    uint32_t inner = s->type & IBV_FLOW_SPEC_INNER;
    uint32_t base = s->type & ~(uint32_t)IBV_FLOW_SPEC_INNER;
    item->type = (base == IBV_FLOW_SPEC_IPV4_EXT ? (uint32_t)IBV_FLOW_SPEC_IPV4 : base) | inner;
    if (base == IBV_FLOW_SPEC_MPLS && i > 0) {
      uint32_t prev = r->specs[i - 1].type; // the raw type, as spec_matches() places it
      item->placement = prev == IBV_FLOW_SPEC_UDP || prev == IBV_FLOW_SPEC_GRE ? prev : 0;
    }
    for (size_t k = 0; k < FLOWRT_SIM_FILTER_MAX; ++k) {
      item->mask[k] = s->mask[k];
      item->val[k] = (uint8_t)(s->val[k] & s->mask[k]);
    }
  }
  return n;
}

// Whether two flows have the same match items (spec order ignored).
static bool same_match(const struct flowrt_sim_rule *a, const struct flowrt_sim_rule *b) {
  struct match_item ia[FLOWRT_SIM_MAX_SPECS];
  struct match_item ib[FLOWRT_SIM_MAX_SPECS];
  unsigned na = match_items(a, ia);
  unsigned nb = match_items(b, ib);
  if (na != nb) {
    return false;
  }
  bool used[FLOWRT_SIM_MAX_SPECS] = {false};
  for (unsigned i = 0; i < na; ++i) {
    unsigned j = 0;
    while (j < nb && (used[j] || memcmp(&ia[i], &ib[j], sizeof ia[0]) != 0)) {
      ++j;
    }
    if (j == nb) {
      return false;
    }
    used[j] = true;
  }
  return true;
}

static bool normal_ingress(const struct flowrt_sim_rule *r) {
  return r->type == IBV_FLOW_ATTR_NORMAL && (r->flags & IBV_FLOW_ATTR_FLAGS_EGRESS) == 0;
}

// Whether two flows are (or would be) one flow table entry.
static bool same_entry(const struct flowrt_sim_rule *a, const struct flowrt_sim_rule *b) {
  return normal_ingress(a) && normal_ingress(b) && a->port == b->port &&
         hw_table(a) == hw_table(b) && same_match(a, b);
}

// The flow action objects of the flow's HANDLE specs, read from its stored buffer (the decoded
// rule does not keep pointers); returns how many, at most FLOWRT_SIM_MAX_SPECS.
static unsigned handle_objects(const struct sim_flow *f, const void **out) {
  unsigned n = 0;
  size_t offset = sizeof(struct ibv_flow_attr);
  for (unsigned i = 0; i < f->rule.num_specs && n < FLOWRT_SIM_MAX_SPECS; ++i) {
    const struct flowrt_sim_spec *s = &f->rule.specs[i];
    if (s->type == IBV_FLOW_SPEC_ACTION_HANDLE) {
      // The validator accepted the buffer: the whole spec lies inside it.
      out[n++] =
          read_pointer(f->attr + offset + offsetof(struct ibv_flow_spec_action_handle, action));
    }
    offset += s->size;
  }
  return n;
}

// check_conflicting_actions (§3.8) as far as the sim can see actions: the XOR of the action
// bits touching DROP conflicts; COUNT never does (an ingress rule always has DROP or FWD_DEST
// besides it, so fs_core's "only COUNT" case does not arise). A HANDLE names a flow action
// (ESP, modify-header, reformat, decap) of a kind the sim cannot tell, so any difference in the
// HANDLE objects, as a multiset, is taken as a conflict.
static bool actions_conflict(const struct sim_flow *a, const struct sim_flow *b) {
  if (flow_has(&a->rule, IBV_FLOW_SPEC_ACTION_DROP) !=
      flow_has(&b->rule, IBV_FLOW_SPEC_ACTION_DROP)) {
    return true;
  }
  const void *ha[FLOWRT_SIM_MAX_SPECS];
  const void *hb[FLOWRT_SIM_MAX_SPECS];
  unsigned na = handle_objects(a, ha);
  unsigned nb = handle_objects(b, hb);
  if (na != nb) {
    return true;
  }
  bool used[FLOWRT_SIM_MAX_SPECS] = {false};
  for (unsigned i = 0; i < na; ++i) {
    unsigned j = 0;
    while (j < nb && (used[j] || ha[i] != hb[j])) {
      ++j;
    }
    if (j == nb) {
      return true;
    }
    used[j] = true;
  }
  return false;
}

// The entries of one mlx5 flow table, and the size of its big groups (§3.8).
static uint32_t table_entries(const struct flowrt_sim_device *dev) {
  return dev->caps.mlx5_table_entries != 0 ? dev->caps.mlx5_table_entries : 65536;
}

static uint32_t big_group_size(const struct flowrt_sim_device *dev) {
  return table_entries(dev) / 7;
}

static int compare_items(const void *a, const void *b) {
  return memcmp(a, b, sizeof(struct match_item));
}

// Makes f's key (sim_key): with `values` false the values are zeroed before sorting, so flows
// whose masks are equal get equal keys. Returns ENOMEM or 0.
static int make_key(const struct sim_flow *f, bool values, struct sim_key *key) {
  struct match_item items[FLOWRT_SIM_MAX_SPECS];
  unsigned n = match_items(&f->rule, items);
  for (unsigned i = 0; i < n && !values; ++i) {
    memset(items[i].val, 0, sizeof items[i].val);
  }
  qsort(items, n, sizeof items[0], compare_items);
  key->port = f->rule.port;
  key->table = hw_table(&f->rule);
  key->num_items = n;
  key->items = malloc(n > 0 ? n * sizeof items[0] : 1);
  if (key->items == NULL) {
    return ENOMEM;
  }
  memcpy(key->items, items, n * sizeof items[0]);
  return 0;
}

static int compare_keys(const struct sim_key *a, const struct sim_key *b) {
  if (a->port != b->port) {
    return a->port < b->port ? -1 : 1;
  }
  if (a->table != b->table) {
    return a->table < b->table ? -1 : 1;
  }
  if (a->num_items != b->num_items) {
    return a->num_items < b->num_items ? -1 : 1;
  }
  return memcmp(a->items, b->items, a->num_items * sizeof a->items[0]);
}

// tsearch() comparators: entries and masks both start with their key.
static int compare_keyed(const void *a, const void *b) {
  return compare_keys((const struct sim_key *)a, (const struct sim_key *)b);
}

static struct sim_table *find_table(struct flowrt_sim_device *dev, uint8_t port, unsigned table,
                                    bool create) {
  for (struct sim_table *t = dev->tables; t != NULL; t = t->next) {
    if (t->port == port && t->table == table) {
      return t;
    }
  }
  struct sim_table *t = create ? calloc(1, sizeof *t) : NULL;
  if (t != NULL) {
    t->port = port;
    t->table = table;
    t->next = dev->tables;
    dev->tables = t;
  }
  return t;
}

static void free_table(struct flowrt_sim_device *dev, struct sim_table *t) {
  for (struct sim_table **link = &dev->tables; *link != NULL; link = &(*link)->next) {
    if (*link == t) {
      *link = t->next;
      break;
    }
  }
  free(t);
}

static void open_group(struct sim_group *g) {
  g->open_prev = NULL;
  g->open_next = g->mask->open;
  if (g->open_next != NULL) {
    g->open_next->open_prev = g;
  }
  g->mask->open = g;
}

static void close_group(struct sim_group *g) {
  if (g->open_prev != NULL) {
    g->open_prev->open_next = g->open_next;
  } else {
    g->mask->open = g->open_next;
  }
  if (g->open_next != NULL) {
    g->open_next->open_prev = g->open_prev;
  }
  g->open_prev = g->open_next = NULL;
}

// The mask of `key` (a group key), made if new; takes `key`'s items either way. NULL when out
// of memory.
static struct sim_mask *find_mask(struct flowrt_sim_device *dev, struct sim_key *key) {
  struct sim_mask probe = {.key = *key};
  void *found = tfind(&probe, &dev->masks, compare_keyed);
  if (found != NULL) {
    free(key->items);
    return *(struct sim_mask **)found;
  }
  struct sim_mask *m = calloc(1, sizeof *m);
  if (m != NULL) {
    m->key = *key; // tsearch() compares by it
  }
  if (m == NULL || tsearch(m, &dev->masks, compare_keyed) == NULL) {
    free(m);
    free(key->items);
    return NULL;
  }
  return m;
}

static void drop_mask_if_unused(struct flowrt_sim_device *dev, struct sim_mask *m) {
  if (m->num_groups == 0) {
    tdelete(m, &dev->masks, compare_keyed);
    free(m->key.items);
    free(m);
  }
}

// A table entry for a new match of f (alloc_auto_flow_group, §3.8): a free entry in a group of
// f's mask, or a new group in the first gap of the table's index range, of entries/7 entries
// while fewer than 6 such groups exist and of one entry after that. ENOSPC when nothing fits.
static int take_entry(struct flowrt_sim_device *dev, const struct sim_flow *f,
                      struct sim_group **out) {
  struct sim_key mask_key;
  if (make_key(f, false, &mask_key) != 0) {
    return ENOMEM;
  }
  struct sim_mask *m = find_mask(dev, &mask_key);
  if (m == NULL) {
    return ENOMEM;
  }
  struct sim_group *g = m->open;
  if (g != NULL) {
    if (++g->used == g->size) {
      close_group(g);
    }
    *out = g;
    return 0;
  }
  uint32_t entries = table_entries(dev);
  uint32_t group_size = big_group_size(dev);
  struct sim_table *t = find_table(dev, m->key.port, m->key.table, true);
  g = t != NULL ? calloc(1, sizeof *g) : NULL;
  if (g == NULL) {
    drop_mask_if_unused(dev, m);
    return ENOMEM;
  }
  uint32_t size = t->big < 6 && group_size > 0 ? group_size : 1;
  // The first gap that takes `size` entries, in index order; without holes, the end.
  struct sim_group *after = t->last;
  uint32_t candidate = t->end;
  if (t->holes) {
    candidate = 0;
    after = NULL;
    for (struct sim_group *e = t->first; e != NULL && candidate + size > e->start; e = e->next) {
      candidate = e->start + e->size;
      after = e;
    }
  }
  if ((uint64_t)candidate + size > entries) {
    free(g);
    drop_mask_if_unused(dev, m);
    if (t->first == NULL) {
      free_table(dev, t);
    }
    return ENOSPC;
  }
  g->table = t;
  g->mask = m;
  g->start = candidate;
  g->size = size;
  g->used = 1;
  g->prev = after;
  g->next = after != NULL ? after->next : t->first;
  if (g->next != NULL) {
    g->next->prev = g;
  } else {
    t->last = g;
    t->end = candidate + size;
  }
  if (after != NULL) {
    after->next = g;
  } else {
    t->first = g;
  }
  t->big += size == group_size;
  ++m->num_groups;
  if (g->used < g->size) {
    open_group(g);
  }
  *out = g;
  return 0;
}

// Gives back one entry of g; frees g when it is empty, and its mask and table with it.
static void release_entry(struct flowrt_sim_device *dev, struct sim_group *g) {
  if (g->used-- == g->size) {
    open_group(g);
  }
  if (g->used > 0) {
    return;
  }
  close_group(g);
  struct sim_table *t = g->table;
  t->big -= g->size == big_group_size(dev);
  if (g->prev != NULL) {
    g->prev->next = g->next;
  } else {
    t->first = g->next;
  }
  if (g->next != NULL) {
    g->next->prev = g->prev;
    t->holes = true;
  } else {
    t->last = g->prev;
    t->end = g->prev != NULL ? g->prev->start + g->prev->size : 0;
  }
  struct sim_mask *m = g->mask;
  --m->num_groups;
  free(g);
  drop_mask_if_unused(dev, m);
  if (t->first == NULL) {
    free_table(dev, t);
  }
}

static void leave_entry(struct flowrt_sim_device *dev, struct sim_flow *f) {
  struct sim_entry *e = f->entry;
  if (e == NULL) {
    return;
  }
  f->entry = NULL;
  for (struct sim_flow **link = &e->members; *link != NULL; link = &(*link)->entry_next) {
    if (*link == f) {
      *link = f->entry_next;
      break;
    }
  }
  f->entry_next = NULL;
  if (e->members != NULL) {
    return; // another member keeps the entry
  }
  tdelete(e, &dev->entries, compare_keyed);
  release_entry(dev, e->group);
  free(e->key.items);
  free(e);
}

static int join_entry(struct flowrt_sim_device *dev, struct sim_flow *f) {
  f->entry_tagged = false;
  f->entry_tag = 0;
  for (unsigned i = 0; i < f->rule.num_specs; ++i) {
    if (f->rule.specs[i].type == IBV_FLOW_SPEC_ACTION_TAG) {
      f->entry_tagged = true; // the last TAG wins (§3.7)
      f->entry_tag = f->rule.specs[i].tag_id;
    }
  }
  // fs_core is mlx5's; how mlx4 firmware treats duplicates is not known (§7): no check there.
  if (dev->profile != FLOWRT_SIM_MLX5 || !normal_ingress(&f->rule)) {
    return 0;
  }
  struct sim_entry probe;
  if (make_key(f, true, &probe.key) != 0) {
    return ENOMEM;
  }
  void *found = tfind(&probe, &dev->entries, compare_keyed);
  if (found != NULL) {
    free(probe.key.items);
    struct sim_entry *e = *(struct sim_entry **)found;
    const struct sim_flow *m = e->members;
    if (actions_conflict(m, f)) {
      return EEXIST;
    }
    // check_conflicting_ftes: only a flow with a TAG is checked, against the entry's tag (0 if
    // the entry has none); a flow without one joins and shares the entry's tag.
    if (f->entry_tagged && f->entry_tag != m->entry_tag) {
      return EEXIST;
    }
    f->entry_tagged = m->entry_tagged;
    f->entry_tag = m->entry_tag;
    f->entry = e;
    f->entry_next = e->members;
    e->members = f;
    return 0;
  }
  struct sim_entry *e = calloc(1, sizeof *e);
  struct sim_group *g = NULL;
  int err = e != NULL ? take_entry(dev, f, &g) : ENOMEM;
  if (err == 0) {
    e->key = probe.key; // tsearch() compares by it
    if (tsearch(e, &dev->entries, compare_keyed) == NULL) {
      release_entry(dev, g);
      err = ENOMEM;
    }
  }
  if (err != 0) {
    free(probe.key.items);
    free(e);
    return err;
  }
  e->members = f;
  e->group = g;
  f->entry = e;
  return 0;
}

static void count_frame(struct sim_flow *f, size_t len) {
  struct sim_counters *c = f->counters;
  if (c == NULL) {
    return;
  }
  for (size_t p = 0; p < c->num_points; ++p) {
    for (size_t i = 0; i < c->num_slots; ++i) {
      if (c->slots[i].index != c->points[p].index) {
        continue;
      }
      c->slots[i].value += c->points[p].desc == IBV_COUNTER_PACKETS ? 1u : (uint64_t)len;
    }
  }
}

static void deliver(struct flowrt_sim_result *out, struct sim_flow *f, bool with_actions) {
  if (out->num_deliveries >= sizeof out->deliveries / sizeof out->deliveries[0]) {
    return;
  }
  struct flowrt_sim_delivery *d = &out->deliveries[out->num_deliveries++];
  d->qp = &f->qp->qp;
  d->tag = 0;
  d->tagged = 0;
  if (with_actions && f->entry_tagged) {
    d->tag = f->entry_tag;
    d->tagged = 1;
  }
}

// Whether `a` was installed before `b`: flow handles are handed out in increasing order.
static bool installed_before(const struct sim_flow *a, const struct sim_flow *b) {
  return a->flow.handle < b->flow.handle;
}

// The flow of `type` on `port` that was installed first among those `accept` takes, or NULL;
// NORMAL flows are restricted to hardware table `table`.
static struct sim_flow *first_flow(struct flowrt_sim_device *dev, uint8_t port, uint32_t type,
                                   unsigned table, const struct pkt *pkt, bool egress) {
  struct sim_flow *best = NULL;
  for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
    const struct flowrt_sim_rule *r = &f->rule;
    if (r->type != type || r->port != port ||
        ((r->flags & IBV_FLOW_ATTR_FLAGS_EGRESS) != 0) != egress) {
      continue;
    }
    if (type == IBV_FLOW_ATTR_NORMAL && (hw_table(r) != table || !flow_matches(pkt, r))) {
      continue;
    }
    if (best == NULL || installed_before(f, best)) {
      best = f;
    }
  }
  return best;
}

// The member of `first`'s flow table entry installed next after `prev` (NULL: the first), or
// NULL when there is none; `first` is a member itself.
static struct sim_flow *next_member(struct flowrt_sim_device *dev, const struct sim_flow *first,
                                    const struct sim_flow *prev) {
  struct sim_flow *next = NULL;
  for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
    if ((prev != NULL && !installed_before(prev, f)) ||
        (next != NULL && !installed_before(f, next))) {
      continue;
    }
    if (f == first || same_entry(&f->rule, &first->rule)) {
      next = f;
    }
  }
  return next;
}

// Whether a member of `first`'s entry installed before `m` is on m's QP: the entry has one
// destination per QP, so the QP gets one copy.
static bool qp_seen(struct flowrt_sim_device *dev, const struct sim_flow *first,
                    const struct sim_flow *m) {
  for (const struct sim_flow *e = next_member(dev, first, NULL); e != NULL && e != m;
       e = next_member(dev, first, e)) {
    if (e->qp == m->qp) {
      return true;
    }
  }
  return false;
}

// --- mlx4 (§4) ------------------------------------------------------------------------------
//
// mlx4_ib hands only some fields to the DMFS firmware (§4.3): ETH dst_mac and vlan_tag (src_mac
// and ether_type are silently ignored), IPv4 src and dst, TCP/UDP ports. Rules have no actions.
// A rule's specs apply whatever its type (§4.2).

static bool spec_matches_mlx4(const struct pkt *pkt, const struct flowrt_sim_spec *s) {
  const struct pkt_layer *l = &pkt->outer;
  struct flowrt_sim_spec used = *s;
  switch (s->type) {
  case IBV_FLOW_SPEC_ETH: {
    size_t src = offsetof(struct ibv_flow_eth_filter, src_mac);
    size_t type = offsetof(struct ibv_flow_eth_filter, ether_type);
    memset(used.mask + src, 0, 6);
    memset(used.mask + type, 0, 2);
    size_t vlan = offsetof(struct ibv_flow_eth_filter, vlan_tag);
    if ((used.mask[vlan] != 0 || used.mask[vlan + 1] != 0) && !l->has_vlan) {
      return false;
    }
    return fields_match(&used, l->has_eth ? l->eth : NULL);
  }
  case IBV_FLOW_SPEC_IPV4:
  case IBV_FLOW_SPEC_IPV4_EXT:
    memset(used.mask + 8, 0, FLOWRT_SIM_FILTER_MAX - 8); // src_ip, dst_ip only
    return l->ip_version == 4 && fields_match(&used, l->ip);
  case IBV_FLOW_SPEC_TCP:
  case IBV_FLOW_SPEC_UDP:
    return l->ip_version == 4 &&
           l->proto == (s->type == IBV_FLOW_SPEC_TCP ? kProtoTcp : kProtoUdp) &&
           fields_match(s, l->has_ports ? l->ports : NULL);
  default:
    return false; // the validator refused every other spec (§4.3)
  }
}

static bool flow_matches_mlx4(const struct pkt *pkt, const struct flowrt_sim_rule *r) {
  for (unsigned i = 0; i < r->num_specs; ++i) {
    if (!spec_matches_mlx4(pkt, &r->specs[i])) {
      return false;
    }
  }
  return true;
}

// The hardware priority of a trapping NORMAL rule: MLX4_DOMAIN_UVERBS | priority, except that
// a rule whose only spec is an ETH with a multicast or broadcast dst MAC goes to
// MLX4_DOMAIN_NIC (§4.4, as on a PF).
static uint32_t mlx4_priority(const struct flowrt_sim_rule *r) {
  if (r->num_specs == 1 && r->specs[0].type == IBV_FLOW_SPEC_ETH &&
      (r->specs[0].val[offsetof(struct ibv_flow_eth_filter, dst_mac)] & 0x01) != 0) {
    return 0x5000;
  }
  return 0x1000u | r->priority;
}

// A DONT_TRAP rule is a unicast and/or multicast sniffer (§4.2): with no spec or a zero dst MAC
// mask it copies every frame, with the 01:00:00:00:00:00 mask the frames whose multicast bit
// equals the value's.
static bool mlx4_dont_trap_copies(const struct flowrt_sim_rule *r, bool multicast) {
  if (r->num_specs == 0) {
    return true;
  }
  size_t dst = offsetof(struct ibv_flow_eth_filter, dst_mac);
  if ((r->specs[0].mask[dst] & 0x01) == 0) {
    return true;
  }
  return ((r->specs[0].val[dst] & 0x01) != 0) == multicast;
}

static void receive_mlx4(struct flowrt_sim_device *dev, uint8_t port, const struct pkt *pkt,
                         bool multicast, struct flowrt_sim_result *out) {
  // DONT_TRAP copies, in installation order (the list is newest first).
  unsigned n = 0;
  for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
    ++n;
  }
  for (unsigned k = n; k > 0; --k) {
    unsigned seen = 0;
    for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
      if (++seen == k && f->rule.port == port && f->rule.type == IBV_FLOW_ATTR_NORMAL &&
          (f->rule.flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) != 0 &&
          mlx4_dont_trap_copies(&f->rule, multicast)) {
        deliver(out, f, false);
      }
    }
  }
  // The trapping rule of the lowest hardware priority, the first installed among equals (the
  // firmware's choice between equal priorities is not documented, §4.4).
  struct sim_flow *best = NULL;
  for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
    const struct flowrt_sim_rule *r = &f->rule;
    if (r->port != port || r->type != IBV_FLOW_ATTR_NORMAL ||
        (r->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) != 0 || !flow_matches_mlx4(pkt, r)) {
      continue;
    }
    if (best == NULL || mlx4_priority(r) < mlx4_priority(&best->rule) ||
        (mlx4_priority(r) == mlx4_priority(&best->rule) && installed_before(f, best))) {
      best = f;
    }
  }
  if (best == NULL) {
    // The default rules, with their specs applied (§4.2).
    for (int pass = 0; pass < 2 && best == NULL; ++pass) {
      uint32_t type = pass == 0 ? IBV_FLOW_ATTR_MC_DEFAULT : IBV_FLOW_ATTR_ALL_DEFAULT;
      if (pass == 0 && !multicast) {
        continue;
      }
      for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
        if (f->rule.port == port && f->rule.type == type && flow_matches_mlx4(pkt, &f->rule) &&
            (best == NULL || installed_before(f, best))) {
          best = f;
        }
      }
    }
  }
  if (best != NULL) {
    deliver(out, best, false);
  }
  // Sniffers mirror the port's receive side, with their specs applied.
  for (unsigned k = n; k > 0; --k) {
    unsigned seen = 0;
    for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
      if (++seen == k && f->rule.port == port && f->rule.type == IBV_FLOW_ATTR_SNIFFER &&
          flow_matches_mlx4(pkt, &f->rule)) {
        deliver(out, f, false);
      }
    }
  }
}

// Checks the arguments of flowrt_sim_receive()/send(), clears `*out` and parses the frame.
static int parse_frame(struct flowrt_sim_device *dev, uint8_t port, const void *frame, size_t len,
                       struct flowrt_sim_result *out, struct pkt *pkt) {
  const uint8_t *p = frame;
  if (dev == NULL || out == NULL || p == NULL || port < 1 || port > dev->num_ports || len < 14 ||
      (be16(p + 12) == kEtherVlan && len < 18)) {
    return -EINVAL;
  }
  memset(out, 0, sizeof *out);
  memset(pkt, 0, sizeof *pkt);
  parse_eth(pkt, &pkt->outer, p, len, true);
  return 0;
}

int flowrt_sim_send(struct flowrt_sim_device *dev, uint8_t port, const void *frame, size_t len,
                    struct flowrt_sim_result *out) {
  struct pkt pkt;
  int rc = parse_frame(dev, port, frame, len, out, &pkt);
  if (rc != 0) {
    return rc;
  }
  if (dev->profile != FLOWRT_SIM_MLX5) {
    return -EOPNOTSUPP; // mlx4 has no egress rules (§4.1)
  }
  // The egress namespace has the same priority mapping (§3.6); the first matching flow decides:
  // DROP drops, anything else is ALLOW. A DONT_TRAP flow counts and lets the next table decide.
  for (unsigned table = 0; table <= kMcastTable; ++table) {
    struct sim_flow *f = first_flow(dev, port, IBV_FLOW_ATTR_NORMAL, table, &pkt, true);
    if (f == NULL) {
      continue;
    }
    count_frame(f, len);
    if (flow_has(&f->rule, IBV_FLOW_SPEC_ACTION_DROP)) {
      out->dropped = 1;
      return 0;
    }
    if ((f->rule.flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) == 0) {
      return 0;
    }
  }
  return 0;
}

int flowrt_sim_receive(struct flowrt_sim_device *dev, uint8_t port, const void *frame, size_t len,
                       struct flowrt_sim_result *out) {
  struct pkt pkt;
  int rc = parse_frame(dev, port, frame, len, out, &pkt);
  if (rc != 0) {
    return rc;
  }
  const uint8_t *p = frame;
  if (dev->profile == FLOWRT_SIM_MLX4) {
    receive_mlx4(dev, port, &pkt, (p[0] & 0x01) != 0, out);
    return 0;
  }

  bool taken = false;
  for (unsigned table = 0; table <= kMcastTable && !taken; ++table) {
    // The first installed matching flow; its entry takes the frame (§3.8). Every member
    // counts it, and the entry delivers one copy to each QP, in installation order.
    struct sim_flow *f = first_flow(dev, port, IBV_FLOW_ATTR_NORMAL, table, &pkt, false);
    if (f == NULL) {
      continue;
    }
    bool drop = flow_has(&f->rule, IBV_FLOW_SPEC_ACTION_DROP); // the same for every member
    for (struct sim_flow *m = next_member(dev, f, NULL); m != NULL; m = next_member(dev, f, m)) {
      count_frame(m, len);
      if (!drop && !qp_seen(dev, f, m)) {
        deliver(out, m, true);
      }
    }
    if (drop) {
      out->dropped = 1; // DROP never forwards to the next priority, DONT_TRAP or not (§3.4)
      taken = true;
    } else {
      taken = (f->rule.flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) == 0;
    }
  }
  if (!taken) {
    // Leftovers (§3.5): the user specs and actions are ignored.
    struct sim_flow *f = NULL;
    if ((p[0] & 0x01) != 0) {
      f = first_flow(dev, port, IBV_FLOW_ATTR_MC_DEFAULT, 0, &pkt, false);
    }
    if (f == NULL) {
      f = first_flow(dev, port, IBV_FLOW_ATTR_ALL_DEFAULT, 0, &pkt, false);
    }
    if (f != NULL) {
      deliver(out, f, false);
    }
  }
  // Sniffers (§3.5): every one on the port, in installation order (the list is newest first).
  unsigned sniffers = 0;
  for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
    sniffers += f->rule.type == IBV_FLOW_ATTR_SNIFFER && f->rule.port == port;
  }
  for (unsigned k = sniffers; k > 0; --k) {
    unsigned seen = 0;
    for (struct sim_flow *f = dev->flows; f != NULL; f = f->next) {
      if (f->rule.type == IBV_FLOW_ATTR_SNIFFER && f->rule.port == port && ++seen == k) {
        deliver(out, f, false);
        break;
      }
    }
  }
  return 0;
}
