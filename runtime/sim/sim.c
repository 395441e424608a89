// The simulated device: a verbs_context whose flow and counters ops store what the validator
// accepts.
#include "sim.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
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
  struct sim_flow *next;
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
  unsigned num_flows;
  unsigned num_counters;
  unsigned num_calls;
  unsigned fail_countdown; // 0: off; else the call that reaches 1 fails
  int fail_errno;
  struct verbs_context vctx; // verbs.h finds it from &vctx.context (verbs_get_ctx)
};

// What each profile's provider implements (§1.5, §1.6): both have create/destroy flow; only
// mlx5 has the counters ops.
struct sim_profile_ops {
  bool counters;
};

static const struct sim_profile_ops kProfileOps[] = {
    [FLOWRT_SIM_MLX5] = {true},
    [FLOWRT_SIM_MLX4] = {false},
};

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
  if (err != 0) {
    free(f);
    free(copy);
    errno = err;
    return NULL;
  }
  f->attr = copy;
  f->length = length;
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

unsigned flowrt_sim_num_calls(const struct flowrt_sim_device *dev) {
  return dev->num_calls;
}
