// The sim's validator: libibverbs' conversion, the kernel core and the mlx5/mlx4 driver checks, in
// order.
#include "flowrt/sim_validate.h"

#include <errno.h>
#include <infiniband/verbs.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// The stages run in the order of the real call chain (verbs-facts §1.5, §2,
// §3, §4): the mlx5 provider's COUNT scan, libibverbs' spec conversion
// (which also produces the decoded rule), the kernel core on the converted
// command, then the driver. Each stage returns at its first failure, as the
// real code does. Everything is read from the user buffer with memcpy or
// byte by byte; the buffer may have any alignment.

// --- Bytes and reasons ----------------------------------------------------

static uint16_t host16(const unsigned char *p) {
  uint16_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static uint32_t host32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static uint32_t net32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint16_t net16(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

static bool all_zero(const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (p[i] != 0) {
      return false;
    }
  }
  return true;
}

struct why {
  char *text;
  size_t size;
};

static int say(struct why *why, int err, const char *format, ...) {
  if (why->text != NULL && why->size > 0) {
    va_list args;
    va_start(args, format);
    vsnprintf(why->text, why->size, format, args);
    va_end(args);
  }
  return err;
}

// --- The spec types libibverbs converts (§1.3, §1.5) ------------------------

struct spec_kind {
  uint32_t type;        // the user base type
  const char *name;     // the verbs.h name, without IBV_FLOW_SPEC_
  bool inner_ok;        // libibverbs also converts type | IBV_FLOW_SPEC_INNER
  bool sized;           // the filter size comes from hdr.size (get_filters_size)
  uint8_t val_offset;   // where val starts in the user spec (for actions: the payload)
  uint8_t mask_offset;  // fixed-size filters: where mask starts
  uint8_t filter;       // fixed: bytes copied of val and mask; sized: the minimum filter size
  uint8_t extent;       // fixed filters and actions: bytes of the spec libibverbs reads
  uint32_t kernel_type; // base type of the kernel spec libibverbs writes
  uint8_t kernel_size;  // size of the kernel spec libibverbs writes (§1.3 kernel table)
  uint8_t real_size;    // the kernel filter's real size (§2 spec_filter_size); 0 for actions
};

#define FIXED(spec, filter_type)                                                                   \
  false, offsetof(struct spec, val), offsetof(struct spec, mask), sizeof(struct filter_type),      \
      offsetof(struct spec, mask) + sizeof(struct filter_type)
#define SIZED(spec, min) true, offsetof(struct spec, val), 0, (min), 0
#define ACTION(payload_end) false, 0, 0, 0, (payload_end)

static const struct spec_kind kSpecKinds[] = {
    {IBV_FLOW_SPEC_ETH, "ETH", true, FIXED(ibv_flow_spec_eth, ibv_flow_eth_filter),
     IBV_FLOW_SPEC_ETH, 40, 16},
    // A user IPV4 spec becomes a kernel IPv4 spec with an 8-byte filter: proto, tos, ttl and
    // flags are absent, i.e. zero (§1.5).
    {IBV_FLOW_SPEC_IPV4, "IPV4", true, FIXED(ibv_flow_spec_ipv4, ibv_flow_ipv4_filter),
     IBV_FLOW_SPEC_IPV4, 24, 12},
    {IBV_FLOW_SPEC_IPV4_EXT, "IPV4_EXT", true,
     SIZED(ibv_flow_spec_ipv4_ext, offsetof(struct ibv_flow_ipv4_ext_filter, flags) + 1),
     IBV_FLOW_SPEC_IPV4, 32, 12},
    {IBV_FLOW_SPEC_IPV6, "IPV6", true,
     SIZED(ibv_flow_spec_ipv6, offsetof(struct ibv_flow_ipv6_filter, hop_limit) + 1),
     IBV_FLOW_SPEC_IPV6, 88, 39},
    {IBV_FLOW_SPEC_ESP, "ESP", true, FIXED(ibv_flow_spec_esp, ibv_flow_esp_filter),
     IBV_FLOW_SPEC_ESP, 24, 8},
    {IBV_FLOW_SPEC_TCP, "TCP", true, FIXED(ibv_flow_spec_tcp_udp, ibv_flow_tcp_udp_filter),
     IBV_FLOW_SPEC_TCP, 16, 4},
    {IBV_FLOW_SPEC_UDP, "UDP", true, FIXED(ibv_flow_spec_tcp_udp, ibv_flow_tcp_udp_filter),
     IBV_FLOW_SPEC_UDP, 16, 4},
    {IBV_FLOW_SPEC_VXLAN_TUNNEL, "VXLAN_TUNNEL", false,
     SIZED(ibv_flow_spec_tunnel, offsetof(struct ibv_flow_tunnel_filter, tunnel_id) + 4),
     IBV_FLOW_SPEC_VXLAN_TUNNEL, 16, 4},
    {IBV_FLOW_SPEC_GRE, "GRE", false, FIXED(ibv_flow_spec_gre, ibv_flow_gre_filter),
     IBV_FLOW_SPEC_GRE, 24, 8},
    {IBV_FLOW_SPEC_MPLS, "MPLS", true, FIXED(ibv_flow_spec_mpls, ibv_flow_mpls_filter),
     IBV_FLOW_SPEC_MPLS, 16, 4},
    {IBV_FLOW_SPEC_ACTION_TAG, "ACTION_TAG", false,
     ACTION(offsetof(struct ibv_flow_spec_action_tag, tag_id) + 4), IBV_FLOW_SPEC_ACTION_TAG, 16,
     0},
    {IBV_FLOW_SPEC_ACTION_DROP, "ACTION_DROP", false,
     ACTION(offsetof(struct ibv_flow_spec_action_drop, size) + 2), IBV_FLOW_SPEC_ACTION_DROP, 8, 0},
    {IBV_FLOW_SPEC_ACTION_HANDLE, "ACTION_HANDLE", false,
     ACTION(sizeof(struct ibv_flow_spec_action_handle)), IBV_FLOW_SPEC_ACTION_HANDLE, 16, 0},
    {IBV_FLOW_SPEC_ACTION_COUNT, "ACTION_COUNT", false,
     ACTION(sizeof(struct ibv_flow_spec_counter_action)), IBV_FLOW_SPEC_ACTION_COUNT, 16, 0},
};

enum { kHeaderRead = 6 }; // libibverbs reads hdr.type (4 bytes) and hdr.size (2)
enum { kSpecHeader = 8 }; // sizeof the spec header, also in the kernel
enum { kMaxSpecs = FLOWRT_SIM_MAX_SPECS };

static const struct spec_kind *find_kind(uint32_t base) {
  for (size_t i = 0; i < sizeof kSpecKinds / sizeof kSpecKinds[0]; ++i) {
    if (kSpecKinds[i].type == base) {
      return &kSpecKinds[i];
    }
  }
  return NULL;
}

static bool is_inner(uint32_t type) {
  return (type & IBV_FLOW_SPEC_INNER) != 0;
}

static bool is_action(const struct spec_kind *kind) {
  return kind->type >= IBV_FLOW_SPEC_ACTION_TAG;
}

// The kernel type libibverbs writes for a user spec: IPV4_EXT becomes IPV4, INNER is kept.
static uint32_t kernel_type(const struct flowrt_sim_spec *spec) {
  const struct spec_kind *kind = find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER);
  return kind->kernel_type | (spec->type & IBV_FLOW_SPEC_INNER);
}

