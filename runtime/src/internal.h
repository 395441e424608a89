// libflowrt's internal structures, shared by policy.c, device.c and install.c.
#ifndef FLOWRT_SRC_INTERNAL_H
#define FLOWRT_SRC_INTERNAL_H

#include "flowrt/flowrt.h"
#include "flowrt/format.h"

#include <stdbool.h>
#include <stdint.h>

#define FLOWRT_HIDDEN __attribute__((visibility("hidden")))

// Offsets in `struct ibv_flow_attr` (verbs-facts §1.3), read and written byte by byte because
// buffers in a .fbin may be unaligned.
enum {
  kAttrType = 4,
  kAttrPriority = 10,
  kAttrNumSpecs = 12,
  kAttrPort = 13,
  kAttrFlags = 16,
  kSpecHeader = 8,
};

struct flowrt_policy {
  unsigned char *data; // the file's bytes, owned
  size_t size;
  struct flowrt_fbin fbin;
  uint32_t num_rules;
  uint32_t num_symbols[4]; // by enum flowrt_symbol_kind
  struct ibv_qp **queues;
  struct ibv_counters **counters; // NULL entries: the runtime creates them
  struct ibv_flow_action **handles;
  struct ibv_qp *anchor;
  // How updates place the policy (install.c, place_policy()), computed on first need:
  // `floating[i]` marks DONT_TRAP rules disjoint from every trapping NORMAL rule, which keep
  // their compiled priority; the other NORMAL rules span band_lo..band_hi (if has_band), and
  // moving_pass says some of them are DONT_TRAP.
  bool placed;
  uint8_t *floating;
  bool has_band;
  bool moving_pass;
  uint16_t band_lo;
  uint16_t band_hi;
  struct flowrt_installation *installed; // the installation using it, if any
};

/// Fills `err` (if not NULL) and errno; returns -errnum. The message is printf-formatted.
FLOWRT_HIDDEN int flowrt_fail(struct flowrt_error *err, int errnum, uint32_t rule, const char *fmt,
                              ...) __attribute__((format(printf, 4, 5)));

/// flowrt_check_device() for the rules of port `only_port` (0: every port).
FLOWRT_HIDDEN int flowrt_check_device_port(struct ibv_context *context,
                                           const struct flowrt_policy *policy, uint8_t only_port,
                                           struct flowrt_error *err);

FLOWRT_HIDDEN uint16_t flowrt_load16(const unsigned char *p);
FLOWRT_HIDDEN uint32_t flowrt_load32(const unsigned char *p);

#endif // FLOWRT_SRC_INTERNAL_H
