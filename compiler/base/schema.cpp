// The header and field tables.
#include "compiler/base/schema.h"

namespace flowc {
namespace {

constexpr llvm::StringLiteral kHeaderNames[] = {
#define HEADER(Id, Keyword, Description) Keyword,
#include "compiler/base/fields.def"
};

constexpr FieldInfo kFields[] = {
#define FIELD(Id, Hdr, Name, Type, Bits, Container)                                            \
  {Field::k##Id, Header::k##Hdr, Name, ValueType::k##Type, Bits, Field::k##Container},
#include "compiler/base/fields.def"
};

} // namespace

llvm::StringRef HeaderName(Header header) { return kHeaderNames[static_cast<size_t>(header)]; }

const FieldInfo &GetFieldInfo(Field field) { return kFields[static_cast<size_t>(field)]; }

llvm::ArrayRef<FieldInfo> AllFields() { return kFields; }

ContainerMatch InContainer(Field field, const llvm::APInt &value, const llvm::APInt &mask) {
  Field container = GetFieldInfo(field).container;
  if (container == Field::kNone) {
    return {field, value, mask};
  }
  unsigned bits = GetFieldInfo(container).bits, shift = SubFieldShift(field);
  return {container, value.zext(bits).shl(shift), mask.zext(bits).shl(shift)};
}

unsigned SubFieldShift(Field field) {
  switch (field) {
  case Field::kEthDei:
    return 12;
  case Field::kEthPcp:
    return 13;
  case Field::kIpv4Dscp:
  case Field::kIpv6Dscp:
    return 2;
  default:
    return 0; // vlan and ecn start at bit 0; other fields have no container
  }
}

std::optional<Field> FindField(Header header, llvm::StringRef name) {
  for (const FieldInfo &f : kFields) {
    if (f.header == header && f.name == name) {
      return f.field;
    }
  }
  return std::nullopt;
}

llvm::StringRef ValueTypeNoun(ValueType type) {
  switch (type) {
  case ValueType::kInt:
    return "an integer";
  case ValueType::kMac:
    return "a MAC address";
  case ValueType::kIpv4:
    return "an IPv4 address";
  case ValueType::kIpv6:
    return "an IPv6 address";
  }
  return "a value";
}

} // namespace flowc