static const char *inner_word(uint32_t type) {
  return is_inner(type) ? "INNER " : "";
}

// --- libibverbs: ibv_cmd_create_flow / ib_spec_to_kern_spec (§1.4, §1.5) ----

// Converts spec `index` at `offset` as libibverbs does, into `out`.
static int convert_spec(const unsigned char *p, size_t size, size_t offset, unsigned index,
                        struct flowrt_sim_spec *out, struct why *why) {
  if (offset > size || size - offset < kHeaderRead) {
    return say(why, EINVAL,
               "spec %u: its header at offset %zu is past the end of the %zu-byte buffer "
               "(libibverbs walks specs by their size, §1.4)",
               index, offset, size);
  }
  const unsigned char *s = p + offset;
  uint32_t type = host32(s + offsetof(struct ibv_flow_spec_eth, type));
  uint16_t spec_size = host16(s + offsetof(struct ibv_flow_spec_eth, size));
  const struct spec_kind *kind = find_kind(type & ~(uint32_t)IBV_FLOW_SPEC_INNER);
  if (kind == NULL) {
    return say(why, EINVAL, "spec %u: type 0x%x is not a spec type libibverbs converts (§1.5)",
               index, (unsigned)type);
  }
  if (is_inner(type) && !kind->inner_ok) {
    return say(why, EINVAL, "spec %u: libibverbs does not convert INNER %s (0x%x) (§1.5)", index,
               kind->name, (unsigned)type);
  }

  // get_filters_size computes the user filter size in size_t and stores it in an int: a
  // size below 8 comes out negative, so every size under 8 + 2 * minimum is refused.
  size_t filter_size = 0;
  size_t extent = kind->extent;
  if (kind->sized) {
    if (spec_size < kSpecHeader + 2u * kind->filter) {
      return say(why, EINVAL,
                 "spec %u (%s%s): size %u leaves a filter below libibverbs' minimum of %u bytes "
                 "(get_filters_size, §1.5)",
                 index, inner_word(type), kind->name, (unsigned)spec_size, (unsigned)kind->filter);
    }
    filter_size = (spec_size - kSpecHeader) / 2u;
    extent = kind->val_offset + 2 * filter_size;
  }
  size_t needed = spec_size > extent ? spec_size : extent;
  if (needed > size - offset) {
    return say(why, EINVAL,
               "spec %u (%s%s) at offset %zu needs %zu bytes but the %zu-byte buffer ends first "
               "(truncated, §1.4)",
               index, inner_word(type), kind->name, offset, needed, size);
  }

  memset(out, 0, sizeof *out);
  out->type = type;
  out->size = spec_size;
  if (kind->sized) {
    const unsigned char *mask = s + kind->val_offset + filter_size;
    if (filter_size > kind->filter && !all_zero(mask + kind->filter, filter_size - kind->filter)) {
      return say(why, EOPNOTSUPP,
                 "spec %u (%s%s): mask bytes %u..%zu, beyond the %u-byte kernel filter, are not "
                 "all zero%s (get_filters_size, §1.5)",
                 index, inner_word(type), kind->name, (unsigned)kind->filter, filter_size - 1,
                 (unsigned)kind->filter,
                 kind->type == IBV_FLOW_SPEC_IPV6 && spec_size == sizeof(struct ibv_flow_spec_ipv6)
                     ? "; byte 39 is the IPv6 mask's pad byte"
                     : "");
    }
    out->filter_size = kind->filter;
    memcpy(out->val, s + kind->val_offset, kind->filter);
    memcpy(out->mask, mask, kind->filter);
  } else if (!is_action(kind)) {
    out->filter_size = kind->filter;
    memcpy(out->val, s + kind->val_offset, kind->filter);
    memcpy(out->mask, s + kind->mask_offset, kind->filter);
  } else if (kind->type == IBV_FLOW_SPEC_ACTION_TAG) {
    out->tag_id = host32(s + offsetof(struct ibv_flow_spec_action_tag, tag_id));
  }
  // HANDLE and COUNT carry a pointer that libibverbs turns into a kernel object handle; the sim
  // has no objects and never reads it.
  return 0;
}

