// libflowrt: load compiled flow-steering policies (.fbin) onto RDMA NICs through libibverbs.
#ifndef FLOWRT_FLOWRT_H
#define FLOWRT_FLOWRT_H

// One error convention: a call that returns a pointer returns NULL on
// failure, one that returns an int returns 0 or a negative errno; either way
// it fills the caller's `struct flowrt_error` (when not NULL) with the
// positive errno, the index of the rule involved and a one-line message,
// and sets `errno`. A successful call leaves the error struct untouched.
//
// Everything is documented in docs/runtime.md and in one man page per
// function (docs/man/). libflowrt depends on libibverbs and libc only.
//
// Thread safety: the library has no global state. Calls on different
// policies and installations may run concurrently; calls on one policy or
// one installation (and on the policy an installation uses) must not.

#include "flowrt/format.h"

#include <infiniband/verbs.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The version of the library this header declares.
#define FLOWRT_VERSION_MAJOR 0
#define FLOWRT_VERSION_MINOR 1

/// `flowrt_error.rule` when no single rule is involved.
#define FLOWRT_NO_RULE UINT32_MAX

/// The size of `flowrt_error.message`, its NUL included.
#define FLOWRT_ERROR_MESSAGE_SIZE 512

/// What a failed call reports.
struct flowrt_error {
  /// The positive errno of the failure (EINVAL, ENOENT, ENOMEM, ...).
  int errnum;
  /// The index of the rule involved in its policy, or FLOWRT_NO_RULE.
  uint32_t rule;
  /// One line, no trailing newline: what failed, why, and what to do.
  char message[FLOWRT_ERROR_MESSAGE_SIZE];
};

/// An opened compiled policy and the objects bound to its symbols.
struct flowrt_policy;

/// A policy installed on a device: its flows and the counters the runtime created.
struct flowrt_installation;

/// The kinds of symbol a policy declares.
enum flowrt_symbol_kind {
  /// A queue: bound to a `struct ibv_qp *` that the rules steering to it are created on.
  FLOWRT_QUEUE = 1,
  /// A counter: an `ibv_counters` object with packets at index 0 and bytes at index 1.
  FLOWRT_COUNTER = 2,
  /// A handle: bound to a `struct ibv_flow_action *` (ESP, mlx5dv actions).
  FLOWRT_HANDLE = 3,
};

/// Opens the compiled policy in the file at `path` (from `flowc build`). Every byte is
/// validated (docs/format.md) before this returns; nothing is installed.
struct flowrt_policy *flowrt_policy_open(const char *path, struct flowrt_error *err);

/// Opens a compiled policy from the `size` bytes at `data` (for example the array of
/// `flowc build --emit=c`), which are copied: `data` may be freed after the call.
struct flowrt_policy *flowrt_policy_open_mem(const void *data, size_t size,
                                             struct flowrt_error *err);

/// Frees a policy. NULL is a no-op. An installation using it must have been uninstalled or
/// updated to another policy first.
void flowrt_policy_close(struct flowrt_policy *policy);

/// The target profile the policy was compiled for: "mlx5", "mlx4" or "generic".
const char *flowrt_policy_target(const struct flowrt_policy *policy);

/// The device capabilities the policy's rules need, comma-separated ("prio16,inner"); may be "".
const char *flowrt_policy_capabilities(const struct flowrt_policy *policy);

/// The number of hardware rules in the policy.
uint32_t flowrt_policy_num_rules(const struct flowrt_policy *policy);

/// The number of symbols of `kind` the policy declares (0 for an unknown kind).
uint32_t flowrt_policy_num_symbols(const struct flowrt_policy *policy,
                                   enum flowrt_symbol_kind kind);

/// The name of symbol `index` of `kind`, or NULL if there is none.
const char *flowrt_policy_symbol(const struct flowrt_policy *policy, enum flowrt_symbol_kind kind,
                                 uint32_t index);

/// The validated file, for the readers of flowrt/format.h (rule kinds, ports, attr buffers);
/// valid until flowrt_policy_close().
const struct flowrt_fbin *flowrt_policy_fbin(const struct flowrt_policy *policy);

/// Describes rule `index` for messages: "rule 3 'storage' (policy.flow:12:5)". Writes at most
/// `len` bytes including the NUL; returns the length the full text has, like snprintf().
int flowrt_policy_describe_rule(const struct flowrt_policy *policy, uint32_t index, char *buf,
                                size_t len);

/// Binds queue `name` to `qp`: the rules that steer to the queue are created on `qp`, which
/// must be a UD or RAW_PACKET QP of the device the policy is installed on. Rebinding replaces.
/// Fails with -ENOENT for a name the policy does not declare, -EINVAL for a name that is a
/// counter or a handle, or for a NULL `qp`.
int flowrt_bind_queue(struct flowrt_policy *policy, const char *name, struct ibv_qp *qp,
                      struct flowrt_error *err);

/// Binds counter `name` to a counters object the caller created and attached (statically,
/// IBV_COUNTER_PACKETS at index 0 and IBV_COUNTER_BYTES at index 1). Counters left unbound are
/// created and attached by flowrt_install(). Errors as for flowrt_bind_queue().
int flowrt_bind_counters(struct flowrt_policy *policy, const char *name,
                         struct ibv_counters *counters, struct flowrt_error *err);

