// libflowrt-sim: a software RDMA device driven by the real libibverbs flow and counters calls.
#ifndef FLOWRT_SIM_H
#define FLOWRT_SIM_H

// The device is a `struct verbs_context` the sim allocates itself (no
// ibv_open_device, no provider): libibverbs' static inline ibv_create_flow,
// ibv_destroy_flow, ibv_create_counters, ibv_attach_counters_point_flow,
// ibv_read_counters and ibv_destroy_counters (rdma-core 44 verbs.h) reach its
// ops through verbs_get_ctx_op(), so code written against verbs.h runs
// unchanged on it. A rule is accepted or refused as flowrt_sim_validate()
// says (verbs-facts §1.5-§4); accepted rules are stored, decoded, for a later
// classifier. On top of that, an mlx5 NORMAL ingress rule whose match
// duplicates an installed rule's in the same hardware table joins that flow
// table entry, as mlx5's fs_core does, or fails with EEXIST when their actions
// or tags conflict (§3.8; see flowrt_sim_receive()). The mlx4 profile, like
// the mlx4 provider, has no counters ops: the verbs.h counters entry points
// answer EOPNOTSUPP on it (§1.6).
//
// Not thread-safe: a device and everything created on it must be used from
// one thread at a time.

#include "flowrt/sim_validate.h"

#include <infiniband/verbs.h>
#include <stddef.h>
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
/// entry points. The flow and counters ops are set, and ibv_query_device_ex() and
/// ibv_query_port() answer (Mellanox vendor id 0x02c9, part id 4125 for mlx5 or 4099 for mlx4,
/// IBV_DEVICE_MANAGED_FLOW_STEERING as the caps say, every port an active Ethernet port);
/// `context->device` names the device "sim_mlx5_0" or "sim_mlx4_0". Every other verbs call is
/// unsupported.
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

/// Calls `hook(arg, n)` at the start of the n-th op call (the six of flowrt_sim_fail_call()),
/// before the call changes anything, so that a test can look at the device (classify frames
/// with flowrt_sim_receive(), count flows) between any two calls. NULL turns it off.
void flowrt_sim_set_call_hook(struct flowrt_sim_device *dev, void (*hook)(void *arg, unsigned call),
                              void *arg);

/// Returns how many flows are installed.
unsigned flowrt_sim_num_flows(const struct flowrt_sim_device *dev);

/// Returns how many counters objects exist.
unsigned flowrt_sim_num_counters(const struct flowrt_sim_device *dev);

/// Returns how many op calls (the six of flowrt_sim_fail_call()) reached the device, failed
/// ones included; calls that verbs.h answers itself (a missing op) never reach it.
unsigned flowrt_sim_num_calls(const struct flowrt_sim_device *dev);

/// One copy of a received frame handed to a QP.
struct flowrt_sim_delivery {
  /// The QP the flow was installed on.
  struct ibv_qp *qp;
  /// The flow tag (ACTION_TAG's tag_id, the last one if several); 0 unless `tagged`. For a
  /// NORMAL flow it is the tag of its flow table entry: a flow without a TAG that joined a
  /// tagged entry delivers with the entry's tag (§3.8).
  uint32_t tag;
  /// 1 if the delivering flow (its entry, for a NORMAL flow) has an ACTION_TAG spec, else 0.
  int tagged;
};

/// What flowrt_sim_receive() did with a frame.
struct flowrt_sim_result {
  /// 1 if a flow with ACTION_DROP took the frame, else 0. A frame no flow took (no match, no
  /// default rule) is not "dropped": on real hardware it goes to the kernel's own netdev queue;
  /// here it just has no delivery besides DONT_TRAP and SNIFFER copies.
  int dropped;
  /// How many entries of `deliveries` are set, at most 8.
  unsigned num_deliveries;
  /// The deliveries in the order they happen: DONT_TRAP copies by table, then the frame's fate
  /// (a trapping flow table entry, one copy per QP of the entry, or a default rule), then
  /// SNIFFER copies in installation order. Copies past the 8th are not listed (their counters
  /// still count).
  struct flowrt_sim_delivery deliveries[8];
};