// Converts the whole buffer as ibv_cmd_create_flow does: all num_of_specs specs, before the
// kernel sees anything. `rule->num_specs` may exceed FLOWRT_SIM_MAX_SPECS here (only the first
// specs are kept); the kernel core refuses such rules.
static int convert(const unsigned char *p, size_t size, struct flowrt_sim_rule *rule,
                   struct why *why) {
  if (size < sizeof(struct ibv_flow_attr)) {
    return say(why, EINVAL,
               "the buffer has %zu bytes, fewer than the %zu of struct ibv_flow_attr "
               "(truncated, §1.4)",
               size, sizeof(struct ibv_flow_attr));
  }
  memset(rule, 0, sizeof *rule);
  // comp_mask and size are never read by libibverbs (§1.4).
  rule->type = host32(p + offsetof(struct ibv_flow_attr, type));
  rule->priority = host16(p + offsetof(struct ibv_flow_attr, priority));
  rule->num_specs = p[offsetof(struct ibv_flow_attr, num_of_specs)];
  rule->port = p[offsetof(struct ibv_flow_attr, port)];
  rule->flags = host32(p + offsetof(struct ibv_flow_attr, flags));

  size_t offset = sizeof(struct ibv_flow_attr);
  for (unsigned i = 0; i < rule->num_specs; ++i) {
    struct flowrt_sim_spec scratch;
    struct flowrt_sim_spec *out = i < kMaxSpecs ? &rule->specs[i] : &scratch;
    int err = convert_spec(p, size, offset, i, out, why);
    if (err != 0) {
      return err;
    }
    offset += out->size;
  }
  rule->length = offset;
  return 0;
}

// --- mlx5 provider: mlx5_create_flow / get_flow_mcounters (§1.6) -------------

// Runs before ibv_cmd_create_flow. It walks the same headers; where the walk leaves the buffer
// it stops, so that libibverbs' own checks (which come first for earlier specs) decide.
static int mlx5_provider_counters(const unsigned char *p, size_t size, struct why *why) {
  if (size < sizeof(struct ibv_flow_attr)) {
    return 0;
  }
  unsigned num_specs = p[offsetof(struct ibv_flow_attr, num_of_specs)];
  size_t offset = sizeof(struct ibv_flow_attr);
  unsigned counters = 0;
  for (unsigned i = 0; i < num_specs; ++i) {
    if (offset > size || size - offset < kHeaderRead) {
      return 0;
    }
    if (host32(p + offset) == IBV_FLOW_SPEC_ACTION_COUNT && counters++ > 0) {
      return say(why, EINVAL,
                 "spec %u: a second ACTION_COUNT; one counters object per flow "
                 "(mlx5 provider get_flow_mcounters, §1.6)",
                 i);
    }
    offset += host16(p + offset + offsetof(struct ibv_flow_spec_eth, size));
  }
  return 0;
}

// --- Kernel core: ib_uverbs_ex_create_flow (§2) --------------------------------

// Checks 1 (comp_mask), 6 (size), 7 (reserved), the per-spec reserved field, the action sizes,
// the filter type list and check 10's "bytes left" cannot fail for a command libibverbs built:
// it sends comp_mask 0, zeroes every reserved field, writes only the types and sizes of
// kSpecKinds and sets flow_attr.size to their sum. Check 2 (CAP_NET_RAW) is assumed to pass.

