// libflowrt-sim: a software RDMA device driven by the real libibverbs flow and counters calls.
#ifndef FLOWRT_SIM_SIM_H
#define FLOWRT_SIM_SIM_H

// The device is a `struct verbs_context` the sim allocates itself (no
// ibv_open_device, no provider): libibverbs' static inline ibv_create_flow,
// ibv_destroy_flow, ibv_create_counters, ibv_attach_counters_point_flow,
// ibv_read_counters and ibv_destroy_counters (rdma-core 44 verbs.h) reach its
// ops through verbs_get_ctx_op(), so code written against verbs.h runs
// unchanged on it. A rule is accepted or refused as flowrt_sim_validate()
// says (verbs-facts §1.5-§4); accepted rules are stored, decoded, for a later
// classifier. The mlx4 profile, like the mlx4 provider, has no counters ops:
// the verbs.h counters entry points answer EOPNOTSUPP on it (§1.6).
//
// Not thread-safe: a device and everything created on it must be used from
// one thread at a time.

#include "validate.h"

#include <infiniband/verbs.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// An opaque simulated device; create with flowrt_sim_open(), free with flowrt_sim_close().
struct flowrt_sim_device;

/// Opens a device of `profile` with `caps` (NULL for flowrt_sim_default_caps()) and ports
/// 1..`num_ports`; returns NULL with errno EINVAL (unknown profile, no ports) or ENOMEM.
struct flowrt_sim_device *flowrt_sim_open(enum flowrt_sim_profile profile,
                                          const struct flowrt_sim_caps *caps, uint8_t num_ports);

/// Frees the device and every flow, counters object and QP still on it; NULL is a no-op.
/// Every handle the device gave out is invalid afterwards.
void flowrt_sim_close(struct flowrt_sim_device *dev);

/// Returns the device's verbs context, valid until flowrt_sim_close(); pass it to the verbs.h
/// entry points. Only the flow and counters ops are set; every other verbs call is unsupported.
struct ibv_context *flowrt_sim_context(struct flowrt_sim_device *dev);

/// Returns a zeroed `struct ibv_qp` with `context`, `qp_type` = `type` and a `qp_num` unique on
/// the device, to pass to ibv_create_flow(); NULL with errno ENOMEM. Any type is accepted here:
/// ibv_create_flow() refuses QPs that are neither UD nor RAW_PACKET (EINVAL, §2 check 9).
struct ibv_qp *flowrt_sim_create_qp(struct flowrt_sim_device *dev, enum ibv_qp_type type);

/// Frees a QP from flowrt_sim_create_qp(), and with it the flows still installed on it (their
/// `struct ibv_flow` handles become invalid). NULL is a no-op.
void flowrt_sim_destroy_qp(struct ibv_qp *qp);

/// Makes the `nth` (1-based) op call from now on fail with `errnum`, once, changing nothing;
/// `nth` or `errnum` 0 turns injection off. The ops are the six the device implements: create
/// and destroy flow, create, attach, read and destroy counters. A failing create returns NULL
/// with errno = `errnum`; the others return `errnum`.
void flowrt_sim_fail_call(struct flowrt_sim_device *dev, unsigned nth, int errnum);

/// Returns how many flows are installed.
unsigned flowrt_sim_num_flows(const struct flowrt_sim_device *dev);

/// Returns how many counters objects exist.
unsigned flowrt_sim_num_counters(const struct flowrt_sim_device *dev);

/// Returns how many op calls (the six of flowrt_sim_fail_call()) reached the device, failed
/// ones included; calls that verbs.h answers itself (a missing op) never reach it.
unsigned flowrt_sim_num_calls(const struct flowrt_sim_device *dev);

#ifdef __cplusplus
}
#endif

#endif // FLOWRT_SIM_SIM_H
