// The device check before installing, and what ibv_create_flow()'s errno values mean.
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

// The IEEE OUI that Mellanox/NVIDIA devices report as vendor_id.
enum { kMellanoxOui = 0x02c9 };

// The driver family of a Mellanox device from its PCI device id (vendor_part_id), after the
// kernel's mlx4_core and mlx5_core PCI tables: ConnectX, ConnectX-2 and ConnectX-3 (Pro) and
// their virtual functions run mlx4; Connect-IB (0x1011) and later ConnectX and BlueField parts
// run mlx5. Other Mellanox parts (InfiniHost and older) are neither.
static const char *mellanox_driver(uint32_t part) {
  static const uint32_t kMlx4Legacy[] = {0x6340, 0x634a, 0x6354, 0x6732, 0x673c, 0x6368,
                                         0x6750, 0x6372, 0x675a, 0x6764, 0x6746, 0x676e};
  if (part >= 0x1002 && part <= 0x1010) {
    return "mlx4";
  }
  for (size_t i = 0; i < sizeof kMlx4Legacy / sizeof kMlx4Legacy[0]; ++i) {
    if (part == kMlx4Legacy[i]) {
      return "mlx4";
    }
  }
  if ((part >= 0x1011 && part <= 0x10ff) || (part >= 0xa2d2 && part <= 0xa2ff)) {
    return "mlx5";
  }
  return NULL;
}

static const char *device_name(struct ibv_context *context) {
  return context->device != NULL ? ibv_get_device_name(context->device) : "(unnamed device)";
}

const char *flowrt_device_driver(struct ibv_context *context) {
  struct ibv_device_attr_ex attr;
  memset(&attr, 0, sizeof attr);
  if (context == NULL || ibv_query_device_ex(context, NULL, &attr) != 0 ||
      attr.orig_attr.vendor_id != kMellanoxOui) {
    return NULL;
  }
  return mellanox_driver(attr.orig_attr.vendor_part_id);
}

int flowrt_check_device(struct ibv_context *context, const struct flowrt_policy *policy,
                        struct flowrt_error *err) {
  return flowrt_check_device_port(context, policy, 0, err);
}

int flowrt_check_device_port(struct ibv_context *context, const struct flowrt_policy *policy,
                             uint8_t only_port, struct flowrt_error *err) {
  if (context == NULL || policy == NULL) {
    return flowrt_fail(err, EINVAL, FLOWRT_NO_RULE, "no device or no policy given");
  }
  const char *name = device_name(context);
  struct ibv_device_attr_ex attr;
  memset(&attr, 0, sizeof attr);
  int rc = ibv_query_device_ex(context, NULL, &attr);
  if (rc != 0) {
    return flowrt_fail(err, rc, FLOWRT_NO_RULE, "%s: ibv_query_device_ex failed: %s", name,
                       strerror(rc));
  }
  // §1.7: the kernel does not test the bit, but a device without it has no flow steering the
  // way the man page means it (mlx4 not in DMFS mode, mlx5 without the bypass namespace).
  if ((attr.orig_attr.device_cap_flags & IBV_DEVICE_MANAGED_FLOW_STEERING) == 0) {
    return flowrt_fail(err, EOPNOTSUPP, FLOWRT_NO_RULE,
                       "%s does not report IBV_DEVICE_MANAGED_FLOW_STEERING: it has no "
                       "device-managed flow steering (mlx4: DMFS mode is off; verbs-facts §1.7)",
                       name);
  }
  const char *target = policy->fbin.profile;
  if (strcmp(target, "mlx5") == 0 || strcmp(target, "mlx4") == 0) {
    const char *driver = attr.orig_attr.vendor_id == kMellanoxOui
                             ? mellanox_driver(attr.orig_attr.vendor_part_id)
                             : NULL;
    if (driver == NULL || strcmp(driver, target) != 0) {
      return flowrt_fail(err, EOPNOTSUPP, FLOWRT_NO_RULE,
                         "the policy was compiled for %s, but %s is %s%s (vendor 0x%x, part %u); "
                         "compile it with 'flowc build --target %s'",
                         target, name, driver != NULL ? "an " : "not a Mellanox device",
                         driver != NULL ? driver : "", attr.orig_attr.vendor_id,
                         attr.orig_attr.vendor_part_id, driver != NULL ? driver : "generic");
    }
  }
  bool checked[256] = {false};
  for (uint32_t i = 0; i < policy->num_rules; ++i) {
    struct flowrt_fbin_rule r;
    flowrt_fbin_rule(&policy->fbin, i, &r);
    if (checked[r.port] || (only_port != 0 && r.port != only_port)) {
      continue;
    }
    checked[r.port] = true;
    char what[160];
    flowrt_policy_describe_rule(policy, i, what, sizeof what);
    if (r.port == 0 || r.port > attr.orig_attr.phys_port_cnt) {
      return flowrt_fail(err, ENODEV, i, "%s is for port %u, but %s has %s %u port%s", what, r.port,
                         name, r.port == 0 ? "ports 1 to" : "only", attr.orig_attr.phys_port_cnt,
                         attr.orig_attr.phys_port_cnt == 1 ? "" : "s");
    }
    struct ibv_port_attr port;
    rc = ibv_query_port(context, r.port, &port);
    if (rc != 0) {
      return flowrt_fail(err, rc, i, "%s: ibv_query_port(%u) failed: %s", name, r.port,
                         strerror(rc));
    }
  }
  return 0;
}

const char *flowrt_explain_errno(const char *target, int errnum) {
  bool mlx5 = target != NULL && strcmp(target, "mlx5") == 0;
  bool mlx4 = target != NULL && strcmp(target, "mlx4") == 0;
  switch (errnum) {
  case ENOMEM:
    if (mlx5) {
      return "on mlx5 this means the rule's priority is beyond the device's priority levels "
             "(16, or 8 on older kernels), or the device is out of memory (verbs-facts §3.1, §7)";
    }
    if (mlx4) {
      return "on mlx4 this means the steering (MCG) table is full, or out of memory "
             "(verbs-facts §7)";
    }
    return "out of memory in the driver or device (verbs-facts §7)";
  case EINVAL:
    return "the kernel or driver refused the rule as malformed or unsupported, for example a "
           "field or capability (inner headers, MPLS fields, priority) the device lacks "
           "(verbs-facts §2-§4)";
  case EOPNOTSUPP:
    return "the provider or driver lacks a feature the rule uses, or an unsupported field is "
           "set (verbs-facts §1.5, §7)";
  case EPERM:
  case EACCES:
    return "creating flows needs CAP_NET_RAW (verbs-facts §7)";
  case EEXIST:
    return mlx5 ? "an installed rule with the identical match at the same priority has a "
                  "conflicting action or tag (mlx5, verbs-facts §3.8)"
                : "an identical rule is already installed (verbs-facts §7)";
  case ENOSPC:
    return "the device's flow table is full (verbs-facts §3.8, §7)";
  case ENXIO:
    return mlx4 ? "device-managed flow steering (DMFS) is off on this mlx4 device "
                  "(verbs-facts §1.7, §7)"
                : "the device has no flow steering for this port (verbs-facts §7)";
  case EBUSY:
    return "a counters object was already bound to flows (verbs-facts §1.6)";
  default:
    return "see ibv_create_flow(3) and verbs-facts §7";
  }
}