static int kernel_filter(const struct flowrt_sim_spec *spec, unsigned index, struct why *why) {
  const struct spec_kind *kind = find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER);
  const char *inner = inner_word(spec->type);
  // spec_filter_size on the kernel spec libibverbs wrote; kept so that this stage is the whole
  // of §2, although libibverbs' sizes always satisfy it (the IPv6 pad byte is never copied).
  unsigned filter_size = (kind->kernel_size - kSpecHeader) / 2u;
  if (filter_size == 0 || filter_size % 4 != 0) {
    return say(why, EINVAL, "spec %u (%s%s): kernel filter size %u is not a multiple of 4 (§2)",
               index, inner, kind->name, filter_size);
  }
  if (filter_size > kind->real_size &&
      !all_zero(spec->mask + kind->real_size, filter_size - kind->real_size)) {
    return say(why, EINVAL,
               "spec %u (%s%s): mask bytes beyond the kernel filter's real size %u are not zero "
               "(spec_filter_size, §2)",
               index, inner, kind->name, (unsigned)kind->real_size);
  }
  if (kind->type == IBV_FLOW_SPEC_IPV6) {
    size_t at = offsetof(struct ibv_flow_ipv6_filter, flow_label);
    if (net32(spec->val + at) >= (1u << 20) || net32(spec->mask + at) >= (1u << 20)) {
      return say(why, EINVAL,
                 "spec %u (%sIPV6): flow_label value 0x%x or mask 0x%x does not fit 20 bits (§2)",
                 index, inner, (unsigned)net32(spec->val + at), (unsigned)net32(spec->mask + at));
    }
  }
  if (kind->type == IBV_FLOW_SPEC_VXLAN_TUNNEL) {
    size_t at = offsetof(struct ibv_flow_tunnel_filter, tunnel_id);
    if (net32(spec->val + at) >= (1u << 24) || net32(spec->mask + at) >= (1u << 24)) {
      return say(why, EINVAL,
                 "spec %u (VXLAN_TUNNEL): tunnel_id value 0x%x or mask 0x%x does not fit the "
                 "24-bit VNI (§2)",
                 index, (unsigned)net32(spec->val + at), (unsigned)net32(spec->mask + at));
    }
  }
  return 0;
}

static int kernel_core(const struct flowrt_sim_rule *rule, int qp_is_raw_or_ud, uint8_t num_ports,
                       struct why *why) {
  if (rule->flags >= (1u << 3)) {
    return say(why, EINVAL,
               "flags 0x%x reach IB_FLOW_ATTR_FLAGS_RESERVED (1<<3) (kernel core, §2 check 3)",
               (unsigned)rule->flags);
  }
  if ((rule->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) &&
      (rule->type == IBV_FLOW_ATTR_ALL_DEFAULT || rule->type == IBV_FLOW_ATTR_MC_DEFAULT)) {
    return say(why, EINVAL,
               "DONT_TRAP on an ALL_DEFAULT or MC_DEFAULT rule (kernel core, §2 check 4)");
  }
  if (rule->num_specs > kMaxSpecs) {
    return say(why, EINVAL, "%u specs, more than IB_FLOW_SPEC_SUPPORT_LAYERS = %d (§2 check 5)",
               (unsigned)rule->num_specs, kMaxSpecs);
  }
  if (rule->port < 1 || rule->port > num_ports) {
    return say(why, EINVAL, "port %u is not a port of this %u-port device (§2 check 8)",
               (unsigned)rule->port, (unsigned)num_ports);
  }
  if (!qp_is_raw_or_ud) {
    return say(why, EINVAL, "the QP is neither UD nor RAW_PACKET (§2 check 9)");
  }
  for (unsigned i = 0; i < rule->num_specs; ++i) {
    const struct flowrt_sim_spec *spec = &rule->specs[i];
    // Actions: the sizes are libibverbs' own; a HANDLE or COUNT must name a live flow action or
    // counters object, which the sim cannot see, so it takes them to be valid.
    if (is_action(find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER))) {
      continue;
    }
    int err = kernel_filter(spec, i, why);
    if (err != 0) {
      return err;
    }
  }
  return 0;
}

// --- mlx5: mlx5_ib_create_flow, parse_flow_attr (§3) -----------------------------

// is_valid_ethertype for one header level (§3.3): only the last ETH spec of the level with a
// non-zero ether_type mask and the last IP spec of the level count, as in fs.c.
static int mlx5_ethertype(const struct flowrt_sim_rule *rule, bool inner, bool ip_version_cap,
                          struct why *why) {
  uint32_t inner_bit = inner ? IBV_FLOW_SPEC_INNER : 0;
  size_t at = offsetof(struct ibv_flow_eth_filter, ether_type);
  bool has_ethertype = false;
  bool mask_valid = true;
  uint16_t ethertype = 0;
  uint32_t ip_type = 0;
  for (unsigned i = 0; i < rule->num_specs; ++i) {
    const struct flowrt_sim_spec *spec = &rule->specs[i];
    uint32_t type = kernel_type(spec);
    if (type == (IBV_FLOW_SPEC_ETH | inner_bit) && net16(spec->mask + at) != 0) {
      mask_valid = net16(spec->mask + at) == 0xFFFF;
      has_ethertype = true;
      ethertype = net16(spec->val + at);
    } else if (type == (IBV_FLOW_SPEC_IPV4 | inner_bit) ||
               type == (IBV_FLOW_SPEC_IPV6 | inner_bit)) {
      ip_type = type & ~(uint32_t)IBV_FLOW_SPEC_INNER;
    }
  }
  if (!has_ethertype || ip_type == 0) {
    return 0;
  }
  const char *level = inner ? "inner" : "outer";
  if (!mask_valid) {
    return say(why, EINVAL,
               "the %s ETH ether_type mask is neither 0 nor 0xffff and an %s IP spec is present "
               "(mlx5 is_valid_ethertype, §3.3)",
               level, level);
  }
  if ((ethertype == 0x0800 && ip_type == IBV_FLOW_SPEC_IPV4) ||
      (ethertype == 0x86DD && ip_type == IBV_FLOW_SPEC_IPV6)) {
    return 0;
  }
  if ((ethertype == 0x8847 || ethertype == 0x8848) && ip_version_cap) {
    return 0;
  }
  return say(why, EINVAL,
             "the %s ETH ether_type 0x%04x does not go with the %s %s spec%s "
             "(mlx5 is_valid_ethertype, §3.3)",
             level, (unsigned)ethertype, level, ip_type == IBV_FLOW_SPEC_IPV4 ? "IPv4" : "IPv6",
             (ethertype == 0x8847 || ethertype == 0x8848) ? " without the ip_version cap" : "");
}

