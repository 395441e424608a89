// libflowrt-sim: which ibv_create_flow() buffers libibverbs + the kernel + mlx5/mlx4 reject, and
// why.
#ifndef FLOWRT_SIM_VALIDATE_H
#define FLOWRT_SIM_VALIDATE_H

// The ground truth is /work/shared/verbs-facts.md (rdma-core 44, Linux 5.17);
// section numbers in comments and in the reasons refer to it. Buffers are the
// user layout (`struct ibv_flow_attr` followed by packed `ibv_flow_spec_*`),
// read byte by byte: they may have any alignment. This header has no
// dependency on libibverbs, the compiler, LLVM or ANTLR.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The most specs a decoded rule holds: the kernel's IB_FLOW_SPEC_SUPPORT_LAYERS (§2 check 5).
#define FLOWRT_SIM_MAX_SPECS 10
/// The largest filter of any spec (the IPv6 filter), in bytes.
#define FLOWRT_SIM_FILTER_MAX 40

/// mlx5 MPLS sub-field capability bits (MLX5_FIELD_SUPPORT_MPLS_*, §3.2): the label (20 bits).
#define FLOWRT_SIM_MPLS_LABEL 0x1u
/// mlx5 MPLS sub-field capability bit: the EXP / traffic class (3 bits).
#define FLOWRT_SIM_MPLS_EXP 0x2u
/// mlx5 MPLS sub-field capability bit: the bottom-of-stack bit.
#define FLOWRT_SIM_MPLS_S_BOS 0x4u
/// mlx5 MPLS sub-field capability bit: the TTL (8 bits).
#define FLOWRT_SIM_MPLS_TTL 0x8u
/// Every MPLS sub-field capability bit.
#define FLOWRT_SIM_MPLS_ALL 0xFu

/// The driver a simulated device runs: its checks follow libibverbs and the kernel core.
enum flowrt_sim_profile { FLOWRT_SIM_MLX5, FLOWRT_SIM_MLX4 };

/// What the simulated device can do, where the real outcome depends on the device (§7).
struct flowrt_sim_caps {
  /// mlx5: regular bypass priorities, 16 (Linux 5.x) or 8 (older); user priorities 0..n-1 (§3.1).
  uint8_t mlx5_num_prios;
  /// mlx5: the device matches inner headers (INNER ETH/IPV4/IPV6/TCP/UDP specs, §3.3).
  bool mlx5_inner_headers;
  /// mlx5: ft_field_support.outer_ip_version; lets 0x8847/0x8848 go with an outer IP spec (§3.3).
  bool mlx5_outer_ip_version;
  /// mlx5: ft_field_support.inner_ip_version; the same for INNER specs.
  bool mlx5_inner_ip_version;
  /// mlx5: the MPLS sub-fields (FLOWRT_SIM_MPLS_*) each supported MPLS placement matches (§3.2).
  uint8_t mlx5_mpls_fields;
  /// mlx5: MPLS right after an outer UDP spec (outer_first_mpls_over_udp) is supported (§3.3).
  bool mlx5_mpls_over_udp;
  /// mlx5: MPLS right after a GRE spec (outer_first_mpls_over_gre) is supported (§3.3).
  bool mlx5_mpls_over_gre;
  /// mlx5: allow_sniffer_and_nic_rx_shared_tir, needed by SNIFFER rules (§3.5).
  bool mlx5_sniffer;
  /// mlx4: DMFS_UC_MC_SNIFFER (and not A0 static DMFS), needed by DONT_TRAP rules (§4.2).
  bool mlx4_dont_trap;
  /// mlx5: the entries of one flow table, min(65536, 2^log_max_ft_size); 0 means 65536. Each
  /// table is auto-grouped by match mask: 6 groups of entries/7, then one-entry groups; a flow
  /// that finds no room fails with ENOSPC (§3.8).
  uint32_t mlx5_table_entries;
  /// The device reports IBV_DEVICE_MANAGED_FLOW_STEERING in ibv_query_device_ex() (§1.7); the
  /// flow ops work either way, as the kernel does not test the bit.
  bool managed_flow_steering;
};

/// Returns the capabilities of a fully featured device: everything present, 16 mlx5 priorities.
struct flowrt_sim_caps flowrt_sim_default_caps(void);

/// Returns 0 if the real stack (libibverbs, then the kernel core, then the `profile` driver)
/// accepts the `size`-byte buffer at `attr` as ibv_create_flow()'s attr, else the positive errno
/// it fails with, from the first check that fails in the real stack's order. `caps` may be NULL
/// for flowrt_sim_default_caps(); `qp_is_raw_or_ud` says the QP is UD or RAW_PACKET;
/// `num_ports` is the device's port count. The attr's own `size` field is ignored, as libibverbs
/// does; specs are walked by their `size` fields, and a buffer too short for a spec, or for the
/// bytes libibverbs reads of it, is EINVAL. Bytes after the last spec are never read. Unless
/// `why` is NULL, a one-line reason naming the check and its verbs-facts section (or "accepted")
/// is written to it, truncated to `whylen` bytes.
int flowrt_sim_validate(const void *attr, size_t size, enum flowrt_sim_profile profile,
                        const struct flowrt_sim_caps *caps, int qp_is_raw_or_ud, uint8_t num_ports,
                        char *why, size_t whylen);

/// One spec as the device receives it.
struct flowrt_sim_spec {
  /// The spec type as written, IBV_FLOW_SPEC_INNER included (IPV4_EXT stays IPV4_EXT).
  uint32_t type;
  /// The spec's `size` field as written.
  uint16_t size;
  /// How many bytes of `val` and `mask` libibverbs passes on (0 for actions); the rest are zero.
  uint8_t filter_size;
  /// The match value in the verbs filter layout (`struct ibv_flow_*_filter`), network order.
  uint8_t val[FLOWRT_SIM_FILTER_MAX];
  /// The match mask in the same layout; a set bit means "match this bit".
  uint8_t mask[FLOWRT_SIM_FILTER_MAX];
  /// The flow tag of an ACTION_TAG spec, host order; 0 for other specs.
  uint32_t tag_id;
};

/// A rule as the device receives it.
struct flowrt_sim_rule {
  /// The attr type (IBV_FLOW_ATTR_NORMAL, ALL_DEFAULT, MC_DEFAULT or SNIFFER).
  uint32_t type;
  /// The attr priority.
  uint16_t priority;
  /// The attr port.
  uint8_t port;
  /// The attr flags (IBV_FLOW_ATTR_FLAGS_*).
  uint32_t flags;
  /// The number of specs, at most FLOWRT_SIM_MAX_SPECS.
  uint8_t num_specs;
  /// The bytes the attr and its specs span, walking the specs by their `size` fields.
  size_t length;
  /// The specs, in buffer order.
  struct flowrt_sim_spec specs[FLOWRT_SIM_MAX_SPECS];
};

/// Decodes the buffer into `out` the way libibverbs reads it; meant for buffers that
/// flowrt_sim_validate() accepted. Returns 0, or the positive errno of a buffer libibverbs
/// refuses or that has more than FLOWRT_SIM_MAX_SPECS specs (then `out` is unspecified).
int flowrt_sim_decode(const void *attr, size_t size, struct flowrt_sim_rule *out);

#ifdef __cplusplus
}
#endif

#endif // FLOWRT_SIM_VALIDATE_H
