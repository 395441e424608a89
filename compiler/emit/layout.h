// The user ABI of ibv_create_flow() in rdma-core 44: spec types, sizes and
// offsets, and where each Flow field lives in a spec (verbs-facts §1.2-§1.4).
#ifndef FLOWC_EMIT_LAYOUT_H
#define FLOWC_EMIT_LAYOUT_H

#include <cstddef>
#include <cstdint>
#include <optional>

#include "compiler/base/schema.h"
#include "llvm/ADT/StringRef.h"

namespace flowc::emit {

/// One kind of `struct ibv_flow_spec_*`, match or action.
enum class SpecKind : uint8_t {
  kEth,
  kIpv4,
  kIpv4Ext,
  kIpv6,
  kEsp,
  kTcp,
  kUdp,
  kVxlanTunnel,
  kGre,
  kMpls,
  kActionTag,
  kActionDrop,
  kActionHandle,
  kActionCount,
};
inline constexpr unsigned kNumSpecKinds = 14;

/// The shape of one spec kind in the user buffer (verbs-facts §1.3).
struct SpecLayout {
  SpecKind kind;
  /// `enum ibv_flow_spec_type` without the INNER flag.
  uint32_t type;
  /// sizeof the spec struct: the value of its `size` field.
  uint16_t size;
  /// Offset of `val` in the spec (the mask follows at val + filter_size);
  /// for TAG the offset of `tag_id`, for HANDLE/COUNT of the pointer.
  uint8_t val_offset;
  /// sizeof the filter struct; 0 for actions.
  uint8_t filter_size;
  /// May carry IBV_FLOW_SPEC_INNER (verbs-facts §1.5: not GRE, VXLAN or actions).
  bool inner_ok;
  /// The C name, for disassembly and messages ("IPV4_EXT").
  llvm::StringRef name;
};

/// IBV_FLOW_SPEC_INNER, OR-ed into a match spec's type.
inline constexpr uint32_t kSpecInner = 0x100;
/// sizeof(struct ibv_flow_attr).
inline constexpr size_t kAttrSize = 20;
/// The core's limit on specs per rule (verbs-facts §2 check 5).
inline constexpr unsigned kMaxSpecs = 10;

/// `enum ibv_flow_attr_type`.
enum class AttrType : uint32_t { kNormal = 0, kAllDefault = 1, kMcDefault = 2, kSniffer = 3 };
/// `enum ibv_flow_flags`.
inline constexpr uint32_t kFlagDontTrap = 1u << 1;
inline constexpr uint32_t kFlagEgress = 1u << 2;

const SpecLayout &GetLayout(SpecKind kind);
/// The spec kind of a type value without INNER, if it is one.
std::optional<SpecKind> SpecKindOfType(uint32_t type);
bool IsAction(SpecKind kind);
llvm::StringRef AttrTypeName(AttrType type);

/// Where a field's bits sit in a spec's filter: a big-endian word of
/// `bytes` bytes at `offset`, the field's value shifted left by `shift`.
/// MACs and addresses are words of their own size with shift 0.
struct Placement {
  uint8_t offset;
  uint8_t bytes;
  uint8_t shift;
};

/// Where `field` goes in a spec of `kind`, or nullopt if that spec has no
/// room for it (proto in IPV4, which only IPV4_EXT carries).
std::optional<Placement> PlacementOf(Field field, SpecKind kind);

} // namespace flowc::emit

#endif // FLOWC_EMIT_LAYOUT_H