struct mlx5_state {
  uint8_t proto_mask[2]; // ip_protocol as set so far, per header level (outer, inner)
  uint8_t proto_val[2];
  bool has_count;
};

// set_proto (§3.2): the first non-zero mask wins; a later different mask or value is EINVAL.
static int mlx5_set_proto(struct mlx5_state *state, const struct flowrt_sim_spec *spec,
                          unsigned index, uint8_t mask, uint8_t val, struct why *why) {
  int level = is_inner(spec->type) ? 1 : 0;
  if (mask == 0) {
    return 0;
  }
  if (state->proto_mask[level] == 0) {
    state->proto_mask[level] = mask;
    state->proto_val[level] = val;
    return 0;
  }
  if (mask == state->proto_mask[level] && val == state->proto_val[level]) {
    return 0;
  }
  return say(why, EINVAL,
             "spec %u (%s%s) sets %s ip_protocol %u/0x%02x, but an earlier spec set %u/0x%02x "
             "(mlx5 set_proto, §3.2)",
             index, inner_word(spec->type),
             find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER)->name,
             level ? "inner" : "outer", (unsigned)val, (unsigned)mask,
             (unsigned)state->proto_val[level], (unsigned)state->proto_mask[level]);
}

// check_mpls_supp_fields for the placement chosen by the previous kernel spec type (§3.3).
static int mlx5_mpls(const struct flowrt_sim_spec *spec, unsigned index, uint32_t prev_type,
                     const struct flowrt_sim_caps *caps, struct why *why) {
  const char *placement;
  uint8_t supported = caps->mlx5_mpls_fields;
  if (prev_type == IBV_FLOW_SPEC_UDP) {
    placement = "outer_first_mpls_over_udp";
    supported = caps->mlx5_mpls_over_udp ? supported : 0;
  } else if (prev_type == IBV_FLOW_SPEC_GRE) {
    placement = "outer_first_mpls_over_gre";
    supported = caps->mlx5_mpls_over_gre ? supported : 0;
  } else if (is_inner(spec->type)) {
    placement = "inner_first_mpls";
  } else {
    placement = "outer_first_mpls";
  }
  // The label stack entry, big-endian: label 20 bits, exp 3, s_bos 1, ttl 8.
  uint32_t mask = net32(spec->mask);
  static const struct {
    uint32_t bits;
    uint8_t cap;
    const char *name;
  } kFields[] = {{0xFFFFF000u, FLOWRT_SIM_MPLS_LABEL, "label"},
                 {0x00000E00u, FLOWRT_SIM_MPLS_EXP, "exp"},
                 {0x00000100u, FLOWRT_SIM_MPLS_S_BOS, "s_bos"},
                 {0x000000FFu, FLOWRT_SIM_MPLS_TTL, "ttl"}};
  for (size_t i = 0; i < sizeof kFields / sizeof kFields[0]; ++i) {
    if ((mask & kFields[i].bits) != 0 && (supported & kFields[i].cap) == 0) {
      return say(why, EOPNOTSUPP,
                 "spec %u (%sMPLS) matches the %s sub-field, which the device does not support "
                 "for %s (mlx5 check_mpls_supp_fields, §3.2, §3.3)",
                 index, inner_word(spec->type), kFields[i].name, placement);
    }
  }
  return 0;
}

