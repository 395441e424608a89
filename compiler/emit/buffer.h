// Hardware rules and their ibv_create_flow() buffers: the encoder, and the
// decoder that checks a buffer again after emission.
#ifndef FLOWC_EMIT_BUFFER_H
#define FLOWC_EMIT_BUFFER_H

#include <array>
#include <cstdint>
#include <vector>

#include "compiler/emit/layout.h"
#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"

namespace flowc::emit {

/// The largest filter (IPv6, 40 bytes).
inline constexpr size_t kMaxFilterSize = 40;

/// One spec of a hardware rule.
struct HwSpec {
  SpecKind kind = SpecKind::kEth;
  /// IBV_FLOW_SPEC_INNER: the spec matches the encapsulated packet.
  bool inner = false;
  /// Match specs: the filter's `val` and `mask` exactly as in the buffer
  /// (network byte order); only the first filter_size bytes are used.
  std::array<uint8_t, kMaxFilterSize> val{}, mask{};
  /// ACTION_TAG: `tag_id`, written in host order.
  uint32_t tag = 0;
  /// ACTION_HANDLE / ACTION_COUNT: the index of the handle or counter the
  /// loader binds; the buffer's pointer field is written as zero.
  uint32_t binding = 0;

  bool operator==(const HwSpec &other) const;
};

/// One `struct ibv_flow_attr` with its specs.
struct HwRule {
  AttrType type = AttrType::kNormal;
  uint16_t priority = 0;
  uint8_t port = 1;
  uint32_t flags = 0;
  llvm::SmallVector<HwSpec, 4> specs;

  HwRule() = default;
  HwRule(const HwRule &) = default;
  HwRule &operator=(const HwRule &) = default;
  // noexcept, so that a growing std::vector of rules (or of structs that
  // hold one) moves them: SmallVector's move constructor is not declared
  // noexcept, and without this the vector would copy every rule's specs.
  HwRule(HwRule &&) noexcept = default;
  HwRule &operator=(HwRule &&) noexcept = default;
  ~HwRule() = default;
};

/// A match spec of `kind`, all fields "don't care".
HwSpec MakeSpec(SpecKind kind, bool inner = false);

/// Sets the bits of `field` in `spec` to `value` under `mask` (both of the
/// field's width); other fields sharing the word keep their bits. The spec
/// must have room for the field (PlacementOf).
void SetField(HwSpec &spec, Field field, const llvm::APInt &value, const llvm::APInt &mask);

/// The value and mask of `field` in `spec`, of the field's width.
std::pair<llvm::APInt, llvm::APInt> GetField(const HwSpec &spec, Field field);

/// The bytes ibv_create_flow() takes (verbs-facts §1.4): the 20-byte attr,
/// then each spec at its exact size with no gap. attr fields and tag_id are
/// little-endian (the host order of x86-64 and arm64), match fields network
/// order, every padding byte and pointer field zero, and `size` is the
/// buffer's total.
std::vector<uint8_t> Encode(const HwRule &rule);

/// Decodes `bytes` and checks everything Encode guarantees: the attr and
/// spec sizes and count, known spec and attr types, INNER only on specs that
/// take it, padding and pointer fields zero, `size` equal to the length, no
/// flag outside DONT_TRAP and EGRESS. Bindings come back as 0.
llvm::Expected<HwRule> Decode(llvm::ArrayRef<uint8_t> bytes);

} // namespace flowc::emit

#endif // FLOWC_EMIT_BUFFER_H