/// Binds handle `name` to a flow action (ibv_create_flow_action_esp(), mlx5dv actions). Every
/// handle must be bound before installing. Errors as for flowrt_bind_queue().
int flowrt_bind_handle(struct flowrt_policy *policy, const char *name,
                       struct ibv_flow_action *action, struct flowrt_error *err);

/// Binds the anchor QP: rules that steer to no queue (drop-only and egress rules) are created on
/// it, since ibv_create_flow() always takes a QP. Needed only when the policy has such rules.
int flowrt_bind_anchor(struct flowrt_policy *policy, struct ibv_qp *qp, struct flowrt_error *err);

/// Checks that the device of `context` can take the policy, without creating anything: the
/// device reports IBV_DEVICE_MANAGED_FLOW_STEERING, every port the policy's rules use exists
/// (ibv_query_port() answers for it), and the driver is the policy's target (an mlx5 policy needs
/// an mlx5 device, an mlx4 policy an mlx4 device; generic fits any). Returns 0, -EOPNOTSUPP naming
/// what is missing, -ENODEV for a missing port, or the error of
/// ibv_query_device_ex()/ibv_query_port(). Capabilities the policy needs
/// (flowrt_policy_capabilities()) cannot be queried through libibverbs; they are not checked here.
int flowrt_check_device(struct ibv_context *context, const struct flowrt_policy *policy,
                        struct flowrt_error *err);

/// The driver family of the device of `context` as a target name, "mlx5" or "mlx4", from the
/// vendor and part ids ibv_query_device_ex() reports; NULL for any other device or when the
/// query fails.
const char *flowrt_device_driver(struct ibv_context *context);

/// Options of flowrt_install(); a zeroed struct (or NULL) means the defaults.
struct flowrt_install_attr {
  /// Reserved; must be 0.
  uint32_t comp_mask;
  /// Install only the rules for this port; 0 installs the rules of every port.
  uint8_t port;
  /// The hardware priority levels the device has, 0..priority_levels-1; 0 means the target's:
  /// mlx5 16 if the policy needs capability prio16, else 8; mlx4 4096; generic 65536.
  /// flowrt_update() places a new policy within this range (docs/runtime.md).
  uint32_t priority_levels;
};

/// Installs the policy on the device of `context`, all or nothing: checks every binding (each
/// queue and handle a rule uses bound, the anchor if needed, all QPs on `context`), checks the
/// device (flowrt_check_device()), creates and attaches the counters not bound, then creates
/// the rules' flows in policy order. If any verbs call fails, everything created is destroyed in
/// reverse order and the error names the failing rule, its source location and what the errno
/// means on the target (verbs-facts §7: on mlx5 ENOMEM is a priority out of range). The policy
/// must stay open, and its bindings unchanged, while the installation uses it.
struct flowrt_installation *flowrt_install(struct ibv_context *context,
                                           struct flowrt_policy *policy,
                                           const struct flowrt_install_attr *attr,
                                           struct flowrt_error *err);

/// flowrt_update() flag: when make-before-break does not fit the priority levels, remove the
/// old policy's rules first and then install the new ones (packets arriving in between meet
/// neither policy). Without it such an update fails with -ENOSPC and changes nothing.
#define FLOWRT_UPDATE_ALLOW_BREAK 0x1u

/// Replaces the installed policy with `next` (bound like for flowrt_install()), make before
/// break: rules that did not change stay, every new flow is created before any old one is
/// destroyed, and a counter keeps its object (and its counts) when `next` has it too. When
/// every changed rule is disjoint from every other rule the changes are made in place;
/// otherwise `next` is placed in priority levels above or below the old policy's
/// (docs/runtime.md, "Updates"). On failure the old policy is installed exactly as before and
/// the installation still uses it. Returns 0 or a negative errno.
int flowrt_update(struct flowrt_installation *inst, struct flowrt_policy *next, unsigned flags,
                  struct flowrt_error *err);

/// The policy an installation uses now.
struct flowrt_policy *flowrt_installation_policy(const struct flowrt_installation *inst);

/// The number of flows the installation holds.
uint32_t flowrt_installation_num_flows(const struct flowrt_installation *inst);

/// Reads counter `name` of the installed policy: packets and bytes (ibv_read_counters() indexes
/// 0 and 1). Either output may be NULL. -ENOENT for a name the policy does not declare.
int flowrt_read_counter(struct flowrt_installation *inst, const char *name, uint64_t *packets,
                        uint64_t *bytes, struct flowrt_error *err);

/// Destroys every flow of the installation in reverse creation order, then the counters the
/// runtime created, and frees it. NULL is a no-op. Returns 0, or the first error of a verbs call
/// (the rest is still destroyed and the installation is freed either way).
int flowrt_uninstall(struct flowrt_installation *inst, struct flowrt_error *err);

/// Explains what `errnum` from ibv_create_flow() means on `target` ("mlx5", "mlx4", "generic"),
/// per verbs-facts §7: a static string, never NULL.
const char *flowrt_explain_errno(const char *target, int errnum);

#ifdef __cplusplus
}
#endif

#endif // FLOWRT_FLOWRT_H