static int mlx5_spec(struct mlx5_state *state, const struct flowrt_sim_spec *spec, unsigned index,
                     uint32_t prev_type, const struct flowrt_sim_caps *caps, struct why *why) {
  const char *inner = inner_word(spec->type);
  switch (kernel_type(spec) & ~(uint32_t)IBV_FLOW_SPEC_INNER) {
  case IBV_FLOW_SPEC_IPV4:
    if (spec->mask[offsetof(struct ibv_flow_ipv4_ext_filter, ttl)] != 0 ||
        spec->mask[offsetof(struct ibv_flow_ipv4_ext_filter, flags)] != 0) {
      return say(why, EOPNOTSUPP,
                 "spec %u (%s%s): mlx5 cannot match the IPv4 ttl or flags (mask must be 0, §3.2)",
                 index, inner, find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER)->name);
    }
    return mlx5_set_proto(state, spec, index,
                          spec->mask[offsetof(struct ibv_flow_ipv4_ext_filter, proto)],
                          spec->val[offsetof(struct ibv_flow_ipv4_ext_filter, proto)], why);
  case IBV_FLOW_SPEC_IPV6:
    // FIELDS_NOT_SUPPORTED after traffic_class covers hop_limit and the pad byte.
    if (!all_zero(spec->mask + offsetof(struct ibv_flow_ipv6_filter, hop_limit),
                  FLOWRT_SIM_FILTER_MAX - offsetof(struct ibv_flow_ipv6_filter, hop_limit))) {
      return say(why, EOPNOTSUPP,
                 "spec %u (%sIPV6): mlx5 cannot match the IPv6 hop_limit (mask must be 0, §3.2)",
                 index, inner);
    }
    return mlx5_set_proto(state, spec, index,
                          spec->mask[offsetof(struct ibv_flow_ipv6_filter, next_hdr)],
                          spec->val[offsetof(struct ibv_flow_ipv6_filter, next_hdr)], why);
  case IBV_FLOW_SPEC_ESP:
    if (net32(spec->mask + offsetof(struct ibv_flow_esp_filter, seq)) != 0) {
      return say(why, EOPNOTSUPP,
                 "spec %u (%sESP): mlx5 cannot match the ESP seq (mask must be 0, §3.2)", index,
                 inner);
    }
    return 0;
  case IBV_FLOW_SPEC_TCP:
    return mlx5_set_proto(state, spec, index, 0xFF, 6, why);
  case IBV_FLOW_SPEC_UDP:
    return mlx5_set_proto(state, spec, index, 0xFF, 17, why);
  case IBV_FLOW_SPEC_GRE:
    if (net16(spec->mask + offsetof(struct ibv_flow_gre_filter, c_ks_res0_ver)) != 0) {
      return say(why, EOPNOTSUPP,
                 "spec %u (GRE): mlx5 cannot match c_ks_res0_ver (mask must be 0, §3.2)", index);
    }
    return mlx5_set_proto(state, spec, index, 0xFF, 47, why);
  case IBV_FLOW_SPEC_MPLS:
    return mlx5_mpls(spec, index, prev_type, caps, why);
  case IBV_FLOW_SPEC_ACTION_TAG:
    if (spec->tag_id >= (1u << 24)) {
      return say(why, EINVAL, "spec %u (ACTION_TAG): tag_id 0x%x does not fit 24 bits (mlx5, §3.2)",
                 index, (unsigned)spec->tag_id);
    }
    return 0;
  case IBV_FLOW_SPEC_ACTION_COUNT:
    // Unreachable after the provider's scan (§1.6); kept as fs.c has it.
    if (state->has_count) {
      return say(why, EINVAL, "spec %u: a second ACTION_COUNT (mlx5, §3.2)", index);
    }
    state->has_count = true;
    return 0;
  default:
    // ETH and VXLAN_TUNNEL have no field mlx5 refuses; DROP has no payload. A HANDLE names a
    // flow action whose kind (ESP, modify-header, decap, reformat) the sim cannot see, so the
    // "each kind once" and egress ESP checks of §3.6-§3.7 are taken to pass.
    return 0;
  }
}

