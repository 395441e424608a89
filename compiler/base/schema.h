// The headers and fields the Flow language can match, from fields.def.
#ifndef FLOWC_BASE_SCHEMA_H
#define FLOWC_BASE_SCHEMA_H

#include <cstdint>
#include <optional>

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

namespace flowc {

/// A protocol header that rules match on.
enum class Header : uint8_t {
#define HEADER(Id, Keyword, Description) k##Id,
#include "compiler/base/fields.def"
};
inline constexpr unsigned kNumHeaders = 0
#define HEADER(Id, Keyword, Description) +1
#include "compiler/base/fields.def"
    ;

/// One matchable field of one header.
enum class Field : uint8_t {
#define FIELD(Id, Hdr, Name, Type, Bits, Container) k##Id,
#include "compiler/base/fields.def"
  kNone,
};

/// The literal form a field's values take.
enum class ValueType : uint8_t { kInt, kMac, kIpv4, kIpv6 };

/// What the schema knows about one field.
struct FieldInfo {
  Field field;
  Header header;
  llvm::StringRef name;
  ValueType type;
  unsigned bits;
  /// The wider field this one is part of, or Field::kNone.
  Field container;
};

/// The keyword of `header` ("ipv4").
llvm::StringRef HeaderName(Header header);
/// The schema entry of `field`.
const FieldInfo &GetFieldInfo(Field field);
/// Every field, in fields.def order.
llvm::ArrayRef<FieldInfo> AllFields();
/// The field `name` of `header`, if it has one.
std::optional<Field> FindField(Header header, llvm::StringRef name);
/// Where a sub-field sits in its container: the bit offset of its least
/// significant bit (`eth pcp` is bits 13..15 of `eth tci`, `ipv4 dscp` bits
/// 2..7 of `ipv4 tos`); 0 for a field without a container.
unsigned SubFieldShift(Field field);

/// A match on `field` as bits of its container (`eth vlan 5/0xfff` is `eth
/// tci 0x005/0x0fff`); a field without a container is returned as it is.
struct ContainerMatch {
  Field field;
  llvm::APInt value, mask;
};
ContainerMatch InContainer(Field field, const llvm::APInt &value, const llvm::APInt &mask);

/// Whether `field` is part of the 802.1Q tag (eth vlan, pcp, dei, tci): a
/// match on it needs a tagged frame.
inline bool IsVlanTagField(Field field) {
  return field == Field::kEthVlan || field == Field::kEthPcp || field == Field::kEthDei ||
         field == Field::kEthTci;
}

/// "an integer", "a MAC address", ... for messages.
llvm::StringRef ValueTypeNoun(ValueType type);

} // namespace flowc

#endif // FLOWC_BASE_SCHEMA_H