/// Classifies one Ethernet frame received (ingress) on `port` with the mlx5 profile's semantics
/// (verbs-facts §3.2-§3.5; an mlx4 device's are below), adds to the counters of the flows that
/// delivered or dropped it (ACTION_COUNT: +1 at each PACKETS index, +`len` at each BYTES index) and
/// fills `*out`. Returns 0; -EINVAL if `dev`, `out` or `frame` is NULL, `port` is not 1..num_ports,
/// or the frame is too short for its Ethernet header (14 bytes, 18 with an 802.1Q tag). EGRESS
/// flows never match here (see flowrt_sim_send()).
///
/// Parsing: Ethernet (one 802.1Q tag, TCI and the ethertype after it), IPv4 (options skipped by
/// ihl; L4 only in a first fragment), IPv6 (no extension headers), TCP/UDP ports, ESP SPI, GRE
/// (the key when K is set), VXLAN on UDP dst port 4789 (VNI, then the inner Ethernet frame),
/// MPLS after Ethernet (0x8847/0x8848), after UDP dst port 6635 and after GRE protocol
/// 0x8847/0x8848; the inner IP packet follows GRE protocol 0x0800/0x86DD, or the MPLS entry with
/// the bottom-of-stack bit (IP version nibble). Truncated inner headers count as absent.
///
/// Matching: a spec matches when (packet & mask) == (value & mask) over its verbs filter, on the
/// outer packet or, with IBV_FLOW_SPEC_INNER, the inner one; a header the packet lacks matches
/// only an all-zero mask, except that IPV4/IPV6 always require that IP version, TCP/UDP/GRE the
/// IP protocol 6/17/47, and a non-zero ETH vlan_tag mask an 802.1Q tag. ESP and GRE are always
/// outer; MPLS is placed by the spec before it (UDP → over UDP, GRE → over GRE, else inner or
/// outer first MPLS). A flow matches when all its match specs match.
///
/// Order: NORMAL flows by table 2*priority + (DONT_TRAP ? 0 : 1), multicast-only trapping flows
/// in table 32 (§3.3, §3.4). Flows on one port and in one table with identical matches (defined
/// at "Identical match" in sim.c: the same match specs, spec order ignored, IPV4_EXT as IPV4) are
/// one flow table entry, as on mlx5 (§3.8). ibv_create_flow() refuses a flow that would join an
/// entry with EEXIST if exactly one of them has ACTION_DROP, their ACTION_HANDLE objects differ,
/// or the new flow has an ACTION_TAG other than the entry's tag (0 for an untagged entry); a
/// flow without a TAG joins and takes the entry's tag, and the same QP again is accepted.
/// Within a table the entry of the first matching flow in installation order takes the frame
/// (for distinct overlapping matches, an approximation of the hardware's choice): every member
/// flow counts it once, and a non-DROP entry delivers one copy to each distinct QP of its
/// members, in installation order, all with the entry's tag. A DROP entry drops and stops
/// (DONT_TRAP too); a DONT_TRAP entry delivers its copies and classification goes on; any other
/// entry delivers and stops. If nothing stopped it, the first MC_DEFAULT flow takes
/// a frame with the multicast bit in its dst MAC, else the first ALL_DEFAULT flow takes it. Every
/// SNIFFER flow on the port gets a copy. Default and SNIFFER rules ignore their user specs,
/// actions included (no tag, no count, §3.5, §3.7).
int flowrt_sim_receive(struct flowrt_sim_device *dev, uint8_t port, const void *frame, size_t len,
                       struct flowrt_sim_result *out);

/// On an mlx4 device flowrt_sim_receive() follows mlx4's semantics instead (verbs-facts §4):
/// only ETH dst_mac and vlan_tag, IPv4 src and dst and TCP/UDP ports are matched (ETH src_mac and
/// ether_type are ignored, as mlx4_ib does); a trapping NORMAL flow's hardware priority is
/// 0x1000 | priority, except that a flow whose only spec is an ETH with a multicast dst MAC gets
/// 0x5000 (as on a PF, §4.4); the lowest wins, the first installed among equals. DONT_TRAP flows
/// copy every frame, or the multicast or unicast ones for a 01:00:00:00:00:00 dst MAC mask
/// (§4.2); default and SNIFFER flows apply their specs. mlx4 has no actions: no drop, tag or
/// counter. Not modelled: the firmware's choice between equal priorities, the UDP dst-port
/// priority quirk and the VXLAN tunnel-steering helper rule (§4.3, §4.4).

/// Classifies one Ethernet frame sent (egress) on `port` by an mlx5 device's EGRESS flows
/// (verbs-facts §3.6): the flows are ordered by table as on ingress; the first matching one
/// counts the frame and decides: ACTION_DROP drops it (`out->dropped` = 1), any other flow allows
/// it; a DONT_TRAP flow counts and lets the next table decide. A frame no flow matches is sent.
/// `out->num_deliveries` is always 0. Returns 0, -EINVAL as flowrt_sim_receive(), or
/// -EOPNOTSUPP on an mlx4 device (no egress rules, §4.1).
int flowrt_sim_send(struct flowrt_sim_device *dev, uint8_t port, const void *frame, size_t len,
                    struct flowrt_sim_result *out);

#ifdef __cplusplus
}
#endif

#endif // FLOWRT_SIM_H