// mlx5_ib_create_flow and _create_flow_rule, in their order (§3.1, §3.3, §3.5).
static int mlx5_driver(const struct flowrt_sim_rule *rule, const struct flowrt_sim_caps *caps,
                       struct why *why) {
  if (rule->priority >= caps->mlx5_num_prios) {
    return say(why, ENOMEM,
               "priority %u is above mlx5's last priority %d (MLX5_IB_FLOW_LAST_PRIO; the driver "
               "returns ENOMEM, §3.1)",
               (unsigned)rule->priority, (int)caps->mlx5_num_prios - 1);
  }
  if (rule->flags & ~(uint32_t)(IBV_FLOW_ATTR_FLAGS_DONT_TRAP | IBV_FLOW_ATTR_FLAGS_EGRESS)) {
    return say(why, EINVAL, "flags 0x%x: mlx5 takes only DONT_TRAP and EGRESS (§3.1)",
               (unsigned)rule->flags);
  }
  bool egress = (rule->flags & IBV_FLOW_ATTR_FLAGS_EGRESS) != 0;
  switch (rule->type) {
  case IBV_FLOW_ATTR_NORMAL:
    break;
  case IBV_FLOW_ATTR_ALL_DEFAULT:
  case IBV_FLOW_ATTR_MC_DEFAULT:
    if (egress) {
      return say(why, EINVAL, "EGRESS on an ALL_DEFAULT or MC_DEFAULT rule (mlx5, §3.1)");
    }
    return 0; // The user specs are ignored (create_leftovers_rule, §3.5).
  case IBV_FLOW_ATTR_SNIFFER:
    if (!caps->mlx5_sniffer) {
      return say(why, EOPNOTSUPP,
                 "SNIFFER needs the allow_sniffer_and_nic_rx_shared_tir cap (mlx5, §3.5)");
    }
    return 0; // The user specs are ignored (create_sniffer_rule, §3.5).
  default:
    // Not in verbs-facts; from fs.c get_flow_table, which finds no namespace for the type.
    return say(why, EOPNOTSUPP,
               "attr type %u is not NORMAL, ALL_DEFAULT, MC_DEFAULT or SNIFFER: mlx5 has no flow "
               "namespace for it (get_flow_table, fs.c; beyond §3.1)",
               (unsigned)rule->type);
  }

  int err = mlx5_ethertype(rule, false, caps->mlx5_outer_ip_version, why);
  if (err == 0) {
    err = mlx5_ethertype(rule, true, caps->mlx5_inner_ip_version, why);
  }
  if (err != 0) {
    return err;
  }
  struct mlx5_state state;
  memset(&state, 0, sizeof state);
  uint32_t prev_type = 0;
  for (unsigned i = 0; i < rule->num_specs; ++i) {
    err = mlx5_spec(&state, &rule->specs[i], i, prev_type, caps, why);
    if (err != 0) {
      return err;
    }
    prev_type = kernel_type(&rule->specs[i]);
  }
  // Inner-header matching is not checked by mlx5_ib: a device without it fails in firmware or
  // mlx5_add_flow_rules, after the parse. Which errno that is verbs-facts does not say (§3.3,
  // §7); the sim answers EOPNOTSUPP, the errno of a missing feature.
  if (!caps->mlx5_inner_headers) {
    for (unsigned i = 0; i < rule->num_specs; ++i) {
      uint32_t type = kernel_type(&rule->specs[i]);
      uint32_t base = type & ~(uint32_t)IBV_FLOW_SPEC_INNER;
      if (is_inner(type) &&
          (base == IBV_FLOW_SPEC_ETH || base == IBV_FLOW_SPEC_IPV4 || base == IBV_FLOW_SPEC_IPV6 ||
           base == IBV_FLOW_SPEC_TCP || base == IBV_FLOW_SPEC_UDP)) {
        return say(why, EOPNOTSUPP,
                   "spec %u (INNER %s) needs inner-header matching, which the device lacks "
                   "(firmware decides the real errno; §3.3, §7)",
                   i, find_kind(rule->specs[i].type & ~(uint32_t)IBV_FLOW_SPEC_INNER)->name);
      }
    }
  }
  // Duplicate matches (EEXIST), table capacity (ENOSPC) and counters state are decided by the
  // device's state, not by the buffer (§1.6, §3.8).
  return 0;
}

// --- mlx4: mlx4_ib_create_flow, __mlx4_ib_create_flow, parse_flow_attr (§4) -------

// mlx4_ib_add_dont_trap_rule (§4.2).
static int mlx4_dont_trap(const struct flowrt_sim_rule *rule, const struct flowrt_sim_caps *caps,
                          struct why *why) {
  if (!caps->mlx4_dont_trap || rule->num_specs > 1 || rule->priority != 0) {
    return say(why, EOPNOTSUPP,
               "mlx4 takes DONT_TRAP only with the DMFS_UC_MC_SNIFFER cap, priority 0 and at most "
               "one spec (here: cap %s, priority %u, spec count %u) (§4.2)",
               caps->mlx4_dont_trap ? "present" : "absent", (unsigned)rule->priority,
               (unsigned)rule->num_specs);
  }
  if (rule->num_specs == 0) {
    return 0;
  }
  const struct flowrt_sim_spec *spec = &rule->specs[0];
  if (kernel_type(spec) != IBV_FLOW_SPEC_ETH) {
    return say(why, EINVAL, "mlx4 DONT_TRAP: the one spec must be an outer ETH spec (§4.2)");
  }
  const uint8_t *mac = spec->mask + offsetof(struct ibv_flow_eth_filter, dst_mac);
  if (all_zero(mac, 6)) {
    return 0;
  }
  if (mac[0] == 0x01 && all_zero(mac + 1, 5)) {
    return 0;
  }
  return say(why, EINVAL,
             "mlx4 DONT_TRAP: the dst_mac mask must be 00:00:00:00:00:00 or 01:00:00:00:00:00 "
             "(§4.2)");
}

static int mlx4_spec(const struct flowrt_sim_spec *spec, unsigned index, struct why *why) {
  uint32_t type = kernel_type(spec);
  const char *name = find_kind(spec->type & ~(uint32_t)IBV_FLOW_SPEC_INNER)->name;
  // parse_flow_attr switches on the whole type, so any INNER spec is unknown to it. Its errors
  // are -ENOTSUPP or -EINVAL, and __mlx4_ib_create_flow turns every one into EINVAL (§4.3).
  switch (type) {
  case IBV_FLOW_SPEC_ETH:
  case IBV_FLOW_SPEC_TCP:
  case IBV_FLOW_SPEC_UDP:
    // ETH src_mac and ether_type are silently ignored, and mask shapes are left to the DMFS
    // firmware (§4.3); the sim accepts them.
    return 0;
  case IBV_FLOW_SPEC_IPV4:
    if (!all_zero(spec->mask + offsetof(struct ibv_flow_ipv4_ext_filter, proto), 4)) {
      return say(why, EINVAL,
                 "spec %u (%s): mlx4 matches only the IPv4 addresses; proto, tos, ttl and flags "
                 "masks must be 0 (§4.3)",
                 index, name);
    }
    return 0;
  default:
    return say(why, EINVAL, "spec %u (%s%s): mlx4 has no such spec (§4.3)", index,
               inner_word(spec->type), name);
  }
}

static int mlx4_driver(const struct flowrt_sim_rule *rule, const struct flowrt_sim_caps *caps,
                       struct why *why) {
  if (rule->flags & ~(uint32_t)IBV_FLOW_ATTR_FLAGS_DONT_TRAP) {
    return say(why, EOPNOTSUPP, "flags 0x%x: mlx4 takes only DONT_TRAP (no EGRESS) (§4.1)",
               (unsigned)rule->flags);
  }
  bool dont_trap = (rule->flags & IBV_FLOW_ATTR_FLAGS_DONT_TRAP) != 0;
  if (dont_trap && rule->type != IBV_FLOW_ATTR_NORMAL) {
    return say(why, EOPNOTSUPP, "mlx4 takes DONT_TRAP only on NORMAL rules (§4.1)");
  }
  switch (rule->type) {
  case IBV_FLOW_ATTR_NORMAL:
    if (dont_trap) {
      int err = mlx4_dont_trap(rule, caps, why);
      if (err != 0) {
        return err;
      }
    }
    break;
  case IBV_FLOW_ATTR_ALL_DEFAULT:
  case IBV_FLOW_ATTR_MC_DEFAULT:
  case IBV_FLOW_ATTR_SNIFFER:
    break; // The user specs are still parsed and applied (§4.2).
  default:
    // Not in verbs-facts; from main.c mlx4_ib_create_flow's switch on the type.
    return say(why, EINVAL,
               "attr type %u is not NORMAL, ALL_DEFAULT, MC_DEFAULT or SNIFFER "
               "(mlx4_ib_create_flow; beyond §4.1)",
               (unsigned)rule->type);
  }
  if (rule->priority > 0xFFF) {
    return say(why, EINVAL, "priority %u is above mlx4's 0xfff (MLX4_IB_FLOW_MAX_PRIO, §4.1)",
               (unsigned)rule->priority);
  }
  for (unsigned i = 0; i < rule->num_specs; ++i) {
    int err = mlx4_spec(&rule->specs[i], i, why);
    if (err != 0) {
      return err;
    }
  }
  // MCG table full (ENOMEM), DMFS off (ENXIO) and duplicates are the firmware's (§4.4).
  return 0;
}

// --- Entry points -------------------------------------------------------------

struct flowrt_sim_caps flowrt_sim_default_caps(void) {
  struct flowrt_sim_caps caps;
  memset(&caps, 0, sizeof caps);
  caps.mlx5_num_prios = 16;
  caps.mlx5_inner_headers = true;
  caps.mlx5_outer_ip_version = true;
  caps.mlx5_inner_ip_version = true;
  caps.mlx5_mpls_fields = FLOWRT_SIM_MPLS_ALL;
  caps.mlx5_mpls_over_udp = true;
  caps.mlx5_mpls_over_gre = true;
  caps.mlx5_sniffer = true;
  caps.mlx4_dont_trap = true;
  caps.managed_flow_steering = true;
  caps.mlx5_table_entries = 65536;
  return caps;
}

int flowrt_sim_validate(const void *attr, size_t size, enum flowrt_sim_profile profile,
                        const struct flowrt_sim_caps *caps, int qp_is_raw_or_ud, uint8_t num_ports,
                        char *why_text, size_t whylen) {
  struct why why = {why_text, whylen};
  if (why_text != NULL && whylen > 0) {
    why_text[0] = '\0';
  }
  if (profile != FLOWRT_SIM_MLX5 && profile != FLOWRT_SIM_MLX4) {
    return say(&why, EINVAL, "unknown profile %d", (int)profile);
  }
  struct flowrt_sim_caps defaults = flowrt_sim_default_caps();
  if (caps == NULL) {
    caps = &defaults;
  }
  const unsigned char *p = (const unsigned char *)attr;

  int err = 0;
  if (profile == FLOWRT_SIM_MLX5) {
    err = mlx5_provider_counters(p, size, &why);
  }
  struct flowrt_sim_rule rule;
  if (err == 0) {
    err = convert(p, size, &rule, &why);
  }
  if (err == 0) {
    err = kernel_core(&rule, qp_is_raw_or_ud, num_ports, &why);
  }
  if (err == 0) {
    err = profile == FLOWRT_SIM_MLX5 ? mlx5_driver(&rule, caps, &why)
                                     : mlx4_driver(&rule, caps, &why);
  }
  if (err == 0) {
    say(&why, 0, "accepted");
  }
  return err;
}

int flowrt_sim_decode(const void *attr, size_t size, struct flowrt_sim_rule *out) {
  struct why none = {NULL, 0};
  int err = convert((const unsigned char *)attr, size, out, &none);
  if (err == 0 && out->num_specs > kMaxSpecs) {
    err = EINVAL;
  }
  return err;
}
